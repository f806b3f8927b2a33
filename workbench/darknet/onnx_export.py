"""Darknet cfg + weights -> ONNX, built with ``onnx.helper`` (no TensorFlow).

The graph reproduces what OpenCV's Darknet importer computes, so ONNX Runtime (and OpenCV's
own ONNX importer, the path left in OpenCV 5) give the same numbers as ``readNetFromDarknet``:

- convolution with batch norm folded in using OpenCV's epsilon, ``sqrt(var + 1e-6)``;
- leaky ReLU with slope 0.1;
- maxpool padded the darknet way: ``padding`` (default ``size - 1``) split ``floor`` to the
  top/left and ``ceil`` to the bottom/right, so tiny's size-2 stride-1 pool pads [0, 0, 1, 1];
- upsample as an exact nearest-neighbour ``Resize`` (asymmetric coordinates, floor);
- each ``[yolo]`` head decoded inside the graph into OpenCV's row convention: one output per
  head, shape ``(N, H*W*anchors, 5 + classes)``, rows ordered y, x, anchor; columns cx, cy, w, h
  normalized to the network input, objectness, then class score = objectness x sigmoid(class),
  never zeroed below a threshold.

The input is ``images``: float32 NCHW RGB in [0, 1]. Class names go into ``metadata_props``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from workbench.darknet.cfg import (
    DarknetCfg,
    LayerShape,
    Section,
    anchors_of,
    check_supported,
    conv_padding,
    layer_shapes,
    route_sources,
    shortcut_source,
)
from workbench.darknet.weights import ConvWeights, DarknetWeights
from workbench.errors import ModelError

#: Opset both ONNX Runtime and OpenCV 4.x's ONNX importer read.
OPSET = 13
#: IR version that goes with the opset (older runtimes refuse newer IR versions).
IR_VERSION = 8
#: OpenCV's Darknet importer folds batch norm with this epsilon (darknet_io.cpp).
BN_EPSILON = 1e-6
LEAKY_SLOPE = 0.1
INPUT_NAME = "images"
#: Bumped whenever the graph changes, so cached exports are rebuilt.
EXPORTER_VERSION = "1"


def export_onnx(cfg: DarknetCfg, weights: DarknetWeights, *,
                class_names: list[str] | None = None, width: int | None = None,
                height: int | None = None, dynamic_batch: bool = False,
                check: bool = True) -> onnx.ModelProto:
    """Build the ONNX model of ``cfg`` with ``weights`` at ``width`` x ``height`` (default [net]).

    Raises ModelError naming the section for anything the converter cannot express, and for
    weights that do not cover every convolution. ``check`` runs ``onnx.checker`` on the result.
    """
    check_supported(cfg)
    width = width or cfg.width
    height = height or cfg.height
    if width % 32 or height % 32 or width <= 0 or height <= 0:
        raise ModelError(f"{cfg.where()}: input size must be positive multiples of 32, "
                         f"got {width}x{height}")
    shapes = layer_shapes(cfg, width, height)
    graph = _Graph()
    batch: int | str = "batch" if dynamic_batch else 1
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                            [batch, cfg.channels, height, width])]
    outputs = []
    layers = cfg.layers
    names: list[str] = []  # output tensor of every layer, darknet numbering
    prev = INPUT_NAME
    for i, s in enumerate(layers):
        where = f"{cfg.where()}:{s.line}: layer {i} [{s.kind}]"
        if s.kind == "convolutional":
            if i not in weights.layers:
                raise ModelError(f"{where}: the weights file has no data for this layer "
                                 "(a partial file such as yolov3-tiny.conv.15 cannot be exported)")
            out = _convolution(graph, s, weights.layers[i], prev, i, where)
        elif s.kind == "maxpool":
            out = _maxpool(graph, s, prev, i)
        elif s.kind == "upsample":
            out = _upsample(graph, s, prev, i, where)
        elif s.kind == "route":
            out = _route(graph, s, layers, names, i, where)
        elif s.kind == "shortcut":
            out = _shortcut(graph, s, layers, names, shapes, prev, i, where)
        else:  # yolo: decode into its own output, pass the feature map on like darknet does
            head = _yolo_head(graph, s, prev, shapes[i], width, height, i, where)
            outputs.append(helper.make_tensor_value_info(
                head, TensorProto.FLOAT,
                [batch, shapes[i].height * shapes[i].width * len(_mask(s)), 5 + _classes(s)]))
            out = prev
        names.append(out)
        prev = out
    if not outputs:
        raise ModelError(f"{cfg.where()}: the cfg has no [yolo] section to export")
    model = helper.make_model(
        helper.make_graph(graph.nodes, "darknet", inputs, outputs, graph.initializers),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="detection-workbench",
        producer_version=EXPORTER_VERSION,
    )
    model.ir_version = IR_VERSION
    meta = {
        "class_names": json.dumps(list(class_names or [])),
        "input_size": f"{width}x{height}",
        "input_format": "float32 NCHW RGB in [0, 1]",
        "output_format": "per [yolo] head (N, rows, 5 + classes): cx, cy, w, h normalized to "
                         "the input, objectness, objectness x class probability; rows y, x, anchor",
    }
    if cfg.path is not None:
        meta["source_cfg"] = cfg.path.name
    onnx.helper.set_model_props(model, meta)
    if check:
        onnx.checker.check_model(model)
    return model


def write_onnx(model: onnx.ModelProto, path: str | Path, *, check: bool = False) -> Path:
    """Write ``model`` atomically to ``path``; ``check`` runs ``onnx.checker`` first."""
    from workbench.storage.atomic import atomic_write_bytes

    path = Path(path)
    data = model.SerializeToString()  # once: a YOLOv3 model takes seconds to serialize
    if check:
        onnx.checker.check_model(data)
    atomic_write_bytes(path, data)
    return path


def export_files(cfg_path: str | Path, weights_path: str | Path, out: str | Path, *,
                 class_names: list[str] | None = None, width: int | None = None,
                 height: int | None = None, dynamic_batch: bool = False) -> Path:
    """Read a cfg and its weights, export, and write the ONNX file atomically to ``out``."""
    from workbench.darknet.cfg import read_cfg
    from workbench.darknet.weights import read_weights

    cfg = read_cfg(cfg_path)
    check_supported(cfg)
    weights = read_weights(weights_path, cfg, allow_partial=False)
    model = export_onnx(cfg, weights, class_names=class_names, width=width, height=height,
                        dynamic_batch=dynamic_batch, check=False)
    return write_onnx(model, out, check=True)


def read_class_names(path: str | Path) -> list[str]:
    """The class names an exported ONNX file carries in its metadata."""
    path = Path(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError, OSError, ... for a bad file
        raise ModelError(f"{path}: cannot read ONNX model: {exc}") from None
    props = {p.key: p.value for p in model.metadata_props}
    if "class_names" not in props:
        raise ModelError(f"{path}: the ONNX model has no class_names metadata")
    return list(json.loads(props["class_names"]))


class _Graph:
    """Nodes and initializers collected while walking the cfg."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _convolution(g: _Graph, s: Section, w: ConvWeights, x: str, i: int, where: str) -> str:
    size, stride, pad = s.get_int("size", 1), s.get_int("stride", 1), conv_padding(s)
    kernel = w.kernel.astype(np.float64)
    bias = w.biases.astype(np.float64)
    norm = w.batch_norm()
    if norm is not None:
        scales, mean, variance = norm
        # OpenCV: y = gamma * (conv - mean) / sqrt(var + eps) + beta
        factor = scales.astype(np.float64) / np.sqrt(variance.astype(np.float64) + BN_EPSILON)
        kernel = kernel * factor[:, None, None, None]
        bias = bias - mean.astype(np.float64) * factor
    kname = g.const(f"conv{i}.weight", kernel.astype(np.float32))
    bname = g.const(f"conv{i}.bias", bias.astype(np.float32))
    activation = s.get("activation", "logistic")
    out = g.node("Conv", [x, kname, bname], f"conv{i}" if activation == "leaky" else f"layer{i}",
                 kernel_shape=[size, size], strides=[stride, stride], pads=[pad] * 4)
    if activation == "leaky":
        out = g.node("LeakyRelu", [out], f"layer{i}", alpha=LEAKY_SLOPE)
    return out


