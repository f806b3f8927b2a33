"""Check a model bundle when it is chosen, not when it is first run.

Everything that can be known without running the network: the three files, a cfg this
project can build, names matching the cfg's classes, weights of exactly the cfg's size.
"""

from __future__ import annotations

from pathlib import Path

from workbench.darknet.bundle import ModelBundle, find_bundle
from workbench.errors import ModelError


def check_model(folder: str | Path) -> ModelBundle:
    """The bundle in ``folder`` (or "demo"), or a ModelError with one line naming the file."""
    from workbench.darknet.cfg import check_supported
    from workbench.detect.opencv_backend import check_weights_size
    from workbench.errors import WorkbenchError

    bundle = find_bundle(folder)
    try:
        cfg = bundle.read_cfg()
        check_supported(cfg)
        names = bundle.class_names()
    except ModelError:
        raise
    except WorkbenchError as exc:
        raise ModelError(str(exc)) from None
    if cfg.classes != len(names):
        raise ModelError(f"{bundle.names}: {len(names)} class names, but {bundle.cfg} has "
                         f"classes={cfg.classes}")
    check_weights_size(bundle, cfg)
    return bundle
