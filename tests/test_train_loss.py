"""The YOLOv3 loss against a line-by-line port of darknet's forward_yolo_layer, and its safety."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from model_factory import random_cfg  # noqa: E402

from workbench.errors import ModelError  # noqa: E402
from workbench.network.keras_model import HeadInfo, build_model, heads_info  # noqa: E402
from workbench.train.loss import yolo_loss  # noqa: E402

NET = 160


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _iou_cxcywh(a, b) -> float:
    iw = min(a[0] + a[2] / 2, b[0] + b[2] / 2) - max(a[0] - a[2] / 2, b[0] - b[2] / 2)
    ih = min(a[1] + a[3] / 2, b[1] + b[3] / 2) - max(a[1] - a[3] / 2, b[1] - b[3] / 2)
    inter = max(iw, 0.0) * max(ih, 0.0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def darknet_deltas(raw: np.ndarray, truths: list[list[tuple]], head: HeadInfo,
                   objectness: str = "one"):
    """pjreddie/darknet src/yolo_layer.c forward_yolo_layer, ported loop for loop, with
    AlexeyAB darknet's iou_thresh (the truth also goes to every other anchor of the mask whose
    shape IoU passes it) and YOLOv5's objectness target (the IoU of the cell's box and truth).

    With the head's scale_x_y ``s`` a centre's offset in its cell is sigmoid * s - (s - 1) / 2
    (AlexeyAB darknet), its delta (target - offset) / s (the cross-entropy's gradient on the
    moved target); at s = 2 each (truth, anchor) also trains the neighbour cell nearest its
    centre across x, then the one across y (YOLOv5), all those before every centre cell, so a
    centre cell wins a cell two claim, and a neighbour cell learns only its own box's class.

    Returns (delta, ignored): delta = target - activated output, which darknet back-propagates
    to the raw outputs unchanged; ignored counts negatives skipped by ignore_thresh.
    """
    s = head.scale_xy

    def offset(v: float) -> float:
        return v * s - (s - 1) / 2

    b_n, gh, gw, _ = raw.shape
    a_n, c_n = len(head.mask), head.classes
    p = raw.reshape(b_n, gh, gw, a_n, 5 + c_n).astype(np.float64)
    out = p.copy()
    for k in [0, 1, 4] + list(range(5, 5 + c_n)):
        out[..., k] = 1 / (1 + np.exp(-p[..., k]))
    delta = np.zeros_like(p)
    ignored = 0
    for b in range(b_n):
        for j in range(gh):
            for i in range(gw):
                for n in range(a_n):
                    aw, ah = head.anchors[n]
                    pred = ((i + offset(out[b, j, i, n, 0])) / gw,
                            (j + offset(out[b, j, i, n, 1])) / gh,
                            math.exp(p[b, j, i, n, 2]) * aw / NET,
                            math.exp(p[b, j, i, n, 3]) * ah / NET)
                    best = max([_iou_cxcywh(pred, t[:4]) for t in truths[b]], default=0.0)
                    delta[b, j, i, n, 4] = 0 - out[b, j, i, n, 4]
                    if best > head.ignore_thresh:
                        delta[b, j, i, n, 4] = 0
                        ignored += 1
    claims: dict[tuple, str] = {}
    phases = ("x", "y", "centre") if s >= 2 else ("centre",)
    for phase, b in ((phase, b) for phase in phases for b in range(b_n)):
        for x, y, w, h, cls in truths[b]:
            best_iou, best_n = 0.0, 0
            for n, (aw, ah) in enumerate(head.all_anchors):
                iou = _iou_cxcywh((0, 0, w, h), (0, 0, aw / NET, ah / NET))
                if iou > best_iou:
                    best_iou, best_n = iou, n
            shape_iou = [_iou_cxcywh((0, 0, w, h), (0, 0, aw / NET, ah / NET))
                         for aw, ah in head.all_anchors]
            chosen = [best_n] + [k for k in head.mask
                                 if k != best_n and shape_iou[k] > head.iou_thresh]
            for anchor_n in chosen:
                if anchor_n not in head.mask:
                    continue
                n = head.mask.index(anchor_n)
                i, j = int(x * gw), int(y * gh)
                if phase == "x":
                    i += 1 if x * gw - i >= 0.5 else -1
                if phase == "y":
                    j += 1 if y * gh - j >= 0.5 else -1
                if not (0 <= i < gw and 0 <= j < gh):
                    continue
                scale = 2 - w * h
                cell = delta[b, j, i, n]
                o = out[b, j, i, n]
                aw, ah = head.all_anchors[anchor_n]
                cell[0] = scale * (x * gw - i - offset(o[0])) / s
                cell[1] = scale * (y * gh - j - offset(o[1])) / s
                cell[2] = scale * (math.log(w * NET / aw) - p[b, j, i, n, 2])
                cell[3] = scale * (math.log(h * NET / ah) - p[b, j, i, n, 3])
                if objectness == "iou":
                    pred = ((i + offset(o[0])) / gw, (j + offset(o[1])) / gh,
                            math.exp(p[b, j, i, n, 2]) * aw / NET,
                            math.exp(p[b, j, i, n, 3]) * ah / NET)
                    cell[4] = _iou_cxcywh(pred, (x, y, w, h)) - o[4]
                else:
                    cell[4] = 1 - o[4]
                # delta_yolo_class: a centre cell already holding a truth adds its class
                if phase == "centre" and claims.get((b, j, i, n)) == "centre":
                    cell[5 + cls] = 1 - o[5 + cls]
                else:
                    for c in range(c_n):
                        cell[5 + c] = (1.0 if c == cls else 0.0) - o[5 + c]
                claims[b, j, i, n] = phase
    return delta.reshape(raw.shape), ignored


# clean truths (cx, cy, w, h, class) per image, as darknet holds them after loading; centres
# stay off cell borders, where float32 and float64 could pick different cells
TRUTHS = [
    [(0.32, 0.43, 0.2, 0.3, 0), (0.33, 0.44, 0.21, 0.29, 2),  # same cell and anchor
     (0.95, 0.05, 0.1, 0.08, 1), (0.5, 0.5, 0.9, 0.9, 1),
     (0.11, 0.53, 0.22, 0.4, 0)],                             # the clipped out-of-range box
    [],
    [(0.13, 0.87, 0.01, 0.01, 2)],
]


# the same, with every centre off the middle of its cell too, where a neighbour cell is chosen
NEIGHBOUR_TRUTHS = [[(0.93, 0.07, 0.1, 0.08, 1) if t[0] == 0.95 else
                     (0.52, 0.46, 0.9, 0.9, 1) if t[0] == 0.5 else t for t in image]
                    for image in TRUTHS]


def _label_arrays(truths=TRUTHS):
    """Truths as the loss takes them, plus junk the loss must drop the way darknet does."""
    rows = []
    for image in truths:
        r = [((x - w / 2, y - h / 2, x + w / 2, y + h / 2), c) for x, y, w, h, c in image
             if not (x == 0.11 and y == 0.53)]
        rows.append(r)
    rows[0].append(((-0.3, 0.33, 0.22, 0.73), 0))  # clips to the last truth of image 0
    rows[0].append(((0.4, 0.4, 0.4, 0.6), 1))       # zero width
    rows[1].append(((1.2, 1.2, 1.5, 1.5), 0))       # outside the image: clips to nothing
    rows[1].append(((np.nan, 0.1, 0.2, 0.2), 1))    # NaN
    rows[2].append(((0.1, 0.1, 0.3, 0.3), 7))       # class out of range
    m = max(len(r) for r in rows) + 2
    boxes = np.zeros((len(rows), m, 4), np.float32)
    classes = np.full((len(rows), m), -1, np.int32)
    for b, r in enumerate(rows):
        for k, (box, c) in enumerate(r):
            boxes[b, k], classes[b, k] = box, c
    return boxes, classes


def _raw_outputs(heads: list[HeadInfo], seed: int = 0, truths=TRUTHS) -> list[np.ndarray]:
    """Random raw outputs, with some predictions placed right on a truth (to exercise ignore)."""
    rng = np.random.default_rng(seed)
    outs = []
    for head, grid in zip(heads, (5, 10), strict=True):
        a_n = len(head.mask)
        raw = rng.normal(0, 1, (len(truths), grid, grid, a_n, 5 + head.classes))
        x, y, w, h, _ = truths[0][3]
        i, j = int(x * grid), int(y * grid)
        for n, (aw, ah) in enumerate(head.anchors):
            tx, ty = x * grid - i, y * grid - j
            raw[0, j, i, n, 0:4] = (math.log(tx / (1 - tx)) if 0 < tx < 1 else 0.0,
                                    math.log(ty / (1 - ty)) if 0 < ty < 1 else 0.0,
                                    math.log(w * NET / aw), math.log(h * NET / ah))
        outs.append(raw.reshape(len(truths), grid, grid, -1).astype(np.float32))
    return outs


@pytest.fixture(scope="module")
def tiny_heads() -> list[HeadInfo]:
    return heads_info(random_cfg("yolov3-tiny", 3, NET))


def test_loss_gradient_equals_darknet_deltas(tiny_heads):
    raw = _raw_outputs(tiny_heads)
    boxes, classes = _label_arrays()
    variables = [tf.Variable(r) for r in raw]
    with tf.GradientTape() as tape:
        parts = yolo_loss(variables, boxes, classes, tiny_heads, NET, NET)
    grads = tape.gradient(parts["total"], variables)
    total_ignored = 0
    for r, g, head in zip(raw, grads, tiny_heads, strict=True):
        delta, ignored = darknet_deltas(r, TRUTHS, head)
        total_ignored += ignored
        np.testing.assert_allclose(g.numpy(), -delta / len(TRUTHS), atol=2e-6, rtol=1e-4)
    assert total_ignored > 0  # the ignore_thresh path was exercised


@pytest.mark.parametrize("iou_thresh, objectness", [(0.213, "one"), (0.213, "iou"),
                                                    (1.0, "iou")])
def test_more_anchors_per_truth_and_iou_objectness_equal_the_port(tiny_heads, iou_thresh,
                                                                  objectness):
    heads = [dataclasses.replace(h, iou_thresh=iou_thresh) for h in tiny_heads]
    raw = _raw_outputs(heads)
    boxes, classes = _label_arrays()
    variables = [tf.Variable(r) for r in raw]
    with tf.GradientTape() as tape:
        parts = yolo_loss(variables, boxes, classes, heads, NET, NET, objectness=objectness)
    grads = tape.gradient(parts["total"], variables)
    changed = 0
    for r, g, head, plain in zip(raw, grads, heads, tiny_heads, strict=True):
        delta, _ = darknet_deltas(r, TRUTHS, head, objectness)
        np.testing.assert_allclose(g.numpy(), -delta / len(TRUTHS), atol=2e-6, rtol=1e-4)
        changed += int(np.abs(delta - darknet_deltas(r, TRUTHS, plain)[0]).max() > 1e-3)
    assert changed > 0  # the variant really differs from darknet's YOLOv3 loss here


@pytest.mark.parametrize("scale_xy, iou_thresh, objectness", [
    (1.05, 1.0, "one"), (2.0, 1.0, "one"), (2.0, 0.213, "iou"), (1.5, 0.213, "iou")])
def test_scale_xy_and_neighbour_cells_equal_the_port(tiny_heads, scale_xy, iou_thresh,
                                                     objectness):
    heads = [dataclasses.replace(h, iou_thresh=iou_thresh, scale_xy=scale_xy)
             for h in tiny_heads]
    raw = _raw_outputs(heads, truths=NEIGHBOUR_TRUTHS)
    boxes, classes = _label_arrays(NEIGHBOUR_TRUTHS)
    variables = [tf.Variable(r) for r in raw]
    with tf.GradientTape() as tape:
        parts = yolo_loss(variables, boxes, classes, heads, NET, NET, objectness=objectness)
    grads = tape.gradient(parts["total"], variables)
    for r, g, head in zip(raw, grads, heads, strict=True):
        delta, _ = darknet_deltas(r, NEIGHBOUR_TRUTHS, head, objectness)
        np.testing.assert_allclose(g.numpy(), -delta / len(TRUTHS), atol=2e-6, rtol=1e-4)
    # at 2 more cells train than the centres alone
    cells = [int((np.abs(darknet_deltas(r, NEIGHBOUR_TRUTHS, h, objectness)[0]
                         .reshape(*r.shape[:3], len(h.mask), -1)[..., 0]) > 0).sum())
             for r, h in zip(raw, heads, strict=True)]
    plain = [int((np.abs(darknet_deltas(r, NEIGHBOUR_TRUTHS, dataclasses.replace(
        h, scale_xy=1.0), objectness)[0].reshape(*r.shape[:3], len(h.mask), -1)[..., 0]) > 0)
        .sum()) for r, h in zip(raw, heads, strict=True)]
    assert (sum(cells) > sum(plain)) == (scale_xy >= 2)


def test_unknown_objectness_target_is_refused(tiny_heads):
    boxes, classes = _label_arrays()
    with pytest.raises(ModelError, match="objectness"):
        yolo_loss([tf.constant(r) for r in _raw_outputs(tiny_heads)], boxes, classes,
                  tiny_heads, NET, NET, objectness="half")


def test_loss_parts_are_finite_and_sum(tiny_heads):
    raw = _raw_outputs(tiny_heads, seed=1)
    boxes, classes = _label_arrays()
    parts = yolo_loss([tf.constant(r) for r in raw], boxes, classes, tiny_heads, NET, NET)
    values = {k: float(v) for k, v in parts.items()}
    assert all(np.isfinite(v) and v >= 0 for v in values.values())
    assert values["total"] == pytest.approx(values["box"] + values["obj"] + values["cls"],
                                            rel=1e-6)


def test_loss_safe_with_degenerate_boxes_and_empty_images(tiny_heads):
    b, m = 3, 5
    boxes = np.array([
        [[0, 0, 0, 0], [1, 1, 1, 1], [0, 0, 1, 1], [0.999, 0.999, 1.0, 1.0], [-5, -5, 5, 5]],
        [[0.5, 0.5, 0.5, 0.9], [np.inf, 0, 1, 1], [-np.inf, -np.inf, np.inf, np.inf],
         [0.2, 0.2, 0.1, 0.1], [2, 2, 3, 3]],
        [[0, 0, 0, 0]] * m,
    ], np.float32)
    classes = np.array([[0, 1, 2, 0, 1], [1, 2, 0, 1, 2], [-1] * m], np.int32)
    # extreme raw outputs too: exp() overflows if the loss is careless
    raw = [tf.Variable(np.full((b, g, g, 24), v, np.float32)) for g, v in ((5, 60.0), (10, -60.0))]
    with tf.GradientTape() as tape:
        parts = yolo_loss(raw, boxes, classes, tiny_heads, NET, NET)
    grads = tape.gradient(parts["total"], raw)
    assert all(np.isfinite(float(v)) for v in parts.values())
    assert all(np.isfinite(g.numpy()).all() for g in grads)
    empty = yolo_loss([tf.zeros((2, 5, 5, 24)), tf.zeros((2, 10, 10, 24))],
                      np.zeros((2, 0, 4), np.float32), np.zeros((2, 0), np.int32),
                      tiny_heads, NET, NET)
    assert float(empty["box"]) == 0.0 and float(empty["cls"]) == 0.0
    # no truths: every prediction is a negative, obj = sum of softplus(0) over 2 images
    assert float(empty["obj"]) == pytest.approx((75 + 300) * math.log(2.0), rel=1e-5)


def test_a_few_gradient_steps_lower_the_loss():
    import keras

    cfg = random_cfg("yolov3-tiny", 2, 96)
    heads = heads_info(cfg)
    keras.utils.set_random_seed(0)
    model = build_model(cfg)
    images = np.random.default_rng(0).random((2, 96, 96, 3)).astype(np.float32)
    boxes = np.array([[[0.1, 0.1, 0.5, 0.6], [0.6, 0.2, 0.9, 0.5]],
                      [[0.3, 0.3, 0.7, 0.9], [0, 0, 0, 0]]], np.float32)
    classes = np.array([[0, 1], [1, -1]], np.int32)
    optimizer = keras.optimizers.Adam(1e-3)

    def step():  # eager: tracing a training step costs more than these few steps
        with tf.GradientTape() as tape:
            parts = yolo_loss(model(images, training=True), boxes, classes, heads, 96, 96)
        grads = tape.gradient(parts["total"], model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return parts["total"]

    first = float(step())
    for _ in range(5):
        last = float(step())
    assert np.isfinite(last) and last < 0.7 * first


def test_truth_thresh_below_one_is_refused(tiny_heads):
    head = tiny_heads[0]
    odd = HeadInfo(head.layer_index, head.mask, head.anchors, head.stride, head.classes,
                   head.ignore_thresh, 0.9, head.all_anchors)
    with pytest.raises(ModelError, match="truth_thresh"):
        yolo_loss([tf.zeros((1, 5, 5, 24))], np.zeros((1, 1, 4), np.float32),
                  np.full((1, 1), -1, np.int32), [odd], NET, NET)


def _ciou_reference(a, b) -> float:
    """CIoU from the paper's definition (Zheng et al., AAAI 2020), corner form, plain Python."""
    (ax, ay, aw, ah), (bx, by, bw, bh) = a, b
    a1, a2 = (ax - aw / 2, ay - ah / 2), (ax + aw / 2, ay + ah / 2)
    b1, b2 = (bx - bw / 2, by - bh / 2), (bx + bw / 2, by + bh / 2)
    iw = max(0.0, min(a2[0], b2[0]) - max(a1[0], b1[0]))
    ih = max(0.0, min(a2[1], b2[1]) - max(a1[1], b1[1]))
    iou = iw * ih / (aw * ah + bw * bh - iw * ih)
    c2 = ((max(a2[0], b2[0]) - min(a1[0], b1[0])) ** 2
          + (max(a2[1], b2[1]) - min(a1[1], b1[1])) ** 2)
    rho2 = (ax - bx) ** 2 + (ay - by) ** 2
    v = 4 / math.pi ** 2 * (math.atan(aw / ah) - math.atan(bw / bh)) ** 2
    alpha = v / ((1 - iou) + v) if v > 0 else 0.0
    return iou - rho2 / c2 - alpha * v


