"""One validation pass for Darknet model files (cfg + weights + names), before any engine.

Detect, export, train and the GUI's model loading all call it, so they refuse the same files
with the same message: one line naming the file and the place (``model.cfg:147: layer 16
[route]: ...``, ``model.weights: layer 3 holds NaN ...``). Without it a bad file surfaced as a
ZeroDivisionError, IndexError, OverflowError, a reshape error or ``cv2.error`` mid-forward,
or worse ran: an out-of-range route silently read the wrong layer, OpenCV's int32 sizes
overflowed on ``width=1000000``.

Limits (documented in docs/formats.md): the network input is a multiple of 32 between 32 and
:data:`MAX_INPUT` pixels a side; kernels, strides and filter counts are capped in
:mod:`workbench.darknet.cfg`; one layer's output may hold at most :data:`MAX_LAYER_VALUES`
numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.darknet.cfg import DarknetCfg, LayerShape, Section, check_supported, layer_shapes
from workbench.darknet.weights import floats_needed, header_length, read_weights
from workbench.errors import ModelError

#: the largest network input side: 4096 covers every published YOLO (416 to 1536) at any
#: multiple, while width=1000000 asked OpenCV for tens of gigabytes
MAX_INPUT = 4096
#: one layer's output at batch 1 (floats): 2**30 is 4 GiB; OpenCV counts sizes in int32
MAX_LAYER_VALUES = 2**30
MAX_CLASSES = 100_000


@dataclass
class CheckedModel:
    """A model that passed :func:`check_bundle`."""

    cfg: DarknetCfg
    class_names: list[str]


def check_input_size(width: int, height: int, where: str = "network size") -> None:
    """Width and height: multiples of 32 in 32..MAX_INPUT (ModelError naming ``where``)."""
    for value in (width, height):
        if not 32 <= value <= MAX_INPUT or value % 32:
            raise ModelError(f"{where}: {width}x{height}: width and height must be multiples of "
                             f"32 between 32 and {MAX_INPUT}")


def _yolo_head(cfg: DarknetCfg, i: int, s: Section, shape_in: LayerShape) -> int:
    """Check one [yolo] section; its class count."""
    where = f"{cfg.where()}:{s.line}: layer {i} [yolo]"
    classes = s.get_int("classes", 80)
    if not 1 <= classes <= MAX_CLASSES:
        raise ModelError(f"{where}: 'classes={classes}' must be between 1 and {MAX_CLASSES}")
    text = s.get("anchors", "")
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ModelError(f"{where}: 'anchors={text}' is not a list of numbers") from None
    if not values or len(values) % 2:
        raise ModelError(f"{where}: 'anchors={text}' must be width,height pairs")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ModelError(f"{where}: 'anchors={text}' must all be positive numbers")
    anchors = len(values) // 2
    num = s.get_int("num", anchors)
    if num != anchors:
        raise ModelError(f"{where}: 'num={num}' but 'anchors=' holds {anchors} pairs")
    mask = s.get_ints("mask", list(range(anchors)))
    if not mask or any(not 0 <= m < anchors for m in mask):
        raise ModelError(f"{where}: 'mask={s.get('mask')}' must name anchors 0..{anchors - 1}")
    if i == 0:
        raise ModelError(f"{where}: a [yolo] head needs a layer before it")
    want = (classes + 5) * len(mask)
    if shape_in.channels != want:
        raise ModelError(f"{where}: the layer before has {shape_in.channels} filters, "
                         f"(classes + 5) x {len(mask)} masked anchors = {want} needed")
    return classes


def check_cfg(cfg: DarknetCfg, width: int | None = None, height: int | None = None) -> None:
    """Every layer buildable at ``width`` x ``height`` (default [net]); ModelError otherwise."""
    check_input_size(cfg.width, cfg.height, f"{cfg.where()}:{cfg.net.line}: [net]")
    if width is not None or height is not None:
        check_input_size(width or cfg.width, height or cfg.height)
    channels = cfg.channels
    if not 1 <= channels <= 64:
        raise ModelError(f"{cfg.where()}:{cfg.net.line}: [net]: 'channels={channels}' must be "
                         "between 1 and 64")
    check_supported(cfg)
    shapes = layer_shapes(cfg, width, height)
    for i, (s, shape) in enumerate(zip(cfg.layers, shapes, strict=True)):
        if shape.height * shape.width * shape.channels > MAX_LAYER_VALUES:
            raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [{s.kind}]: its output "
                             f"{shape.width}x{shape.height}x{shape.channels} is larger than "
                             f"{MAX_LAYER_VALUES} values")
    heads = cfg.yolo_layers()
    if not heads:
        raise ModelError(f"{cfg.where()}: the cfg has no [yolo] section")
    counts = {_yolo_head(cfg, i, cfg.layers[i], shapes[i - 1] if i else shapes[i])
              for i in heads}
    if len(counts) > 1:
        raise ModelError(f"{cfg.where()}: the [yolo] sections disagree on classes= "
                         f"({', '.join(map(str, sorted(counts)))})")


def check_names(cfg: DarknetCfg, names: list[str], names_path: object) -> None:
    if len(names) != cfg.classes:
        raise ModelError(f"{names_path}: {len(names)} class names, but {cfg.where()} has "
                         f"classes={cfg.classes} in its [yolo] sections")


def check_bundle(bundle: ModelBundle, width: int | None = None,
                 height: int | None = None) -> CheckedModel:
    """Read and check the cfg, names and weights of ``bundle``; the first fault, one line."""
    cfg = bundle.read_cfg()
    check_cfg(cfg, width, height)
    names = bundle.class_names()
    check_names(cfg, names, bundle.names)
    check_weights(bundle.weights, cfg)
    return CheckedModel(cfg, names)


def check_weights(path: str | Path, cfg: DarknetCfg) -> None:
    """The weights file holds exactly what ``cfg`` needs, every value finite.

    The usual good file is checked in one vectorized pass over the file (no per-layer copies:
    yolov3's 248 MB in a fraction of a second); anything else goes through
    :func:`read_weights`, whose error names the fault and the layer.
    """
    path = Path(path)
    try:
        size, offset = header_length(path)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read weights: {exc}") from None
    if offset is not None:
        if size - offset == floats_needed(cfg) * 4:
            values = np.fromfile(path, "<f4", offset=offset)
            if np.isfinite(values).all():
                return
    read_weights(path, cfg, allow_partial=False)  # raises, naming what is wrong
    raise ModelError(f"{path}: not a darknet weights file for {cfg.where()}")
