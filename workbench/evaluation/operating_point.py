"""One confidence threshold for the whole model: the best F1 over all classes pooled.

Matching at IoU 0.5 is greedy in score order, so the detections kept at a threshold ``t``
match exactly as they did in the full evaluation: the true/false-positive flags of the
evaluation, sorted by score, give precision and recall at every threshold at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from workbench.evaluation.inputs import Predictions
from workbench.evaluation.results import Evaluation


@dataclass(frozen=True)
class OperatingPoint:
    conf: float  # the threshold with the best pooled F1
    f1: float
    precision: float
    recall: float  # at ``conf``
    recall_at: float  # at the threshold asked about (detect's default)


def operating_point(evaluation: Evaluation, preds: Mapping[str, Predictions],
                    threshold: float) -> OperatingPoint | None:
    """The pooled best-F1 point of ``evaluation`` (of ``preds``), and the recall at
    ``threshold``; None without ground truth or detections."""
    scores, tp, fp = [], [], []
    n_gt = 0
    for key, image in evaluation.per_image.items():
        n_gt += int(np.count_nonzero(~image.gt_ignored))
        p = preds.get(key)
        if p is None or not len(p):
            continue
        scores.append(np.asarray(p.scores, np.float64))
        tp.append(np.asarray(image.pred_tp, bool))
        fp.append(np.asarray(image.pred_fp, bool))
    if n_gt == 0 or not scores:
        return None
    s, t, f = np.concatenate(scores), np.concatenate(tp), np.concatenate(fp)
    order = np.argsort(-s, kind="stable")
    s, t, f = s[order], t[order], f[order]
    ctp, cfp = np.cumsum(t), np.cumsum(f)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    # a threshold keeps every detection of equal score: only the last of a run of ties counts
    last = np.r_[s[1:] != s[:-1], True]
    best = int(np.flatnonzero(last)[np.argmax(f1[last])])
    recall_at = float(t[s >= threshold].sum() / n_gt)
    return OperatingPoint(float(s[best]), float(f1[best]), float(precision[best]),
                          float(recall[best]), recall_at)
