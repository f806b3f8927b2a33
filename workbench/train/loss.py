"""The YOLOv3 loss as darknet's yolo layer computes it, vectorized in TensorFlow.

Darknet (``forward_yolo_layer``) writes deltas on the activated outputs and passes them back
without the logistic's derivative, which is exactly the gradient of these terms:

- box: for each truth, at the cell holding its centre and its best anchor (by shape IoU over
  all of the head's anchors, kept only when this head's mask holds it), binary cross-entropy
  of sigmoid(x), sigmoid(y) against the offsets in the cell and half the squared error of the
  raw w, h against ``log(truth size / anchor)``, all scaled by ``2 - w*h``. The entropy of the
  offsets is subtracted so a perfect fit scores 0 (the gradient is unchanged).
- with ``iou_thresh`` below 1 in the [yolo] section (AlexeyAB darknet's key, 0.213 in its
  YOLOv4 cfgs), a truth is also assigned to every other anchor of the head whose shape overlaps
  it by more than that: several positives per object, each trained as the best one is.
- objectness: cross-entropy to 1 at those cells (or, with ``objectness="iou"``, to the IoU of
  the cell's predicted box with its truth, as YOLOv5 does), to 0 elsewhere except where the
  predicted box overlaps some truth by more than the head's ``ignore_thresh``.
- with ``iou_loss=ciou`` in the [yolo] section (AlexeyAB darknet's key), the box terms are
  ``iou_normalizer * (1 - CIoU)`` of the predicted and the true box instead (default
  normalizer 0.75, darknet's): the overlap itself is optimized, which is what mAP@[.5:.95]
  rewards.
- with ``scale_x_y`` S in the [yolo] section (darknet's key), a centre's offset in its cell is
  ``sigmoid * S - (S - 1) / 2`` and the centre terms' targets move with it; at S = 2 (YOLOv5's
  reach, half a cell beyond each edge) each (truth, anchor) pair also trains the neighbour cell
  nearest its centre across x and the one across y, as YOLOv5 assigns: three positives per
  pair, the centre cell winning a cell two claim.
- class: cross-entropy per class at the positive cells (truths sharing a cell share it, as in
  darknet; the box of the last one wins, as in darknet).

Each part is summed over the batch and divided by the number of images. Truth boxes are clipped
to the image and those under 0.001 wide or high dropped (darknet's ``correct_boxes``), so
zero-size, edge and out-of-range boxes and images without boxes stay finite.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from workbench.errors import ModelError
from workbench.network.keras_model import HeadInfo

MIN_BOX_SIZE = 0.001  # darknet drops truths narrower or lower than this (normalized)
_MAX_RAW_WH = 20.0    # exp() guard for the ignore test only; the loss itself is not clipped


OBJECTNESS_TARGETS = ("one", "iou")  # what a positive cell's objectness is trained towards


def yolo_loss(outputs: list[Any], boxes: Any, classes: Any, heads: list[HeadInfo],
              net_width: int, net_height: int, objectness: str = "one") -> dict[str, Any]:
    """Loss parts {"box", "obj", "cls", "total"} (scalar tensors, per image) for one batch.

    ``outputs``: raw head tensors (B, gh, gw, A*(5+C)) in cfg order; ``boxes``: (B, M, 4)
    normalized x1, y1, x2, y2; ``classes``: (B, M) int with -1 for padding. ``objectness``:
    the target of a positive cell, 1 (darknet) or the IoU of its box with the truth.
    """
    if objectness not in OBJECTNESS_TARGETS:
        raise ModelError(f"objectness target {objectness!r}: use one of "
                         f"{', '.join(OBJECTNESS_TARGETS)}")
    if len(outputs) != len(heads):
        raise ModelError(f"{len(outputs)} outputs for {len(heads)} [yolo] heads")
    for head in heads:
        if head.truth_thresh < 1.0:
            raise ModelError(f"[yolo] layer {head.layer_index}: truth_thresh < 1 is not "
                             "supported by the trainer")
    truth = _truths(boxes, classes, heads[0].classes)
    batch = tf.cast(tf.shape(outputs[0])[0], tf.float32)
    parts = {"box": 0.0, "obj": 0.0, "cls": 0.0}
    for raw, head in zip(outputs, heads, strict=True):
        head_parts = _head_loss(raw, truth, head, net_width, net_height, objectness)
        for key, value in head_parts.items():
            parts[key] = parts[key] + value
    result = {k: v / batch for k, v in parts.items()}
    result["total"] = result["box"] + result["obj"] + result["cls"]
    return result


def _truths(boxes: Any, classes: Any, num_classes: int) -> dict[str, Any]:
    boxes = tf.clip_by_value(tf.cast(boxes, tf.float32), 0.0, 1.0)
    classes = tf.cast(classes, tf.int32)
    w = boxes[..., 2] - boxes[..., 0]
    h = boxes[..., 3] - boxes[..., 1]
    # NaN compares False, so a NaN box is dropped here too
    valid = (classes >= 0) & (classes < num_classes) & (w >= MIN_BOX_SIZE) & (h >= MIN_BOX_SIZE)
    one = tf.ones_like(w)
    w = tf.where(valid, w, one)
    h = tf.where(valid, h, one)
    cx = tf.where(valid, (boxes[..., 0] + boxes[..., 2]) * 0.5, 0.5 * one)
    cy = tf.where(valid, (boxes[..., 1] + boxes[..., 3]) * 0.5, 0.5 * one)
    return {"cx": cx, "cy": cy, "w": w, "h": h, "valid": valid,
            "classes": tf.where(valid, classes, tf.zeros_like(classes))}


def _entropy(t: Any) -> Any:
    return -(tf.math.xlogy(t, t) + tf.math.xlogy(1.0 - t, 1.0 - t))


def _head_loss(raw: Any, truth: dict[str, Any], head: HeadInfo, net_w: int,
               net_h: int, objectness: str) -> dict[str, Any]:
    raw = tf.cast(raw, tf.float32)
    shape = tf.shape(raw)
    pred = tf.reshape(raw, [shape[0], shape[1], shape[2], len(head.mask), 5 + head.classes])
    t = _targets(pred, truth, head, net_w, net_h)
    box = _box_term(pred, t, head)
    obj = _objectness_term(pred, t, truth, head, net_w, net_h, objectness)
    cls_terms = tf.nn.sigmoid_cross_entropy_with_logits(labels=t["class_t"],
                                                        logits=pred[..., 5:])
    cls = tf.reduce_sum(tf.where(t["obj_mask"][..., None], cls_terms, 0.0))
    return {"box": box, "obj": obj, "cls": cls}


def _assigned_pairs(truth: dict[str, Any], head: HeadInfo, net_w: int, net_h: int):
    """(positive, anchor, per_pair): each truth goes to the anchor (of all the section's) its
    shape fits best, as in darknet, and with iou_thresh < 1 (AlexeyAB darknet's key) also to
    every other anchor of this head whose shape overlaps it by more than iou_thresh: more
    positives per object. One (truth, anchor) pair per row, truth by truth: (B, M * A)."""
    valid, w, h = truth["valid"], truth["w"], truth["h"]
    a = len(head.mask)
    all_anchors = tf.constant(head.all_anchors or head.anchors, tf.float32)
    tw_px, th_px = (w * net_w)[..., None], (h * net_h)[..., None]
    inter = tf.minimum(tw_px, all_anchors[:, 0]) * tf.minimum(th_px, all_anchors[:, 1])
    union = tw_px * th_px + all_anchors[:, 0] * all_anchors[:, 1] - inter
    shape_iou = inter / union                                                # (B, M, N)
    best = tf.argmax(shape_iou, axis=-1, output_type=tf.int32)               # (B, M)
    mask = tf.constant(head.mask, tf.int32)
    assigned = tf.equal(best[..., None], mask) | (
        tf.gather(shape_iou, mask, axis=-1) > head.iou_thresh)               # (B, M, A)
    b = tf.shape(best)[0]
    pairs = tf.shape(best)[1] * a
    positive = tf.reshape(valid[..., None] & assigned, [b, pairs])
    anchor = tf.reshape(tf.broadcast_to(tf.range(a), [b, pairs // a, a]), [b, pairs])

    def per_pair(v: Any) -> Any:
        return tf.reshape(tf.broadcast_to(v[..., None], [b, pairs // a, a]), [b, pairs])

    return positive, anchor, per_pair


def _targets(pred: Any, truth: dict[str, Any], head: HeadInfo, net_w: int,
             net_h: int) -> dict[str, Any]:
    """The head's targets: box_t (B, gh, gw, A, 5: x, y offsets, log w, h, 2 - w*h), obj_mask
    (the positive cells), class_t, and the anchors and strides they are measured in."""
    shape = tf.shape(pred)
    b, gh, gw, a, c = shape[0], shape[1], shape[2], len(head.mask), head.classes
    fgw, fgh = tf.cast(gw, tf.float32), tf.cast(gh, tf.float32)
    positive, anchor, per_pair = _assigned_pairs(truth, head, net_w, net_h)
    cx, cy, w, h = (per_pair(truth[k]) for k in ("cx", "cy", "w", "h"))
    col = tf.clip_by_value(tf.cast(tf.floor(cx * fgw), tf.int32), 0, gw - 1)
    row = tf.clip_by_value(tf.cast(tf.floor(cy * fgh), tf.int32), 0, gh - 1)
    centre = tf.ones_like(positive)
    if head.scale_xy >= 2.0:
        positive, centre, anchor, row, col = _with_neighbours(
            positive, anchor, row, col, cx * fgw, cy * fgh, gw, gh)
        per_pair = _tripled(per_pair)
        cx, cy, w, h = (tf.concat([v] * 3, 1) for v in (cx, cy, w, h))
    pairs = tf.shape(positive)[1]
    batch_index = tf.broadcast_to(tf.range(b)[:, None], tf.shape(anchor))
    index = tf.stack([batch_index, row, col, anchor], -1)                   # (B, P, 4)
    grid = tf.stack([b, gh, gw, a])
    # darknet overwrites a cell's box target with the later truth: keep only the last one
    # (the highest positive pair index per cell and anchor; a scatter, not a P x P compare)
    order = tf.broadcast_to(tf.range(pairs)[None], tf.shape(anchor))
    last = tf.tensor_scatter_nd_max(tf.fill(grid, -1), index,
                                    tf.where(positive, order, -1))
    keep = positive & tf.equal(tf.gather_nd(last, index), order)
    keep_f = tf.cast(keep, tf.float32)
    masked_anchors = tf.constant(head.anchors, tf.float32)
    chosen = tf.gather(masked_anchors, anchor)                               # (B, P, 2)
    targets = tf.stack([
        cx * fgw - tf.cast(col, tf.float32),
        cy * fgh - tf.cast(row, tf.float32),
        tf.math.log(w * net_w / chosen[..., 0]),
        tf.math.log(h * net_h / chosen[..., 1]),
        2.0 - w * h,
    ], -1) * keep_f[..., None]
    classes = per_pair(truth["classes"])
    # truths sharing their centre cell share its classes (darknet); a neighbour cell (scale_x_y
    # 2) learns the class of the box it keeps, not one of a box centred elsewhere
    class_hits = tf.one_hot(classes, c) * tf.cast(positive & (centre | keep),
                                                  tf.float32)[..., None]
    return {"box_t": tf.scatter_nd(index, targets, tf.concat([grid, [5]], 0)),
            "obj_mask": tf.scatter_nd(index, keep_f, grid) > 0.5,
            "class_t": tf.minimum(tf.scatter_nd(index, class_hits, tf.concat([grid, [c]], 0)),
                                  1.0),
            "anchors": masked_anchors, "strides": (net_w / fgw, net_h / fgh),
            "gw": gw, "gh": gh}


def _with_neighbours(positive: Any, anchor: Any, row: Any, col: Any, x: Any, y: Any,
                     gw: Any, gh: Any) -> tuple[Any, Any, Any, Any, Any]:
    """YOLOv5's assignment for heads that reach half a cell beyond their own (scale_x_y 2):
    each (truth, anchor) pair also trains the neighbour cell nearest its centre across x and
    the one across y, where the grid has them. ``x``, ``y``: centres in cells. Returns the
    pairs tripled (x neighbours, y neighbours, then the centre cells, which win a cell two
    pairs claim) and which of them are centre cells."""
    right = (x - tf.cast(col, tf.float32)) >= 0.5
    below = (y - tf.cast(row, tf.float32)) >= 0.5
    ncol = tf.where(right, col + 1, col - 1)
    nrow = tf.where(below, row + 1, row - 1)
    x_ok = positive & (ncol >= 0) & (ncol < gw)
    y_ok = positive & (nrow >= 0) & (nrow < gh)
    false = tf.zeros_like(positive)
    return (tf.concat([x_ok, y_ok, positive], 1),
            tf.concat([false, false, tf.ones_like(positive)], 1),
            tf.concat([anchor] * 3, 1),
            tf.concat([row, tf.clip_by_value(nrow, 0, gh - 1), row], 1),
            tf.concat([tf.clip_by_value(ncol, 0, gw - 1), col, col], 1))


def _tripled(per_pair: Any) -> Any:
    return lambda v: tf.concat([per_pair(v)] * 3, 1)


def _box_term(pred: Any, t: dict[str, Any], head: HeadInfo) -> Any:
    """The box terms at the positive cells."""
    box_t, obj_mask = t["box_t"], t["obj_mask"]
    if head.iou_loss == "ciou":
        predicted, assigned_truth = _boxes_in_cell(pred, box_t, t["anchors"], t["strides"], head)
        per_cell = head.iou_normalizer * (1.0 - ciou(predicted, assigned_truth))
        return tf.reduce_sum(tf.where(obj_mask, per_cell, 0.0))
    # the offset in the cell is head.centre_offset(sigmoid): the sigmoid's target is its inverse
    shift = 0.5 * (head.scale_xy - 1.0)
    xy_t = tf.clip_by_value((box_t[..., 0:2] + shift) / head.scale_xy, 0.0, 1.0)
    xy = tf.nn.sigmoid_cross_entropy_with_logits(labels=xy_t, logits=pred[..., 0:2])
    xy = xy - _entropy(xy_t)
    wh = 0.5 * tf.square(box_t[..., 2:4] - pred[..., 2:4])
    box_terms = box_t[..., 4:5] * tf.concat([xy, wh], -1)
    return tf.reduce_sum(tf.where(obj_mask[..., None], box_terms, 0.0))


def _objectness_term(pred: Any, t: dict[str, Any], truth: dict[str, Any], head: HeadInfo,
                     net_w: int, net_h: int, objectness: str) -> Any:
    """Objectness, ignoring negatives whose box already overlaps a truth well."""
    ignore = tf.stop_gradient(_best_iou(pred, truth, head, t["gw"], t["gh"], net_w, net_h)) > \
        head.ignore_thresh
    logit = pred[..., 4]
    if objectness == "iou":
        # the target of a positive cell is how well its box fits (YOLOv5's): the score then
        # ranks boxes by their overlap too, which mAP at high IoU thresholds rewards
        predicted, assigned_truth = _boxes_in_cell(pred, t["box_t"], t["anchors"],
                                                   t["strides"], head)
        fit = tf.stop_gradient(tf.maximum(iou(predicted, assigned_truth), 0.0))
        to_one = tf.nn.sigmoid_cross_entropy_with_logits(labels=fit, logits=logit) - _entropy(fit)
    else:
        to_one = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.ones_like(logit),
                                                         logits=logit)
    to_zero = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.zeros_like(logit), logits=logit)
    return tf.reduce_sum(tf.where(t["obj_mask"], to_one, tf.where(ignore, 0.0, to_zero)))


def _corners(box: Any) -> tuple[Any, Any, Any, Any]:
    return (box[..., 0] - box[..., 2] / 2, box[..., 1] - box[..., 3] / 2,
            box[..., 0] + box[..., 2] / 2, box[..., 1] + box[..., 3] / 2)


def iou(a: Any, b: Any) -> Any:
    """IoU of boxes ``a`` and ``b`` given as (..., 4) centre x, centre y, width, height."""
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    inter = (tf.maximum(tf.minimum(ax2, bx2) - tf.maximum(ax1, bx1), 0.0)
             * tf.maximum(tf.minimum(ay2, by2) - tf.maximum(ay1, by1), 0.0))
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / (union + 1e-9)


def ciou(a: Any, b: Any) -> Any:
    """Complete IoU (Zheng et al. 2020) of boxes ``a`` and ``b`` given as (..., 4) centre x,
    centre y, width, height: IoU minus the squared centre distance over the squared diagonal
    of the enclosing box, minus the aspect-ratio term alpha * v (alpha not differentiated)."""
    eps = 1e-9
    overlap = iou(a, b)
    ax1, ay1, ax2, ay2 = _corners(a)
    bx1, by1, bx2, by2 = _corners(b)
    diagonal = (tf.square(tf.maximum(ax2, bx2) - tf.minimum(ax1, bx1))
                + tf.square(tf.maximum(ay2, by2) - tf.minimum(ay1, by1)))
    distance = tf.square(a[..., 0] - b[..., 0]) + tf.square(a[..., 1] - b[..., 1])
    v = (4.0 / 3.141592653589793 ** 2) * tf.square(
        tf.atan(a[..., 2] / (a[..., 3] + eps)) - tf.atan(b[..., 2] / (b[..., 3] + eps)))
    alpha = tf.stop_gradient(v / (1.0 - overlap + v + eps))
    return overlap - distance / (diagonal + eps) - alpha * v


def _boxes_in_cell(pred: Any, box_t: Any, anchors: Any, strides: tuple[Any, Any],
                   head: HeadInfo) -> tuple[Any, Any]:
    """(B, gh, gw, A, 4) each predicted box and the truth assigned to its cell, centre x,
    centre y, width, height in input pixels from the cell's corner (the truth is meaningful
    only where one is assigned)."""
    stride_x, stride_y = strides
    raw_wh = tf.clip_by_value(pred[..., 2:4], -_MAX_RAW_WH, _MAX_RAW_WH)
    predicted = tf.stack([head.centre_offset(tf.sigmoid(pred[..., 0])) * stride_x,
                          head.centre_offset(tf.sigmoid(pred[..., 1])) * stride_y,
                          tf.exp(raw_wh[..., 0]) * anchors[:, 0],
                          tf.exp(raw_wh[..., 1]) * anchors[:, 1]], -1)
    # box_t holds zeros away from the truths: their log sizes give exp(0) * anchor, finite
    truth = tf.stack([box_t[..., 0] * stride_x, box_t[..., 1] * stride_y,
                      tf.exp(box_t[..., 2]) * anchors[:, 0],
                      tf.exp(box_t[..., 3]) * anchors[:, 1]], -1)
    return predicted, truth


def _best_iou(pred: Any, truth: dict[str, Any], head: HeadInfo, gw: Any, gh: Any,
              net_w: int, net_h: int) -> Any:
    """(B, gh, gw, A): the best IoU of each predicted box with any valid truth of its image."""
    shape = tf.shape(pred)
    fgw, fgh = tf.cast(gw, tf.float32), tf.cast(gh, tf.float32)
    gx = tf.reshape(tf.cast(tf.range(gw), tf.float32), [1, 1, -1, 1])
    gy = tf.reshape(tf.cast(tf.range(gh), tf.float32), [1, -1, 1, 1])
    anchors = tf.constant(head.anchors, tf.float32)
    raw_wh = tf.clip_by_value(pred[..., 2:4], -_MAX_RAW_WH, _MAX_RAW_WH)
    px = (gx + head.centre_offset(tf.sigmoid(pred[..., 0]))) / fgw
    py = (gy + head.centre_offset(tf.sigmoid(pred[..., 1]))) / fgh
    pw = tf.exp(raw_wh[..., 0]) * anchors[:, 0] / net_w
    ph = tf.exp(raw_wh[..., 1]) * anchors[:, 1] / net_h
    b = shape[0]
    flat = [tf.reshape(v, [b, -1, 1]) for v in (px, py, pw, ph)]
    tx, ty, tw, th = (truth[k][:, None, :] for k in ("cx", "cy", "w", "h"))
    iw = tf.maximum(tf.minimum(flat[0] + flat[2] / 2, tx + tw / 2)
                    - tf.maximum(flat[0] - flat[2] / 2, tx - tw / 2), 0.0)
    ih = tf.maximum(tf.minimum(flat[1] + flat[3] / 2, ty + th / 2)
                    - tf.maximum(flat[1] - flat[3] / 2, ty - th / 2), 0.0)
    inter = iw * ih
    union = flat[2] * flat[3] + tw * th - inter
    iou = tf.where(truth["valid"][:, None, :], inter / tf.maximum(union, 1e-12), 0.0)
    best = tf.reduce_max(tf.concat([iou, tf.zeros_like(iou[..., :1])], -1), -1)
    return tf.reshape(best, shape[:4])
