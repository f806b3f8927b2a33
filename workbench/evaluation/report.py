"""One prediction set evaluated against the labels: what ``workbench eval`` prints and the
window's Evaluate view shows, computed in one place so the two always agree.

Beyond :func:`workbench.evaluation.evaluate.evaluate` it keeps the confusion matrix with the image of
every count (a cell lists its images) and each image's outcome at the confidence threshold
``conf``: the evaluation's own matches (per class, at the IoU threshold) restricted to the
predictions scoring at least ``conf``. Matching is greedy in descending score order, so
the matches of those predictions do not depend on the lower ones: a prediction is a true
or false positive exactly as in the full evaluation, and an object is missed when no
prediction at or above ``conf`` matched it (what the Inspect dock counts on one image).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workbench.detect.config import DEFAULT_CONF
from workbench.errors import WorkbenchError
from workbench.evaluation.confusion import ConfusionEntries, ConfusionMatrix, confusion_entries
from workbench.evaluation.evaluate import Evaluation, GroundTruth, Predictions, evaluate
from workbench.evaluation.sources import Truth, load_predictions, truth_from_dataset

if TYPE_CHECKING:
    from workbench.labels.dataset import Dataset


@dataclass(frozen=True)
class ImageErrors:
    name: str   # the image's path relative to the dataset root
    fp: int
    fn: int
    tp: int = 0

    @property
    def errors(self) -> int:
        return self.fp + self.fn


@dataclass(frozen=True, eq=False)
class ImageOutcome:
    """One image at the confidence threshold: every prediction at or above it with its
    outcome, and the objects nothing found. Boxes are xyxy pixels."""

    pred_boxes: np.ndarray
    pred_scores: np.ndarray
    pred_classes: np.ndarray
    pred_tp: np.ndarray          # bool per prediction; neither TP nor FP: matched an ignored box
    pred_fp: np.ndarray
    missed_boxes: np.ndarray
    missed_classes: np.ndarray


@dataclass(frozen=True, eq=False)
class Report:
    class_names: list[str]
    result: Evaluation
    matrix: ConfusionMatrix
    entries: ConfusionEntries = field(repr=False)
    n_images: int = 0
    notes: list[str] = field(default_factory=list)
    gt: dict[str, GroundTruth] = field(default_factory=dict, repr=False)
    pred: dict[str, Predictions] = field(default_factory=dict, repr=False)

    @property
    def conf(self) -> float:
        return self.matrix.conf_threshold

    def outcome(self, name: str) -> ImageOutcome:
        """The image's predictions at or above ``conf`` with TP/FP flags, and its misses."""
        found = self.result.per_image[name]
        pred = self.pred.get(name, Predictions.empty())
        gt = self.gt[name]
        confident = pred.scores >= self.conf
        matched = found.gt_pred >= 0
        matched[matched] = confident[found.gt_pred[matched]]
        missed = ~matched & ~found.gt_ignored
        return ImageOutcome(pred.boxes[confident], pred.scores[confident],
                            pred.class_ids[confident], found.pred_tp[confident],
                            found.pred_fp[confident], gt.boxes[missed], gt.class_ids[missed])

    def images_by_errors(self) -> list[ImageErrors]:
        """Every evaluated image, most errors (FP + FN at ``conf``) first, ties by name."""
        rows = []
        for name in self.gt:
            o = self.outcome(name)
            rows.append(ImageErrors(name, int(o.pred_fp.sum()), len(o.missed_classes),
                                    int(o.pred_tp.sum())))
        return sorted(rows, key=lambda r: (-r.errors, r.name))


def evaluate_truth(truth: Truth, pred: Mapping[str, Predictions], *, iou: float = 0.5, metric: str = "voc",
                   conf: float = DEFAULT_CONF, notes: list[str] | None = None) -> Report:
    """Evaluate predictions (read by :func:`load_predictions`) against ``truth``."""
    if not truth.class_names:
        raise WorkbenchError("no class list (classes.txt, obj.names or categories)")
    gt = {key: GroundTruth.from_boxes(record.boxes) for key, record in truth.records.items()}
    n = len(truth.class_names)
    try:
        result = evaluate(gt, pred, n, iou_threshold=iou, metric=metric)
        entries = confusion_entries(gt, pred, n, iou_threshold=iou, conf_threshold=conf)
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    counts = np.zeros((n + 1, n + 1), dtype=np.int64)
    np.add.at(counts, (entries.true, entries.predicted), 1)
    matrix = ConfusionMatrix(counts, float(iou), float(conf))
    return Report(truth.class_names, result, matrix, entries, len(gt),
                  truth.notes + list(notes or []), gt, dict(pred))


def evaluate_prediction_set(dataset: Dataset, predictions: str | Path, *, iou: float = 0.5,
                            metric: str = "voc", conf: float = DEFAULT_CONF,
                            split: str = "all") -> Report:
    """An open dataset's labels (as they are in memory) against a folder of predictions."""
    truth = truth_from_dataset(dataset, split)
    if not truth.class_names:
        raise WorkbenchError(f"{dataset.root}: no class list (classes.txt or obj.names)")
    pred, notes = load_predictions(Path(predictions), truth)
    return evaluate_truth(truth, pred, iou=iou, metric=metric, conf=conf, notes=notes)
