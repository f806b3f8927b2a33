"""Box geometry on numpy arrays: format conversions and pairwise IoU, GIoU and DIoU.

Boxes are rows of four floats. ``xyxy`` is (x1, y1, x2, y2) in pixels, ``xywh`` is the
top-left corner plus width and height (OpenCV's ``Rect``), ``cxcywh`` is the centre plus
width and height (YOLO). Areas are ``(x2 - x1) * (y2 - y1)``: continuous coordinates with no
``+1`` pixel, as in COCO and OpenCV.

Every function validates its input (finite numbers, shape (N, 4)) and raises a one-line
``ValueError``; integer and non-contiguous arrays are converted; empty inputs give empty
outputs. NMS lives in ``workbench.geometry.nms``; ``workbench.boxes`` offers both (the public surface).
The input checks are in ``geometry.arrays``, the pair overlaps NMS uses (PairOverlap,
PairGrid, PairStrips) in ``geometry.pairs``; this module offers their names too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.geometry.arrays import as_boxes, as_scores, safe_div
from workbench.geometry.pairs import PairGrid, PairOverlap, PairStrips

__all__ = [
    "as_boxes", "as_scores",
    "xyxy_to_xywh", "xywh_to_xyxy", "xyxy_to_cxcywh", "cxcywh_to_xyxy",
    "normalize", "denormalize", "box_areas",
    "iou_matrix", "giou_matrix", "diou_matrix", "PairOverlap", "PairGrid", "PairStrips",
]


def xyxy_to_xywh(boxes: Any) -> np.ndarray:
    """(x1, y1, x2, y2) -> (x, y, w, h)."""
    b = as_boxes(boxes)
    return np.column_stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]])


def xywh_to_xyxy(boxes: Any) -> np.ndarray:
    """(x, y, w, h) -> (x1, y1, x2, y2)."""
    b = as_boxes(boxes)
    return np.column_stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]])


def xyxy_to_cxcywh(boxes: Any) -> np.ndarray:
    """(x1, y1, x2, y2) -> (cx, cy, w, h)."""
    b = as_boxes(boxes)
    w = b[:, 2] - b[:, 0]
    h = b[:, 3] - b[:, 1]
    return np.column_stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w, h])


def cxcywh_to_xyxy(boxes: Any) -> np.ndarray:
    """(cx, cy, w, h) -> (x1, y1, x2, y2)."""
    b = as_boxes(boxes)
    hw = b[:, 2] / 2
    hh = b[:, 3] / 2
    return np.column_stack([b[:, 0] - hw, b[:, 1] - hh, b[:, 0] + hw, b[:, 1] + hh])


def _check_size(width: float, height: float) -> tuple[float, float]:
    w, h = float(width), float(height)
    if not (np.isfinite(w) and np.isfinite(h) and w > 0 and h > 0):
        raise ValueError(f"image size must be positive and finite, got {width} x {height}")
    return w, h


def normalize(boxes: Any, width: float, height: float) -> np.ndarray:
    """Pixel boxes -> boxes in [0, 1] of the image size (any of the four-number formats)."""
    w, h = _check_size(width, height)
    return as_boxes(boxes) / np.array([w, h, w, h])


def denormalize(boxes: Any, width: float, height: float) -> np.ndarray:
    """Boxes in [0, 1] of the image size -> pixels (any of the four-number formats)."""
    w, h = _check_size(width, height)
    return as_boxes(boxes) * np.array([w, h, w, h])


def box_areas(boxes: Any) -> np.ndarray:
    """Areas ``(x2 - x1) * (y2 - y1)`` of xyxy boxes."""
    b = as_boxes(boxes, ordered=True)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _pairwise(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                       np.ndarray, np.ndarray]:
    """Intersection, union and enclosing-box corners of every pair, broadcast to (N, M)."""
    a = as_boxes(a, "a", ordered=True)
    b = as_boxes(b, "b", ordered=True)
    ax1, ay1, ax2, ay2 = (a[:, k, None] for k in range(4))
    bx1, by1, bx2, by2 = (b[None, :, k] for k in range(4))
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    cw = np.maximum(ax2, bx2) - np.minimum(ax1, bx1)
    ch = np.maximum(ay2, by2) - np.minimum(ay1, by1)
    dcx = (ax1 + ax2 - bx1 - bx2) / 2
    dcy = (ay1 + ay2 - by1 - by2) / 2
    return inter, union, cw, ch, dcx, dcy


def iou_matrix(a: Any, b: Any) -> np.ndarray:
    """IoU of every box in ``a`` (N, 4) with every box in ``b`` (M, 4), xyxy -> (N, M).

    Pairs of empty boxes have IoU 0.
    """
    inter, union, *_ = _pairwise(a, b)
    return safe_div(inter, union)


def giou_matrix(a: Any, b: Any) -> np.ndarray:
    """Generalized IoU (Rezatofighi et al. 2019): IoU - (C - union) / C, C the enclosing area."""
    inter, union, cw, ch, _, _ = _pairwise(a, b)
    enclosing = cw * ch
    return safe_div(inter, union) - safe_div(enclosing - union, enclosing)


def diou_matrix(a: Any, b: Any) -> np.ndarray:
    """Distance IoU (Zheng et al. 2020): IoU - d^2 / c^2.

    d is the distance between the box centres, c the diagonal of the enclosing box.
    """
    inter, union, cw, ch, dcx, dcy = _pairwise(a, b)
    return safe_div(inter, union) - safe_div(dcx**2 + dcy**2, cw**2 + ch**2)
