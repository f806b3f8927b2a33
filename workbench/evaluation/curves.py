"""Precision-recall curves and average precision (VOC2007 11-point, VOC all-point, COCO 101).

Every function works on the last axis, so many curves (IoU thresholds x area ranges) of one
class are handled in one call.
"""

from __future__ import annotations

import numpy as np

AP_METHODS = ("voc", "voc07", "coco")

# the recall points the sampled definitions average over (pycocotools' recThrs for COCO)
RECALL_POINTS = {
    "voc07": np.linspace(0.0, 1.0, 11),
    "coco": np.linspace(0.0, 1.0, int(np.round((1.00 - 0.0) / 0.01)) + 1),
}


def precision_recall(tp: np.ndarray, fp: np.ndarray, n_gt: int | np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) after each prediction, given bool TP/FP flags in score order.

    Predictions that are neither (matched to an ignored box) repeat the previous point.
    """
    tp_sum = np.cumsum(tp, axis=-1, dtype=np.int32).astype(np.float64)
    seen = tp_sum + np.cumsum(fp, axis=-1, dtype=np.int32)
    precision = np.zeros_like(tp_sum)
    np.divide(tp_sum, seen, out=precision, where=seen > 0)
    n_gt = np.asarray(n_gt, dtype=np.float64)[..., None]
    recall = np.zeros_like(tp_sum)
    np.divide(tp_sum, n_gt, out=recall, where=n_gt > 0)
    return precision, recall


def precision_envelope(precision: np.ndarray) -> np.ndarray:
    """The monotone envelope: at each point, the best precision at this recall or beyond."""
    return np.maximum.accumulate(precision[..., ::-1], axis=-1)[..., ::-1]


def average_precision(recall: np.ndarray, precision: np.ndarray, method: str = "voc"
                      ) -> np.ndarray:
    """AP of precision-recall curves (points in score order, recall non-decreasing).

    ``voc``: area under the precision envelope summed at every recall change (VOC2010+,
    darknet's ``-map``). ``voc07``: mean over recall 0, 0.1, ..., 1 of the best precision at
    that recall or beyond. ``coco``: the same over 101 points (pycocotools). An empty curve
    has AP 0. Returns an array of the leading shape (a 0-d array for one curve).
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.asarray(precision, dtype=np.float64)
    if recall.shape != precision.shape:
        raise ValueError(f"recall {recall.shape} and precision {precision.shape} differ in shape")
    if method not in AP_METHODS:
        raise ValueError(f"unknown AP method {method!r}; choose one of {', '.join(AP_METHODS)}")
    lead, n = recall.shape[:-1], recall.shape[-1]
    if n == 0:
        return np.zeros(lead)
    envelope = precision_envelope(precision)
    if method == "voc":
        steps = np.diff(recall, axis=-1, prepend=0.0)
        return (steps * envelope).sum(axis=-1)
    points = RECALL_POINTS[method]
    flat_r = recall.reshape(-1, n)
    flat_p = envelope.reshape(-1, n)
    out = np.empty(len(flat_r))
    for row, (r, p) in enumerate(zip(flat_r, flat_p, strict=True)):
        # the first point reaching each recall level holds the envelope's value there
        at = np.searchsorted(r, points, side="left")
        out[row] = np.where(at < n, p[np.minimum(at, n - 1)], 0.0).mean()
    return out.reshape(lead)


def best_f1(precision: np.ndarray, recall: np.ndarray, scores: np.ndarray) -> int:
    """Index of the operating point with the highest F1, or -1 for an empty curve.

    Only points where the score changes can be chosen, since a confidence threshold cannot
    split predictions of equal score; among equal F1 the highest threshold wins. When no
    point has F1 > 0 (no true positive at all) the lowest threshold is chosen, so every
    false positive shows.
    """
    n = len(scores)
    if n == 0:
        return -1
    cut = np.ones(n, dtype=bool)
    cut[:-1] = scores[1:] != scores[:-1]
    denominator = precision + recall
    f1 = np.zeros(n)
    np.divide(2 * precision * recall, denominator, out=f1, where=denominator > 0)
    f1 = np.where(cut, f1, -1.0)
    best = int(np.argmax(f1))
    return best if f1[best] > 0 else n - 1
