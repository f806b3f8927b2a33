"""The result objects of an evaluation: per class, per image and overall."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# the order of pycocotools' COCOeval.stats
COCO_STAT_NAMES = (
    "AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
    "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large",
)


@dataclass(frozen=True, eq=False)
class PrecisionRecall:
    """One class's precision-recall curve at the evaluation's IoU threshold.

    One point per counted prediction (ignored ones left out), in descending score order.
    """

    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


@dataclass(frozen=True, eq=False)
class ClassResult:
    """The figures of one class.

    ``ap`` is the headline AP of the chosen metric (at the IoU threshold for voc/voc07, over
    IoU 0.50:0.95 for coco); ``ap50``, ``ap75`` and ``ap50_95`` use the same interpolation.
    ``precision``, ``recall``, ``f1``, ``tp``, ``fp``, ``fn`` are taken at the confidence
    threshold ``conf`` that gives the best F1, at the IoU threshold. AP values are NaN for a
    class without ground truth (its predictions are all false positives). ``n_gt`` and
    ``n_pred`` count what takes part: not difficult/crowd boxes, nor predictions on them.
    """

    class_id: int
    n_gt: int
    n_pred: int
    ap: float
    ap50: float
    ap75: float
    ap50_95: float
    precision: float
    recall: float
    f1: float
    conf: float
    tp: int
    fp: int
    fn: int
    curve: PrecisionRecall = field(repr=False)


@dataclass(frozen=True, eq=False)
class ImageResult:
    """How the predictions of one image matched its ground truth at the IoU threshold.

    ``pred_gt[i]`` is the ground-truth box prediction ``i`` matched (-1: none);
    ``pred_tp``/``pred_fp`` flag true and false positives (a prediction matching an ignored
    box, or beyond COCO's 100 per class, is neither); ``gt_pred[j]`` is the prediction that
    matched ground truth ``j`` (-1: missed) and ``gt_ignored[j]`` marks difficult/crowd boxes.
    """

    pred_gt: np.ndarray
    pred_tp: np.ndarray
    pred_fp: np.ndarray
    gt_pred: np.ndarray
    gt_ignored: np.ndarray

    @property
    def tp(self) -> int:
        return int(np.count_nonzero(self.pred_tp))

    @property
    def fp(self) -> int:
        return int(np.count_nonzero(self.pred_fp))

    @property
    def fn(self) -> int:
        return int(np.count_nonzero((self.gt_pred < 0) & ~self.gt_ignored))


def _json_number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The outcome of :func:`workbench.evaluation.evaluate.evaluate`.

    ``map`` is the headline figure of the metric: mAP at ``iou_threshold`` for voc/voc07,
    mAP@[.5:.95] for coco. Means are over classes with ground truth (NaN when there are none).
    ``per_class`` holds every class with ground truth or predictions. ``coco_stats`` (coco
    only) are the twelve numbers of pycocotools' ``COCOeval.stats``, -1 where undefined.
    """

    metric: str
    iou_threshold: float
    num_classes: int
    map: float
    map50: float
    map75: float
    map50_95: float
    per_class: dict[int, ClassResult]
    per_image: dict[str, ImageResult] = field(repr=False)
    coco_stats: np.ndarray | None = field(default=None, repr=False)

    @property
    def tp(self) -> int:
        """True positives over all classes at each class's best-F1 threshold."""
        return sum(c.tp for c in self.per_class.values())

    @property
    def fp(self) -> int:
        return sum(c.fp for c in self.per_class.values())

    @property
    def fn(self) -> int:
        return sum(c.fn for c in self.per_class.values())

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready figures; per-class keys are class names when given, else ids."""
        def key(class_id: int) -> str:
            if class_names is not None and class_id < len(class_names):
                return class_names[class_id]
            return str(class_id)

        out: dict[str, Any] = {
            "metric": self.metric,
            "iou_threshold": self.iou_threshold,
            "map": _json_number(self.map),
            "map50": _json_number(self.map50),
            "map75": _json_number(self.map75),
            "map50_95": _json_number(self.map50_95),
            "per_class": {
                key(c.class_id): {
                    "class_id": c.class_id, "ap": _json_number(c.ap),
                    "ap50": _json_number(c.ap50), "ap75": _json_number(c.ap75),
                    "ap50_95": _json_number(c.ap50_95),
                    "precision": _json_number(c.precision), "recall": _json_number(c.recall),
                    "f1": _json_number(c.f1), "conf": _json_number(c.conf),
                    "tp": c.tp, "fp": c.fp, "fn": c.fn, "n_gt": c.n_gt, "n_pred": c.n_pred,
                }
                for c in sorted(self.per_class.values(), key=lambda c: c.class_id)
            },
        }
        if self.coco_stats is not None:
            out["coco_stats"] = dict(zip(COCO_STAT_NAMES,
                                         (float(v) for v in self.coco_stats), strict=True))
        return out