def test_ciou_equals_the_papers_definition():
    from workbench.train.loss import ciou

    rng = np.random.default_rng(3)
    a = np.column_stack([rng.uniform(0, 50, 200), rng.uniform(0, 50, 200),
                         rng.uniform(1, 40, 200), rng.uniform(1, 40, 200)])
    b = a.copy()
    b[:100] = np.column_stack([rng.uniform(0, 50, 100), rng.uniform(0, 50, 100),
                               rng.uniform(1, 40, 100), rng.uniform(1, 40, 100)])
    b[100:150, :2] += rng.uniform(-3, 3, (50, 2))          # overlapping, shifted
    got = ciou(tf.constant(a, tf.float64), tf.constant(b, tf.float64)).numpy()
    want = [_ciou_reference(x, y) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert np.allclose(got[150:], 1.0) and (got[:100] < 1).all()


def _with_iou_loss(heads: list[HeadInfo], kind: str) -> list[HeadInfo]:
    from dataclasses import replace

    return [replace(h, iou_loss=kind, iou_normalizer=0.5) for h in heads]


def test_ciou_box_term_is_zero_on_a_perfect_box_and_finite_on_junk(tiny_heads):
    heads = _with_iou_loss(tiny_heads, "ciou")
    boxes, classes = _label_arrays()
    parts = yolo_loss([tf.constant(o) for o in _raw_outputs(heads)], boxes, classes, heads,
                      NET, NET)
    assert all(np.isfinite(float(v)) for v in parts.values())
    mse = yolo_loss([tf.constant(o) for o in _raw_outputs(tiny_heads)], boxes, classes,
                    tiny_heads, NET, NET)
    assert float(parts["obj"]) == pytest.approx(float(mse["obj"]))   # only the box term moves
    assert float(parts["box"]) != pytest.approx(float(mse["box"]))
    # one truth, the prediction at its cell placed exactly on it: 1 - CIoU is 0 there
    x, y, w, h, c = TRUTHS[0][3]
    one = np.array([[[x - w / 2, y - h / 2, x + w / 2, y + h / 2]]], np.float32)
    outs = [o[:1] for o in _raw_outputs(heads)]
    single = yolo_loss([tf.constant(o) for o in outs], one, np.array([[c]], np.int32), heads,
                       NET, NET)
    assert float(single["box"]) == pytest.approx(0.0, abs=1e-4)


def test_ciou_steps_lower_the_loss_and_unknown_kinds_are_refused():
    import keras

    cfg = random_cfg("yolov3-tiny", 2, 96)
    for i in cfg.yolo_layers():
        cfg.layers[i].options["iou_loss"] = "ciou"
    heads = heads_info(cfg)
    assert {h.iou_loss for h in heads} == {"ciou"} and heads[0].iou_normalizer == 0.75
    boxes = np.array([[[0.1, 0.1, 0.5, 0.6], [0.6, 0.2, 0.9, 0.5]],
                      [[0.3, 0.3, 0.7, 0.9], [0, 0, 0, 0]]], np.float32)
    classes = np.array([[0, 1], [1, -1]], np.int32)
    # the box term alone, descended on the raw outputs: its gradient leads somewhere
    rng = np.random.default_rng(0)
    raw = [tf.Variable(rng.normal(0, 1, (2, g, g, 21)).astype(np.float32)) for g in (3, 6)]
    optimizer = keras.optimizers.Adam(0.05)
    box = []
    for _ in range(40):
        with tf.GradientTape() as tape:
            parts = yolo_loss(raw, boxes, classes, heads, 96, 96)
        optimizer.apply_gradients(zip(tape.gradient(parts["box"], raw), raw, strict=True))
        box.append(float(parts["box"]))
    assert box[-1] < 0.5 * box[0]
    # the whole model trains on the total, gradients finite
    keras.utils.set_random_seed(0)
    model = build_model(cfg)
    images = np.random.default_rng(0).random((2, 96, 96, 3)).astype(np.float32)
    optimizer = keras.optimizers.Adam(1e-3)
    total = []
    for _ in range(6):
        with tf.GradientTape() as tape:
            parts = yolo_loss(model(images, training=True), boxes, classes, heads, 96, 96)
        grads = tape.gradient(parts["total"], model.trainable_variables)
        assert all(np.isfinite(g.numpy()).all() for g in grads if g is not None)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        total.append(float(parts["total"]))
    assert total[-1] < 0.7 * total[0]
    cfg.layers[cfg.yolo_layers()[0]].options["iou_loss"] = "giou"
    with pytest.raises(ModelError, match="iou_loss=giou is not supported"):
        heads_info(cfg)
