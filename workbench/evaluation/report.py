"""One prediction set evaluated against the labels: what ``workbench eval`` prints and the
window's Evaluate view shows, computed in one place so the two always agree.

Beyond :func:`workbench.evaluate.evaluate` it keeps the confusion matrix with the image of
every count (a cell lists its images) and each image's errors at the matrix's confidence
threshold: a prediction that matched no object is a false positive, an object nothing
found is a false negative, and an object found with the wrong class is one of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.confusion import ConfusionEntries, ConfusionMatrix, confusion_entries
from workbench.errors import WorkbenchError
from workbench.evaluate import Evaluation, GroundTruth, evaluate
from workbench.evaluation.sources import Truth, load_predictions, truth_from_dataset


@dataclass(frozen=True)
class ImageErrors:
    name: str   # the image's path relative to the dataset root
    fp: int
    fn: int

    @property
    def errors(self) -> int:
        return self.fp + self.fn


@dataclass(frozen=True, eq=False)
class Report:
    class_names: list[str]
    result: Evaluation
    matrix: ConfusionMatrix
    entries: ConfusionEntries = field(repr=False)
    n_images: int = 0
    notes: list[str] = field(default_factory=list)

    def images_by_errors(self) -> list[ImageErrors]:
        """Every evaluated image, most errors (FP + FN) first, ties by name."""
        k = len(self.class_names)
        e = self.entries
        cross = (e.true < k) & (e.predicted < k) & (e.true != e.predicted)  # wrong class
        fp = np.bincount(e.image[(e.true == k) | cross], minlength=len(e.names))
        fn = np.bincount(e.image[(e.predicted == k) | cross], minlength=len(e.names))
        rows = [ImageErrors(name, int(fp[i]), int(fn[i])) for i, name in enumerate(e.names)]
        return sorted(rows, key=lambda r: (-r.errors, r.name))


def evaluate_truth(truth: Truth, pred: dict, *, iou: float = 0.5, metric: str = "voc",
                   conf: float = 0.25, notes: list[str] | None = None) -> Report:
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
                  truth.notes + list(notes or []))


def evaluate_prediction_set(dataset, predictions: str | Path, *, iou: float = 0.5,
                            metric: str = "voc", conf: float = 0.25,
                            split: str = "all") -> Report:
    """An open dataset's labels (as they are in memory) against a folder of predictions."""
    truth = truth_from_dataset(dataset, split)
    if not truth.class_names:
        raise WorkbenchError(f"{dataset.root}: no class list (classes.txt or obj.names)")
    pred, notes = load_predictions(Path(predictions), truth)
    return evaluate_truth(truth, pred, iou=iou, metric=metric, conf=conf, notes=notes)
