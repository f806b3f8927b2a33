"""The exported ONNX file of a model, made once and cached: what the ONNX Runtime and OpenVINO
engines run.

The ONNX file is made on first use and cached, keyed by the content of the cfg, the weights and
the names plus the input size, so editing or retraining a model makes a new file. The cache
lives in ``$WORKBENCH_CACHE_DIR/onnx`` when that is set, else
``${XDG_CACHE_HOME:-~/.cache}/detection-workbench/onnx``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from workbench.darknet.bundle import ModelBundle
from workbench.errors import BackendUnavailable, ModelError


def cache_dir() -> Path:
    """Where exported ONNX files are kept (see the module docstring)."""
    root = os.environ.get("WORKBENCH_CACHE_DIR")
    if root:
        return Path(root) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "detection-workbench" / "onnx"


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def model_key(bundle: ModelBundle, width: int, height: int) -> str:
    """Hash of the cfg, weights and names content, the input size and the exporter version."""
    # onnx_export imports the onnx package (heavy): loaded only once a model needs its file
    from workbench.darknet.onnx_export import EXPORTER_VERSION

    digest = hashlib.sha256(f"exporter {EXPORTER_VERSION} size {width}x{height}\n".encode())
    for path in (bundle.cfg, bundle.weights, bundle.names):
        try:
            with open(path, "rb") as f:
                digest.update(f"{os.fstat(f.fileno()).st_size}\n".encode())
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise ModelError(f"{path}: cannot read model file: {exc}") from None
    return digest.hexdigest()


def cached_onnx(bundle: ModelBundle, width: int, height: int) -> Path:
    """The ONNX file for ``bundle`` at ``width`` x ``height`` (dynamic batch), made if missing."""
    try:  # onnx_export imports the onnx package (heavy, and may be missing)
        from workbench.darknet.onnx_export import export_files
    except ImportError as exc:
        raise BackendUnavailable(f"exporting to ONNX needs the onnx package ({exc}): "
                                 "pip install onnx") from None
    folder = cache_dir()
    key = model_key(bundle, width, height)[:20]
    path = folder / f"{Path(bundle.cfg).stem}-{width}x{height}-{key}.onnx"
    if path.is_file():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{folder}: cannot create the ONNX cache folder: {exc}") from None
    # written atomically: a second process racing us sees either nothing or a whole file
    try:
        return export_files(bundle.cfg, bundle.weights, path, class_names=bundle.class_names(),
                            width=width, height=height, dynamic_batch=True)
    except OSError as exc:
        raise ModelError(f"{path}: cannot write the exported model: {exc}") from None