def _maxpool(g: _Graph, s: Section, x: str, i: int) -> str:
    stride = s.get_int("stride", 1)
    size = s.get_int("size", stride)
    pad = s.get_int("padding", size - 1)
    before, after = pad // 2, pad - pad // 2  # darknet offsets by -pad/2: the rest goes after
    return g.node("MaxPool", [x], f"layer{i}", kernel_shape=[size, size],
                  strides=[stride, stride], pads=[before, before, after, after])


def _upsample(g: _Graph, s: Section, x: str, i: int, where: str) -> str:
    k = s.get_int("stride", 2)
    if k < 1:
        raise ModelError(f"{where}: stride={k} is not supported (only upscaling)")
    if s.get_float("scale", 1.0) != 1.0:
        raise ModelError(f"{where}: scale={s.get('scale')} is not supported")
    scales = g.const(f"upsample{i}.scales", np.array([1, 1, k, k], np.float32))
    return g.node("Resize", [x, "", scales], f"layer{i}", mode="nearest",
                  coordinate_transformation_mode="asymmetric", nearest_mode="floor")


def _route(g: _Graph, s: Section, layers: list[Section], names: list[str], i: int,
           where: str) -> str:
    if s.get_int("groups", 1) != 1:
        raise ModelError(f"{where}: groups={s.get('groups')} is not supported")
    sources = route_sources(layers, i)
    for j in sources:
        if not 0 <= j < i:
            raise ModelError(f"{where}: layers={s.get('layers')} points at layer {j}, "
                             f"which is not before layer {i}")
    if len(sources) == 1:
        return names[sources[0]]
    return g.node("Concat", [names[j] for j in sources], f"layer{i}", axis=1)


