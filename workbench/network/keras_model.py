"""A Keras model built from a darknet cfg, layer for layer, with darknet's exact arithmetic.

Darknet layer ``i`` becomes Keras layers named ``conv_{i}``, ``bn_{i}``, ``leaky_{i}`` (and
``pad_{i}`` where darknet pads asymmetrically), ``shortcut_{i}``, ``route_{i}``,
``upsample_{i}``, ``maxpool_{i}``. A ``[yolo]`` layer adds nothing: the model's outputs are the
raw outputs of the convolution before each ``[yolo]``, in cfg order; :func:`decode_outputs`
turns them into OpenCV's rows and :mod:`workbench.train.loss` trains them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.darknet.cfg import (
    DarknetCfg,
    anchors_of,
    check_supported,
    conv_padding,
    layer_shapes,
    route_sources,
    shortcut_source,
)
from workbench.errors import ModelError

#: OpenCV's darknet importer normalizes with sqrt(variance + 1e-6); building the Keras model
#: with the same epsilon makes exported files give the Keras numbers with no folding at all.
OPENCV_BN_EPSILON = 1e-6
LEAKY_SLOPE = 0.1


IOU_LOSSES = ("mse", "ciou")  # the [yolo] iou_loss values the trainer computes
#: the largest [yolo] scale_x_y taken: 2 is YOLOv5's reach (half a cell beyond each edge)
MAX_SCALE_XY = 2.0


@dataclass(frozen=True)
class HeadInfo:
    """What the loss and the decoder need to know about one ``[yolo]`` layer."""

    layer_index: int
    mask: tuple[int, ...]                      # which of the head's anchors this head predicts
    anchors: tuple[tuple[float, float], ...]   # the masked anchors, (w, h) in input pixels
    stride: int                                # input pixels per grid cell
    classes: int
    ignore_thresh: float
    truth_thresh: float
    all_anchors: tuple[tuple[float, float], ...] = ()  # every anchor of the [yolo] section
    iou_loss: str = "mse"         # darknet's iou_loss: mse (YOLOv3's box terms) or ciou
    iou_normalizer: float = 0.75  # darknet's iou_normalizer: the weight of the (C)IoU term
    iou_thresh: float = 1.0       # AlexeyAB's iou_thresh: more anchors per truth below 1
    #: darknet's scale_x_y: a centre is (sigmoid * s - (s - 1) / 2 + cell) / grid, so with
    #: s > 1 it reaches the cell's edges and, at 2, half a cell beyond (YOLOv4/v5's grid
    #: sensitivity); the loss then also trains the two nearest neighbour cells (loss.py)
    scale_xy: float = 1.0

    def centre_offset(self, sigmoid: Any) -> Any:
        """A centre's offset from its cell's corner, in cells, from the logistic of its raw
        output (NumPy or TensorFlow alike): ``sigmoid * s - (s - 1) / 2``."""
        return sigmoid * self.scale_xy - 0.5 * (self.scale_xy - 1.0)


def heads_info(cfg: DarknetCfg) -> list[HeadInfo]:
    """One :class:`HeadInfo` per ``[yolo]`` layer, in cfg order."""
    shapes = layer_shapes(cfg)
    heads = []
    for i in cfg.yolo_layers():
        s = cfg.layers[i]
        if s.get_int("new_coords", 0):
            raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [yolo] new_coords=1 (scaled-"
                             "YOLOv4's decode) is not supported")
        scale_xy = s.get_float("scale_x_y", 1.0)
        if not 1.0 <= scale_xy <= MAX_SCALE_XY:
            raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [yolo] scale_x_y={scale_xy:g}: "
                             f"use a value from 1 to {MAX_SCALE_XY:g}")
        anchors = anchors_of(s)
        iou_loss = (s.get("iou_loss", "mse") or "mse").strip().lower()
        if iou_loss not in IOU_LOSSES:
            raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [yolo] iou_loss={iou_loss} is "
                             f"not supported (the trainer has {', '.join(IOU_LOSSES)})")
        mask = tuple(s.get_ints("mask", list(range(len(anchors)))))
        if not anchors or any(m < 0 or m >= len(anchors) for m in mask):
            raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [yolo] mask {list(mask)} "
                             f"does not fit its {len(anchors)} anchors")
        heads.append(HeadInfo(
            layer_index=i,
            mask=mask,
            anchors=tuple(anchors[m] for m in mask),
            stride=int(round(cfg.width / shapes[i].width)),
            classes=s.get_int("classes", 80),
            ignore_thresh=s.get_float("ignore_thresh", 0.5),
            truth_thresh=s.get_float("truth_thresh", 1.0),
            all_anchors=tuple(anchors),
            iou_loss=iou_loss,
            iou_normalizer=s.get_float("iou_normalizer", 0.75),
            iou_thresh=s.get_float("iou_thresh", 1.0),
            scale_xy=scale_xy,
        ))
    return heads


def _head_convolution(cfg: DarknetCfg, yolo_index: int) -> int:
    j = yolo_index - 1
    while j >= 0 and cfg.layers[j].kind != "convolutional":
        j -= 1
    if j < 0:
        raise ModelError(f"{cfg.where()}: [yolo] layer {yolo_index} has no convolution before it")
    return j


def _sized(cfg: DarknetCfg, width: int | None, height: int | None) -> DarknetCfg:
    if width is None and height is None:
        return cfg
    sized = cfg.copy()
    sized.net.options["width"] = str(width or cfg.width)
    sized.net.options["height"] = str(height or cfg.height)
    return sized


def build_model(cfg: DarknetCfg, width: int | None = None, height: int | None = None,
                batch_norm_epsilon: float = OPENCV_BN_EPSILON, dtype: str | None = None,
                also_sizes: Sequence[tuple[int, int]] = ()) -> Any:
    """A ``keras.Model``: input (None, H, W, 3) float32 RGB in [0, 1], one raw output per head.

    Each output is (None, gh, gw, len(mask) * (5 + classes)), the head convolution's linear
    output. ``width``/``height`` default to the cfg's [net] size. ``dtype``: a Keras dtype
    policy for every layer (``mixed_bfloat16`` computes in bfloat16 with float32 weights);
    None is the global policy (float32). ``also_sizes``: (width, height) pairs the model must
    also run at (multi-scale training): its input is then (None, None, None, 3), after a check
    that darknet pads every layer the same way at each of them (ModelError where not).
    """
    import keras

    check_supported(cfg)
    kw = {"dtype": dtype} if dtype else {}
    sized = _sized(cfg, width, height)
    shapes = layer_shapes(sized)
    layers = sized.layers
    h, w = sized.height, sized.width
    for other in also_sizes:
        if _padding_plan(_sized(cfg, *other)) != _padding_plan(sized):
            raise ModelError(f"{cfg.where()}: the network pads its layers differently at "
                             f"{other[0]}x{other[1]} than at {w}x{h}; it cannot train at both")
    shape = (None, None) if also_sizes else (h, w)
    inputs = keras.Input((*shape, sized.channels), dtype="float32", name="image")
    outs: list[Any] = []
    x = inputs
    prev_hw = (h, w)
    for i, s in enumerate(layers):
        if s.kind == "convolutional":
            x = _convolution(keras, s, i, x, prev_hw, (shapes[i].height, shapes[i].width),
                             batch_norm_epsilon, kw)
        elif s.kind == "shortcut":
            j = shortcut_source(layers, i)
            if shapes[j] != shapes[i - 1]:
                raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [shortcut] joins layers of "
                                 f"shapes {shapes[j]} and {shapes[i - 1]}")
            if s.get("activation", "linear") != "linear":
                raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [shortcut] activation "
                                 "must be linear")
            x = keras.layers.Add(name=f"shortcut_{i}", **kw)([outs[j], x])
        elif s.kind == "route":
            sources = route_sources(layers, i)
            if len(sources) == 1:
                x = keras.layers.Identity(name=f"route_{i}", **kw)(outs[sources[0]])
            else:
                x = keras.layers.Concatenate(axis=-1, name=f"route_{i}", **kw)([outs[j] for j in sources])
        elif s.kind == "upsample":
            k = s.get_int("stride", 2)
            x = keras.layers.UpSampling2D(k, interpolation="nearest", name=f"upsample_{i}",
                                              **kw)(x)
        elif s.kind == "maxpool":
            x = _maxpool(keras, cfg, s, i, x, prev_hw, (shapes[i].height, shapes[i].width), kw)
        # [yolo] passes its input through; the head convolution is the output
        outs.append(x)
        prev_hw = (shapes[i].height, shapes[i].width)
    heads = [outs[_head_convolution(sized, i)] for i in sized.yolo_layers()]
    if not heads:
        raise ModelError(f"{cfg.where()}: the cfg has no [yolo] section")
    return keras.Model(inputs, heads, name="darknet")


def _padding_plan(sized: DarknetCfg) -> list[tuple[int, ...]]:
    """What :func:`_convolution` and :func:`_maxpool` pad at the cfg's size, layer by layer
    (the maxpool check raising where a size is not supported)."""
    shapes = layer_shapes(sized)
    plan: list[tuple[int, ...]] = []
    prev = (sized.height, sized.width)
    for i, s in enumerate(sized.layers):
        out = (shapes[i].height, shapes[i].width)
        if s.kind == "convolutional":
            size, stride, pad = s.get_int("size", 1), s.get_int("stride", 1), conv_padding(s)
            plan.append((i, pad, *[max(0, (o - 1) * stride + size - n - pad)
                                   for o, n in zip(out, prev, strict=True)]))
        elif s.kind == "maxpool":
            size = s.get_int("size", s.get_int("stride", 1))
            stride = s.get_int("stride", 1)
            plan.append((i, *[max((o - 1) * stride + size - n, 0) // 2
                              for o, n in zip(out, prev, strict=True)]))
        prev = out
    return plan


def run_heads(model: Any, images: Any, training: bool = False) -> list[Any]:
    """The model's raw head outputs as a list, one per [yolo] head.

    Keras hands back a bare tensor, not a one-element list, for a model with a single output:
    a cfg with one [yolo] head would otherwise break every caller that iterates the heads.
    """
    import tensorflow as tf

    out = model(images, training=training)
    out = list(out) if isinstance(out, (list, tuple)) else [out]
    # mixed precision computes in bfloat16/float16: the loss and the decoder work in float32
    return [o if o.dtype == tf.float32 else tf.cast(o, tf.float32) for o in out]


def _convolution(keras: Any, s: Any, i: int, x: Any, in_hw: tuple[int, int],
                 out_hw: tuple[int, int], epsilon: float, kw: dict) -> Any:
    size, stride, pad = s.get_int("size", 1), s.get_int("stride", 1), conv_padding(s)
    bn = bool(s.get_int("batch_normalize", 0))
    if stride == 1 and size % 2 == 1 and pad == size // 2:
        padding = "same"
    else:
        # darknet pads `pad` on every side; only the rows/columns a valid convolution reads
        # matter, which for stride 2 on an even size is top/left only
        after = [max(0, (o - 1) * stride + size - n - pad)
                 for o, n in zip(out_hw, in_hw, strict=True)]
        if pad or any(after):
            x = keras.layers.ZeroPadding2D(((pad, after[0]), (pad, after[1])), name=f"pad_{i}",
                                     **kw)(x)
        padding = "valid"
    x = keras.layers.Conv2D(s.get_int("filters", 1), size, strides=stride, padding=padding,
                            use_bias=not bn, name=f"conv_{i}", **kw)(x)
    if bn:
        x = keras.layers.BatchNormalization(epsilon=epsilon, momentum=0.99, name=f"bn_{i}",
                                               **kw)(x)
    if s.get("activation", "logistic") == "leaky":
        x = keras.layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"leaky_{i}", **kw)(x)
    return x


def _maxpool(keras: Any, cfg: DarknetCfg, s: Any, i: int, x: Any, in_hw: tuple[int, int],
             out_hw: tuple[int, int], kw: dict) -> Any:
    size = s.get_int("size", s.get_int("stride", 1))
    stride = s.get_int("stride", 1)
    pad = s.get_int("padding", size - 1)
    # darknet (and OpenCV's importer) pads pad//2 before and the rest after, ignoring the
    # padding in the max; TensorFlow's "same" does the same whenever the sizes agree
    for n, o in zip(in_hw, out_hw, strict=True):
        total = max((o - 1) * stride + size - n, 0)
        if -(-n // stride) != o or total // 2 != pad // 2:
            raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [maxpool] size={size} "
                             f"stride={stride} padding={pad} is not supported at this input size")
    return keras.layers.MaxPooling2D(size, strides=stride, padding="same", name=f"maxpool_{i}",
                                     **kw)(x)


def darknet_layers(model: Any, cfg: DarknetCfg, index: int) -> list[Any]:
    """The Keras layers that darknet layer ``index`` became."""
    kinds = ("pad", "conv", "bn", "leaky", "shortcut", "route", "upsample", "maxpool")
    names = {f"{k}_{index}" for k in kinds}
    return [layer for layer in model.layers if layer.name in names]


def set_trainable_prefix(model: Any, cfg: DarknetCfg, n_layers: int, trainable: bool) -> int:
    """Set ``trainable`` on the Keras layers of darknet layers ``0 .. n_layers-1``.

    Freezing the backbone (``trainable=False``) also runs its batch norms in inference mode,
    as keras-yolo3 users expect; returns how many Keras layers changed.
    """
    changed = 0
    for i in range(min(n_layers, len(cfg.layers))):
        for layer in darknet_layers(model, cfg, i):
            layer.trainable = trainable
            changed += 1
    return changed


def decode_outputs(raw_outputs: list[Any], heads: list[HeadInfo], net_width: int,
                   net_height: int) -> list[Any]:
    """Raw head outputs (N, gh, gw, A*(5+C)) -> (N, gh*gw*A, 5+C) rows as OpenCV gives them.

    A row is cx, cy, w, h normalized to the input, objectness, then objectness x class
    probability; rows run y, x, anchor like OpenCV's region layer. NumPy in, NumPy out;
    tensors in, tensors out.
    """
    if len(raw_outputs) != len(heads):
        raise ModelError(f"{len(raw_outputs)} outputs for {len(heads)} [yolo] heads")
    decode = _decode_numpy if all(isinstance(r, np.ndarray) for r in raw_outputs) else _decode_tf
    return [decode(r, h, net_width, net_height) for r, h in zip(raw_outputs, heads, strict=True)]


def _decode_numpy(raw: np.ndarray, head: HeadInfo, net_w: int, net_h: int) -> np.ndarray:
    n, gh, gw, _ = raw.shape
    a = len(head.mask)
    p = raw.astype(np.float32).reshape(n, gh, gw, a, 5 + head.classes)
    sig = 1.0 / (1.0 + np.exp(-p))
    gx = np.arange(gw, dtype=np.float32)[None, None, :, None]
    gy = np.arange(gh, dtype=np.float32)[None, :, None, None]
    anchors = np.asarray(head.anchors, np.float32)
    cx = (gx + head.centre_offset(sig[..., 0])) / gw
    cy = (gy + head.centre_offset(sig[..., 1])) / gh
    bw = np.exp(p[..., 2]) * anchors[:, 0] / net_w
    bh = np.exp(p[..., 3]) * anchors[:, 1] / net_h
    obj = sig[..., 4]
    cls = obj[..., None] * sig[..., 5:]
    rows = np.concatenate([np.stack([cx, cy, bw, bh, obj], -1), cls], -1)
    return rows.reshape(n, gh * gw * a, 5 + head.classes).astype(np.float32)


def _decode_tf(raw: Any, head: HeadInfo, net_w: int, net_h: int) -> Any:
    import tensorflow as tf

    raw = tf.cast(raw, tf.float32)
    shape = tf.shape(raw)
    n, gh, gw = shape[0], shape[1], shape[2]
    a = len(head.mask)
    p = tf.reshape(raw, [n, gh, gw, a, 5 + head.classes])
    sig = tf.sigmoid(p)
    gx = tf.reshape(tf.cast(tf.range(gw), tf.float32), [1, 1, -1, 1])
    gy = tf.reshape(tf.cast(tf.range(gh), tf.float32), [1, -1, 1, 1])
    anchors = tf.constant(head.anchors, tf.float32)
    cx = (gx + head.centre_offset(sig[..., 0])) / tf.cast(gw, tf.float32)
    cy = (gy + head.centre_offset(sig[..., 1])) / tf.cast(gh, tf.float32)
    bw = tf.exp(p[..., 2]) * anchors[:, 0] / float(net_w)
    bh = tf.exp(p[..., 3]) * anchors[:, 1] / float(net_h)
    obj = sig[..., 4]
    cls = obj[..., None] * sig[..., 5:]
    rows = tf.concat([tf.stack([cx, cy, bw, bh, obj], -1), cls], -1)
    return tf.reshape(rows, [n, gh * gw * a, 5 + head.classes])


#: a fresh head starts out predicting "no object" almost everywhere (RetinaNet's and YOLOv5's
#: prior): with objectness 0.5 on every anchor the first steps' objectness loss is in the
#: hundreds per image and its gradients swamp what the pretrained layers know
OBJECTNESS_PRIOR = 0.01


def init_head_priors(model: Any, cfg: DarknetCfg, heads: list[HeadInfo],
                     layers: list[int] | None = None) -> int:
    """Set the biases of the head convolutions (``layers``: darknet indices; None: every head)
    so objectness starts at OBJECTNESS_PRIOR and class probabilities at YOLOv5's
    ``0.6 / (classes - 0.99)``; returns how many heads were set."""
    done = 0
    for head in heads:
        j = _head_convolution(cfg, head.layer_index)
        if layers is not None and j not in layers:
            continue
        conv = model.get_layer(f"conv_{j}")
        params = conv.get_weights()
        if len(params) != 2:
            continue  # a batch-normalized head has no bias to set
        bias = params[1].reshape(len(head.mask), 5 + head.classes)
        bias[:, 4] = np.log(OBJECTNESS_PRIOR / (1 - OBJECTNESS_PRIOR))
        bias[:, 5:] = np.log(0.6 / max(head.classes - 0.99, 1e-3))
        conv.set_weights([params[0], bias.reshape(-1)])
        done += 1
    return done
