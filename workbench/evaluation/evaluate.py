"""Detection evaluation: AP per class, mAP@0.5, mAP@0.75, mAP@[.5:.95], TP/FP/FN per image.

``evaluate(gt, pred, num_classes, metric=...)`` takes the ground truth and the predictions
of every image (dicts keyed by image name) and matches predictions to ground truth per image
and class (see ``workbench.evaluation.matching``; the rule of pycocotools' COCOeval). Metrics:

- ``voc``: all-point AP (VOC2010+, darknet's ``-map``) at ``iou_threshold``; difficult boxes
  ignored; every prediction counts.
- ``voc07``: the same with VOC2007's 11-point interpolation.
- ``coco``: 101-point AP averaged over IoU 0.50:0.95, at most 100 predictions per image and
  class, crowd boxes as ignore regions, small/medium/large area ranges; equals pycocotools.

The detection confusion matrix lives in ``workbench.evaluation.confusion``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from workbench.evaluation.confusion import ConfusionMatrix, confusion_matrix
from workbench.evaluation.curves import average_precision, best_f1, precision_recall
from workbench.evaluation.inputs import GroundTruth, Predictions, Stacked, stack
from workbench.evaluation.matching import group_starts, match
from workbench.evaluation.results import (
    COCO_STAT_NAMES,
    ClassResult,
    Evaluation,
    ImageResult,
    PrecisionRecall,
)

__all__ = [
    "AREA_RANGES", "COCO_IOU_THRESHOLDS", "COCO_STAT_NAMES", "METRICS", "ClassResult",
    "ConfusionMatrix", "Evaluation", "GroundTruth", "ImageResult", "PrecisionRecall", "Predictions",
    "average_precision", "confusion_matrix", "evaluate",
]

METRICS = ("voc", "voc07", "coco")
# the exact values pycocotools uses, so thresholds compare equal
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
COCO_MAX_DETS = (1, 10, 100)


def _thresholds(iou_threshold: float) -> tuple[np.ndarray, int]:
    """COCO's ten IoU thresholds plus the requested one; returns (thresholds, its index)."""
    close = np.nonzero(np.abs(COCO_IOU_THRESHOLDS - iou_threshold) < 1e-9)[0]
    if len(close):
        return COCO_IOU_THRESHOLDS, int(close[0])
    return np.append(COCO_IOU_THRESHOLDS, iou_threshold), len(COCO_IOU_THRESHOLDS)