def _shortcut(g: _Graph, s: Section, layers: list[Section], names: list[str],
              shapes: list[LayerShape],
              x: str, i: int, where: str) -> str:
    j = shortcut_source(layers, i)
    if not 0 <= j < i:
        raise ModelError(f"{where}: from={s.get('from')} points at layer {j}, "
                         f"which is not before layer {i}")
    if shapes[j] != shapes[i - 1]:
        raise ModelError(f"{where}: adds layer {j} {_shape_text(shapes[j])} to layer {i - 1} "
                         f"{_shape_text(shapes[i - 1])}: shapes differ")
    activation = s.get("activation", "linear")
    if activation not in ("linear", "leaky"):
        raise ModelError(f"{where}: activation={activation} is not supported (linear or leaky)")
    if s.get("weights_type", "none") != "none":
        raise ModelError(f"{where}: weighted shortcuts are not supported")
    out = g.node("Add", [x, names[j]], f"layer{i}" if activation == "linear" else f"add{i}")
    if activation == "leaky":
        out = g.node("LeakyRelu", [out], f"layer{i}", alpha=LEAKY_SLOPE)
    return out


def _mask(s: Section) -> list[int]:
    return s.get_ints("mask", list(range(len(anchors_of(s)))))


def _classes(s: Section) -> int:
    return s.get_int("classes", 80)


def _yolo_head(g: _Graph, s: Section, x: str, shape: LayerShape, net_width: int, net_height: int,
               i: int, where: str) -> str:
    """Decode one head exactly like OpenCV's region layer (rows y, x, anchor)."""
    classes, mask, anchors = _classes(s), _mask(s), anchors_of(s)
    if any(not 0 <= m < len(anchors) for m in mask):
        raise ModelError(f"{where}: mask={s.get('mask')} names anchors that "
                         f"anchors= does not have ({len(anchors)} given)")
    if s.get_int("new_coords", 0) != 0:
        raise ModelError(f"{where}: new_coords=1 (scaled-YOLOv4 decode) is not supported")
    n_anchors, cell = len(mask), 5 + classes
    if shape.channels != n_anchors * cell:
        raise ModelError(f"{where}: the layer before has {shape.channels} channels, the head "
                         f"needs (classes + 5) x len(mask) = {n_anchors * cell}")
    h, w = shape.height, shape.width
    scale_xy = s.get_float("scale_x_y", 1.0)
    p = f"yolo{i}"
    grid = g.const(f"{p}.shape5", np.array([-1, n_anchors, cell, h, w], np.int64))
    t = g.node("Reshape", [x, grid], f"{p}.split")
    t = g.node("Transpose", [t], f"{p}.cells", perm=[0, 3, 4, 1, 2])  # N, H, W, A, cell

    def part(name: str, start: int, end: int) -> str:
        return g.node("Slice", [t, g.const(f"{p}.{name}.starts", np.array([start], np.int64)),
                                g.const(f"{p}.{name}.ends", np.array([end], np.int64)),
                                g.const(f"{p}.{name}.axes", np.array([4], np.int64))],
                      f"{p}.{name}")

    # cx = (x + (sigmoid - 0.5) * s + 0.5) / W, likewise cy: one Mul and one Add with constants
    ys, xs = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    offset = np.stack([xs, ys], axis=-1).astype(np.float64) + 0.5 - 0.5 * scale_xy
    offset = (offset / np.array([w, h]))[None, :, :, None, :]
    xy = g.node("Sigmoid", [part("xy", 0, 2)], f"{p}.xy_sigmoid")
    xy = g.node("Mul", [xy, g.const(f"{p}.xy_scale",
                                    np.array([scale_xy / w, scale_xy / h], np.float32))],
                f"{p}.xy_scaled")
    xy = g.node("Add", [xy, g.const(f"{p}.xy_offset", offset.astype(np.float32))], f"{p}.xy_out")
    sizes = np.array([anchors[m] for m in mask], np.float64) / np.array([net_width, net_height])
    wh = g.node("Exp", [part("wh", 2, 4)], f"{p}.wh_exp")
    wh = g.node("Mul", [wh, g.const(f"{p}.anchors", sizes[None, None, None].astype(np.float32))],
                f"{p}.wh_out")
    obj = g.node("Sigmoid", [part("obj", 4, 5)], f"{p}.objectness")
    cls = g.node("Sigmoid", [part("cls", 5, cell)], f"{p}.class_prob")
    cls = g.node("Mul", [obj, cls], f"{p}.class_score")
    rows = g.node("Concat", [xy, wh, obj, cls], f"{p}.rows5", axis=4)
    flat = g.const(f"{p}.shape3", np.array([-1, h * w * n_anchors, cell], np.int64))
    return g.node("Reshape", [rows, flat], p)


def _shape_text(shape: LayerShape) -> str:
    return f"({shape.channels}x{shape.height}x{shape.width})"
