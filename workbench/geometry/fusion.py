"""Weighted boxes fusion (Solovyev, Wang, Gabruseva 2021, "Weighted boxes fusion: Ensembling
boxes from different object detection models"): overlapping boxes of one class averaged into
one, instead of NMS keeping the best and dropping the rest.

The algorithm of the paper and of its reference code (the ``ensemble-boxes`` package,
``weighted_boxes_fusion`` with equal weights and ``conf_type="avg"``):

1. Per class, the boxes in descending score order (stable: ties keep their input order).
2. Each box joins the cluster whose fused box overlaps it most when that IoU is above
   ``iou_threshold``, else it starts a cluster of its own. After a box joins, the cluster's
   fused box is the score-weighted mean of its members' corners.
3. A cluster's score is the mean of its members' scores times ``min(members, sources) /
   sources``, ``sources`` being how many predictors (models, test-time passes) the boxes came
   from: a box that only one of three passes found keeps a third of its score.

IoU as everywhere here: continuous coordinates, no ``+1``, 0 for empty boxes (as
:func:`~workbench.geometry.boxes.iou_matrix`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.geometry.arrays import as_boxes, as_scores, safe_div


def weighted_boxes_fusion(boxes_xyxy: Any, scores: Any, class_ids: Any, iou_threshold: float,
                          sources: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fused ``(boxes (K, 4) float64, scores (K,), class_ids (K,) int64)``, highest score
    first (ties: the order the clusters were started in).

    ``boxes_xyxy`` (N, 4), ``scores`` (N,) and ``class_ids`` (N,) are every source's boxes
    together; ``sources`` (at least 1) is how many predictors they came from.
    """
    if sources < 1:
        raise ValueError(f"sources must be 1 or more, got {sources}")
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    boxes = as_boxes(boxes_xyxy).astype(np.float64)
    n = len(boxes)
    as_scores(scores, n)  # shape and finiteness, with one-line errors
    score = np.asarray(scores, np.float64).reshape(-1)  # as_scores rounds to float32
    ids = np.asarray(class_ids, np.int64).reshape(-1)
    if ids.shape != (n,):
        raise ValueError(f"class_ids: expected {n} values, got shape {ids.shape}")
    order = np.argsort(-score, kind="stable")
    fused_boxes, fused_scores, fused_ids = [], [], []
    for c in dict.fromkeys(ids[order].tolist()):  # classes in order of their best box
        members = order[ids[order] == c]
        b, s = _fuse_class(boxes[members], score[members], iou_threshold, sources)
        fused_boxes.append(b)
        fused_scores.append(s)
        fused_ids.append(np.full(len(s), c, np.int64))
    if not fused_scores:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    out_boxes = np.concatenate(fused_boxes)
    out_scores = np.concatenate(fused_scores)
    out_ids = np.concatenate(fused_ids)
    best = np.argsort(-out_scores, kind="stable")
    return out_boxes[best], out_scores[best], out_ids[best]


def _fuse_class(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float,
                sources: int) -> tuple[np.ndarray, np.ndarray]:
    """One class's boxes, already in descending score order, fused into clusters."""
    weighted = np.zeros((len(boxes), 4))  # per cluster: sum of score x corners
    plain = np.zeros((len(boxes), 4))     # sum of corners (all-zero scores: the plain mean)
    weight = np.zeros(len(boxes))         # sum of scores
    count = np.zeros(len(boxes), np.int64)
    fused = np.zeros((len(boxes), 4))     # the clusters' fused boxes
    areas = np.zeros(len(boxes))          # and their areas
    k = 0
    for box, score in zip(boxes, scores, strict=True):
        j = -1
        if k:
            overlaps = _iou_with(box, fused[:k], areas[:k])
            best = int(np.argmax(overlaps))
            if overlaps[best] > iou_threshold:
                j = best
        if j < 0:
            j, k = k, k + 1
        weighted[j] += score * box
        plain[j] += box
        weight[j] += score
        count[j] += 1
        fused[j] = weighted[j] / weight[j] if weight[j] > 0 else plain[j] / count[j]
        areas[j] = (fused[j, 2] - fused[j, 0]) * (fused[j, 3] - fused[j, 1])
    count, weight = count[:k], weight[:k]
    return fused[:k], weight / count * np.minimum(count, sources) / sources


def _iou_with(box: np.ndarray, others: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """IoU of one box with each of ``others`` (their ``areas`` given): iou_matrix's numbers
    without its input checks, which cost more than the arithmetic here, once per box (the
    boxes were checked on the way in)."""
    w = np.minimum(others[:, 2], box[2]) - np.maximum(others[:, 0], box[0])
    h = np.minimum(others[:, 3], box[3]) - np.maximum(others[:, 1], box[1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = areas + (box[2] - box[0]) * (box[3] - box[1]) - inter
    return safe_div(inter, union)
