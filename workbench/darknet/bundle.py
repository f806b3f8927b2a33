"""Model bundles: a folder with one .cfg, one .weights and one .names file.

``resolve_bundle("demo")`` names the demo model shipped in ``resources/models/demo``
(in a wheel: ``workbench/_bundled/resources/models/demo``, see ``workbench.bundled``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.bundled import demo_model_folder
from workbench.darknet.cfg import DarknetCfg, format_cfg, read_cfg
from workbench.darknet.weights import DarknetWeights, write_weights
from workbench.errors import ModelError
from workbench.storage.atomic import atomic_write_text

# names of the models shipped with the tool (found where bundled.py says: wheel or clone)
BUILTIN_MODELS = ("demo",)


@dataclass(frozen=True)
class ModelBundle:
    cfg: Path
    weights: Path
    names: Path

    def class_names(self) -> list[str]:
        return read_names(self.names)

    def read_cfg(self) -> DarknetCfg:
        return read_cfg(self.cfg)


def read_names(path: str | Path) -> list[str]:
    """The class names of a .names file; a FIFO or device is refused, never waited on."""
    from workbench.errors import FormatError
    from workbench.storage.files import MAX_LABEL_BYTES, read_regular

    path = Path(path)
    try:
        lines = read_regular(path, MAX_LABEL_BYTES).decode("utf-8-sig").splitlines()
    except FormatError as exc:
        raise ModelError(f"{path}: cannot read class names: {exc.message}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read class names: {exc}") from None
    names = [line.strip() for line in lines if line.strip()]
    if not names:
        raise ModelError(f"{path}: no class names in the file")
    return names


def find_bundle(folder: str | Path) -> ModelBundle:
    """The bundle in ``folder``, or a built-in name such as ``demo``; clear error otherwise."""
    if str(folder) in BUILTIN_MODELS:
        folder = demo_model_folder()
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found (a bundle is a folder with one "
                         ".cfg, one .weights and one .names file)")
    found = {}
    for ext in ("cfg", "weights", "names"):
        files = sorted(folder.glob(f"*.{ext}"))
        if len(files) != 1:
            raise ModelError(f"{folder}: a model bundle needs exactly one .{ext} file, "
                             f"found {len(files)}")
        found[ext] = files[0]
    return ModelBundle(found["cfg"], found["weights"], found["names"])


def bundle_from_files(cfg: str | Path, weights: str | Path, names: str | Path) -> ModelBundle:
    for p in (cfg, weights, names):
        if not Path(p).is_file():
            raise ModelError(f"{p}: file not found")
    return ModelBundle(Path(cfg), Path(weights), Path(names))


def write_bundle(folder: str | Path, name: str, cfg: DarknetCfg, weights: DarknetWeights,
                 class_names: list[str]) -> ModelBundle:
    """Write ``name.cfg``, ``name.weights`` and ``name.names`` atomically into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bundle = ModelBundle(folder / f"{name}.cfg", folder / f"{name}.weights", folder / f"{name}.names")
    atomic_write_text(bundle.cfg, format_cfg(cfg))
    write_weights(weights, bundle.weights)
    atomic_write_text(bundle.names, "".join(f"{n}\n" for n in class_names))
    return bundle


#: Beside the cfg/weights/names: what the training run calibrated on its validation images,
#: the detection defaults the bundle brings: ``conf`` (a threshold) and ``merge_boxes``
THRESHOLDS_FILE = "thresholds.json"


def write_model_conf(folder: str | Path, conf: float, why: str) -> Path:
    """Store ``conf`` as the bundle's default detection threshold (``detect`` uses it)."""
    return write_model_defaults(folder, why, conf=conf)


def write_model_defaults(folder: str | Path, why: str, conf: float | None = None,
                         merge_boxes: bool | None = None) -> Path:
    """Store the bundle's own detection defaults (those given) in its thresholds.json."""
    import json

    values: dict[str, object] = {}
    if conf is not None:
        values["conf"] = round(float(conf), 4)
    if merge_boxes is not None:
        values["merge_boxes"] = bool(merge_boxes)
    path = Path(folder) / THRESHOLDS_FILE
    atomic_write_text(path, json.dumps({**values, "why": why}, indent=2) + "\n")
    return path


@dataclass(frozen=True)
class ModelDefaults:
    """The detection defaults a training run stored in its bundle (None: not stored)."""

    conf: float | None = None
    merge_boxes: bool | None = None


def read_model_defaults(bundle: ModelBundle) -> ModelDefaults:
    """The bundle's ``thresholds.json`` (beside its cfg), read and checked once; no file:
    no defaults.

    The file is read only when it is a regular file of at most 1 MiB (a FIFO named
    thresholds.json would block ``detect`` forever); anything else is one ModelError line.
    """
    import json
    import math
    import os

    from workbench.errors import FormatError
    from workbench.storage.files import MAX_SMALL_JSON_BYTES, read_regular

    path = bundle.cfg.parent / THRESHOLDS_FILE
    if not os.path.lexists(path):
        return ModelDefaults()
    try:
        values = json.loads(read_regular(path, MAX_SMALL_JSON_BYTES))
    except FormatError as err:
        raise ModelError(str(err)) from None
    except (ValueError, RecursionError) as exc:
        raise ModelError(f"{path}: not a thresholds file ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None
    if not isinstance(values, dict) or not {"conf", "merge_boxes"} & set(values):
        raise ModelError(f"{path}: not a thresholds file (no conf or merge_boxes)")
    conf, merge = values.get("conf"), values.get("merge_boxes")
    if conf is not None:
        if isinstance(conf, bool) or not isinstance(conf, (int, float)):  # bool: an int too
            raise ModelError(f"{path}: conf {str(conf)[:60]!r} is not a number")
        conf = float(conf)
        if not math.isfinite(conf) or not 0.0 <= conf <= 1.0:  # 1e400 reads as inf
            raise ModelError(f"{path}: conf {conf} is not between 0 and 1")
    if merge is not None and not isinstance(merge, bool):
        raise ModelError(f"{path}: merge_boxes {str(merge)[:60]!r} is not true or false")
    return ModelDefaults(conf, merge)


def read_model_conf(bundle: ModelBundle) -> float | None:
    """The bundle's calibrated threshold (``thresholds.json`` beside its cfg), or None."""
    return read_model_defaults(bundle).conf


def read_model_merge(bundle: ModelBundle) -> bool | None:
    """Whether the training run found merged boxes (``detect --merge-boxes``) better on its
    validation images (``merge_boxes`` in thresholds.json), or None when it did not say."""
    return read_model_defaults(bundle).merge_boxes