def _check_arguments(gt: Mapping[str, GroundTruth], num_classes: int, iou_threshold: float, metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not (np.isfinite(iou_threshold) and 0.0 < iou_threshold <= 1.0):
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if not gt:
        raise ValueError("nothing to evaluate: the ground truth has no images")


def evaluate(gt: Mapping[str, GroundTruth], pred: Mapping[str, Predictions], num_classes: int,
             *, iou_threshold: float = 0.5, metric: str = "voc") -> Evaluation:
    """Evaluate predictions against ground truth; both are dicts keyed by image name.

    Every image in ``pred`` must be in ``gt``; images of ``gt`` missing from ``pred`` had no
    detections. ``iou_threshold`` sets the headline AP of voc/voc07 and, for every metric, the
    per-class operating point (precision, recall, TP/FP/FN at the best F1) and per-image
    matches. Raises ValueError for bad arguments or class ids outside ``num_classes``.
    """
    _check_arguments(gt, num_classes, iou_threshold, metric)
    flat = stack(gt, pred, num_classes)
    thresholds, main = _thresholds(float(iou_threshold))
    ranges = AREA_RANGES if metric == "coco" else {"all": AREA_RANGES["all"]}
    low = np.array([r[0] for r in ranges.values()])[:, None]
    high = np.array([r[1] for r in ranges.values()])[:, None]
    gt_ignore = flat.gt_ignored[None, :] | (flat.gt_area < low) | (flat.gt_area > high)
    b = flat.det_boxes
    det_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    det_outside = (det_area < low) | (det_area > high)  # (A, D)

    max_dets = COCO_MAX_DETS[-1] if metric == "coco" else None
    rank, matched = match(
        flat.det_image * num_classes + flat.det_class, flat.det_scores, flat.det_boxes,
        flat.gt_image * num_classes + flat.gt_class, flat.gt_boxes, flat.gt_crowd,
        gt_ignore, thresholds, max_dets)
    kept = np.ones(len(rank), bool) if max_dets is None else rank < max_dets
    # one sequence per class: score descending, ties by image order then rank (pycocotools);
    # working in this order makes every class a contiguous slice
    pool = np.nonzero(kept)[0]
    sequence = pool[np.lexsort((rank[pool], flat.det_image[pool], -flat.det_scores[pool],
                                flat.det_class[pool]))]
    tp, fp = _outcomes(matched[:, :, sequence], gt_ignore, det_outside[:, sequence])
    n_gt = np.stack([np.bincount(flat.gt_class[~ign], minlength=num_classes)
                     for ign in gt_ignore])  # (A, K)

    ap, per_class = _per_class(flat, sequence, tp, fp, n_gt, main, metric)
    with_gt = n_gt[0] > 0
    n_coco = len(COCO_IOU_THRESHOLDS)

    def mean_ap(values: np.ndarray) -> float:
        return float(values[with_gt].mean()) if with_gt.any() else float("nan")

    ap_all = ap[0]  # (T, K)
    map50 = mean_ap(ap_all[0])
    map75 = mean_ap(ap_all[5])
    map50_95 = mean_ap(ap_all[:n_coco].mean(axis=0))
    headline = map50_95 if metric == "coco" else mean_ap(ap_all[main])
    coco_stats = None
    if metric == "coco":
        coco_stats = _coco_stats(ap, tp, rank[sequence], flat.det_class[sequence], n_gt)
    # per image, in each image's own order, at the headline threshold
    image_tp, image_fp = _outcomes(matched[:1, main:main + 1], gt_ignore[:1], det_outside[:1])
    return Evaluation(
        metric=metric, iou_threshold=float(iou_threshold), num_classes=num_classes,
        map=headline, map50=map50, map75=map75, map50_95=map50_95,
        per_class=per_class,
        per_image=_per_image(flat, matched[0, main], image_tp[0, 0] & kept,
                             image_fp[0, 0] & kept),
        coco_stats=coco_stats,
    )


def _outcomes(matched: np.ndarray, gt_ignore: np.ndarray, det_outside: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """(TP, FP) flags of predictions (A, T, D): a match to an ignored box is neither, and so
    is an unmatched prediction outside the area range."""
    hit = matched >= 0
    hit_ignored = np.zeros_like(hit)
    if gt_ignore.shape[1]:
        variant = np.arange(len(gt_ignore))[:, None, None]
        hit_ignored = hit & gt_ignore[variant, np.maximum(matched, 0)]
    return hit & ~hit_ignored, ~hit & ~det_outside[:, None, :]


def _per_class(flat: Stacked, sequence: np.ndarray, tp: np.ndarray, fp: np.ndarray,
               n_gt: np.ndarray, main: int, metric: str
               ) -> tuple[np.ndarray, dict[int, ClassResult]]:
    """AP of every (area range, threshold, class) and each class's result.

    ``tp``/``fp`` (A, T, n) follow ``sequence``, the class-sorted order of the predictions.
    """
    num_classes = n_gt.shape[1]
    n_variants, n_thresholds = tp.shape[:2]
    starts, counts = group_starts(flat.det_class[sequence], num_classes)
    scores = flat.det_scores[sequence]
    ap = np.full((n_variants, n_thresholds, num_classes), np.nan)
    per_class: dict[int, ClassResult] = {}
    for k in np.nonzero((counts > 0) | (n_gt[0] > 0))[0]:
        part = slice(starts[k], starts[k] + counts[k])
        precision, recall = precision_recall(tp[:, :, part], fp[:, :, part],
                                             n_gt[:, k][:, None])
        ap[:, :, k] = np.where(n_gt[:, k][:, None] > 0,
                               average_precision(recall, precision, metric), np.nan)
        counted = tp[0, main, part] | fp[0, main, part]
        curve = PrecisionRecall(scores[part][counted], precision[0, main][counted],
                                recall[0, main][counted])
        per_class[int(k)] = _class_result(int(k), curve, tp[0, main, part][counted],
                                          int(n_gt[0, k]), ap[0, :, k],
                                          main if metric != "coco" else None)
    return ap, per_class


def _class_result(class_id: int, curve: PrecisionRecall, tp: np.ndarray, n_gt: int,
                  ap: np.ndarray, main: int | None) -> ClassResult:
    """``main`` indexes the headline threshold; None averages over COCO's ten."""
    n_coco = len(COCO_IOU_THRESHOLDS)
    headline = ap[:n_coco].mean() if main is None else ap[main]
    best = best_f1(curve.precision, curve.recall, curve.scores)
    if best < 0:
        precision = recall = f1 = 0.0
        conf, n_tp, n_fp = float("nan"), 0, 0
    else:
        precision, recall = float(curve.precision[best]), float(curve.recall[best])
        total = precision + recall
        f1 = 2 * precision * recall / total if total > 0 else 0.0
        conf = float(curve.scores[best])
        n_tp = int(np.count_nonzero(tp[:best + 1]))
        n_fp = best + 1 - n_tp
    return ClassResult(
        class_id=class_id, n_gt=n_gt, n_pred=len(curve.scores), ap=float(headline),
        ap50=float(ap[0]), ap75=float(ap[5]), ap50_95=float(ap[:n_coco].mean()),
        precision=precision, recall=recall, f1=f1, conf=conf, tp=n_tp, fp=n_fp,
        fn=n_gt - n_tp, curve=curve)


def _coco_stats(ap: np.ndarray, tp: np.ndarray, rank: np.ndarray, det_class: np.ndarray,
                n_gt: np.ndarray) -> np.ndarray:
    """pycocotools' twelve summary numbers from per-class AP and recall."""
    n_coco = len(COCO_IOU_THRESHOLDS)
    num_classes = n_gt.shape[1]

    def mean(values: np.ndarray, valid: np.ndarray) -> float:
        # pycocotools averages the defined entries and reports -1 when there are none
        chosen = values[..., valid]
        return float(chosen.mean()) if chosen.size else -1.0

    def recall(variant: int, max_det: int) -> np.ndarray:
        hits = tp[variant, :n_coco] & (rank < max_det)
        found = np.stack([np.bincount(det_class[row], minlength=num_classes) for row in hits])
        return found / np.maximum(n_gt[variant], 1)

    stats = [
        mean(ap[0, :n_coco], n_gt[0] > 0),
        mean(ap[0, 0], n_gt[0] > 0),
        mean(ap[0, 5], n_gt[0] > 0),
        *(mean(ap[v, :n_coco], n_gt[v] > 0) for v in (1, 2, 3)),
        *(mean(recall(0, m), n_gt[0] > 0) for m in COCO_MAX_DETS),
        *(mean(recall(v, COCO_MAX_DETS[-1]), n_gt[v] > 0) for v in (1, 2, 3)),
    ]
    return np.array(stats)


def _per_image(flat: Stacked, matched: np.ndarray, tp: np.ndarray, fp: np.ndarray
               ) -> dict[str, ImageResult]:
    """Split the flat matches at the headline threshold into one ImageResult per image."""
    hit = matched >= 0
    pred_gt = np.where(hit, matched - flat.gt_offsets[flat.det_image], -1)
    gt_pred = np.full(len(flat.gt_class), -1, dtype=np.int64)
    det_local = np.arange(len(matched)) - flat.det_offsets[flat.det_image]
    gt_pred[matched[hit]] = det_local[hit]
    det_cuts, gt_cuts = flat.det_offsets[1:-1], flat.gt_offsets[1:-1]
    parts = zip(flat.names, np.split(pred_gt, det_cuts), np.split(tp, det_cuts),
                np.split(fp, det_cuts), np.split(gt_pred, gt_cuts),
                np.split(flat.gt_ignored, gt_cuts), strict=True)
    return {name: ImageResult(pg, ptp, pfp, gp, gi) for name, pg, ptp, pfp, gp, gi in parts}
