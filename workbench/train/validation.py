"""How the trainer scores a model: the bundle it exported, run by the detector ``workbench
detect`` uses and scored by ``workbench eval``'s ``evaluate``, so its mAP is the one ``detect``
+ ``eval`` give for that bundle; the score that picks the best epoch; and the best model's
operating point, stored in its bundle when detect's default confidence would lose recall.

Imports no TensorFlow (the detector picks its engine when it runs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.darknet.bundle import write_model_defaults
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS, MAP_CONF
from workbench.detect.detector import Detector
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate
from workbench.evaluation.operating_point import operating_point

VALID_CONF = MAP_CONF  # darknet's mAP threshold: low-confidence candidates count for AP
VALID_NMS = DEFAULT_NMS  # detect's own NMS


def ground_truth(records) -> dict:
    return {str(r.path): GroundTruth.from_boxes(r.boxes) for r in records}


def validate_bundle(bundle_dir: Path, records, num_classes: int, backend: str = "auto",
                    progress=None, merge_boxes: bool = False):
    """(mAP@0.5, mAP@[.5:.95], Evaluation, predictions) of the bundle in ``bundle_dir`` on
    ``records``: the detector ``workbench detect`` runs (same engine choice, image decoding,
    resize, decode, class-aware NMS at 0.45, candidates above 0.005) scored by ``workbench
    eval``'s ``evaluate`` (``--metric voc`` for mAP@0.5 and the Evaluation, ``--metric coco``
    for mAP@[.5:.95]). One code path, so the trainer's figures are detect + eval's."""
    detector = Detector(bundle_dir, backend, merge_boxes=merge_boxes)
    preds = {}
    for result in detector.detect_many([r.path for r in records], VALID_CONF, VALID_NMS,
                                       workers=1, progress=progress):
        if result.ok:
            found = result.found
            preds[str(result.path)] = Predictions(found.boxes, found.scores, found.class_ids)
        else:
            preds[str(result.path)] = Predictions.empty()
    truth = ground_truth(records)
    voc = evaluate(truth, preds, num_classes, iou_threshold=0.5, metric="voc")
    coco = evaluate(truth, preds, num_classes, metric="coco")
    return float(voc.map50), float(coco.map50_95), voc, preds


def epoch_score(map50: float | None, map50_95: float | None, best_by: str) -> float:
    """The figure the best epoch is chosen by; no figure (no labeled objects) counts as 0."""
    def finite(x: float | None) -> float:
        return 0.0 if x is None or not np.isfinite(x) else float(x)

    if best_by == "map50":
        return finite(map50)
    return 0.1 * finite(map50) + 0.9 * finite(map50_95)


def finite_or_none(value: float | None) -> float | None:
    """No labeled objects in validation gives mAP NaN: reported as null."""
    return None if value is None or not np.isfinite(value) else value


def calibrate(bundle_dir: Path, plain, merged, valid_images: int) -> dict:
    """The best-F1 operating point of the scored bundle (the ``done`` event's fields) and
    the detection defaults it brings, stored in the bundle (thresholds.json): its best-F1
    confidence when detect's default 0.25 would lose recall, and merged boxes (``detect
    --merge-boxes``) when they score better by fitness. ``plain`` and ``merged``:
    validate_bundle's results without and with merged boxes."""
    _, _, evaluation, preds = plain
    plain_score = epoch_score(plain[0], plain[1], "fitness")
    merged_score = epoch_score(merged[0], merged[1], "fitness")
    merge = merged_score > plain_score
    info: dict = {"merged_map50": finite_or_none(merged[0]),
                  "merged_map50_95": finite_or_none(merged[1]), "merge_boxes": merge}
    why = [f"on {valid_images} validation images"]
    conf = None
    point = operating_point(evaluation, preds, DEFAULT_CONF)
    if point is not None:
        info.update(best_f1_conf=point.conf, best_f1=point.f1,
                    recall_at_best_f1=point.recall, recall_at_default_conf=point.recall_at,
                    default_conf=DEFAULT_CONF, conf_stored=False)
        # the issue's rule: the default must keep the recall within 5 points of the best F1's
        if point.recall - point.recall_at > 0.05:
            conf = point.conf
            why.append(f"conf: best F1, recall {point.recall:.3f} there, "
                       f"{point.recall_at:.3f} at {DEFAULT_CONF}")
            info["conf_stored"] = True
    if merge:
        why.append(f"merge_boxes: fitness {merged_score:.4f} merged, {plain_score:.4f} not")
    if conf is not None or merge:
        write_model_defaults(bundle_dir, "; ".join(why), conf=conf,
                             merge_boxes=True if merge else None)
    return info
