"""``workbench export``'s service: a Darknet model (a bundle folder, or cfg + weights + names)
checked the way detect checks it and written as one ONNX file (:mod:`onnx_export`).

Its own module so that reading a bundle (``bundle``, ``validate``) does not import onnx.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from workbench.darknet.bundle import ModelBundle, bundle_from_files, find_bundle
from workbench.darknet.onnx_export import export_files
from workbench.darknet.validate import check_bundle
from workbench.errors import WorkbenchError
from workbench.storage.output_guard import refuse_input_as_output


@dataclass(frozen=True)
class ExportRequest:
    """The model: ``model`` (a bundle folder or a built-in name such as ``demo``) or all of
    ``cfg``, ``weights`` and ``names``. ``width`` and ``height``: the network input (None:
    the cfg's [net] size)."""

    out: str | Path
    model: str | Path | None = None
    cfg: str | Path | None = None
    weights: str | Path | None = None
    names: str | Path | None = None
    width: int | None = None
    height: int | None = None
    dynamic_batch: bool = False


@dataclass(frozen=True)
class ExportOutcome:
    """The file written and what it holds."""

    out: Path
    size_bytes: int
    seconds: float
    width: int
    height: int
    dynamic_batch: bool
    outputs: int      # one per [yolo] head
    classes: int


def request_bundle(request: ExportRequest) -> ModelBundle:
    """The bundle the request names; WorkbenchError for both or neither way of naming one."""
    files = (request.cfg, request.weights, request.names)
    if request.model and any(files):
        raise WorkbenchError("give either --model or --cfg/--weights/--names, not both")
    if request.model:
        return find_bundle(request.model)
    if request.cfg and request.weights and request.names:
        return bundle_from_files(request.cfg, request.weights, request.names)
    raise WorkbenchError("give --model DIR, or all of --cfg, --weights and --names")


def export_model(request: ExportRequest) -> ExportOutcome:
    """Check the model (what detect refuses, export refuses) and write ``request.out``
    atomically. WorkbenchError (a ModelError) for a bad model or output path; an OSError
    (a full disk) names the file."""
    bundle = request_bundle(request)
    out = Path(request.out)
    if out.is_dir():
        raise WorkbenchError(f"--out {out}: is a folder; give a file name such as model.onnx")
    if not out.parent.is_dir():
        raise WorkbenchError(f"--out {out}: folder {out.parent} does not exist")
    refuse_input_as_output(out, [bundle.cfg, bundle.weights, bundle.names])
    start = time.perf_counter()
    checked = check_bundle(bundle, request.width, request.height)
    names, cfg = checked.class_names, checked.cfg
    export_files(bundle.cfg, bundle.weights, out, class_names=names, width=request.width,
                 height=request.height, dynamic_batch=request.dynamic_batch)
    return ExportOutcome(out, out.stat().st_size, time.perf_counter() - start,
                         request.width or cfg.width, request.height or cfg.height,
                         request.dynamic_batch, len(cfg.yolo_layers()), len(names))
