"""The detection confusion matrix: which class the detector said for each labeled object.

Rows are the true classes plus ``background`` (a prediction that matched no object); columns
are the predicted classes plus ``missed`` (an object no prediction matched). Predictions at or
above the confidence threshold are matched to ground truth of ANY class, per image, in
descending score order, each taking the free box with the highest IoU >= the IoU threshold
(the evaluation's matching rule without the class condition), so a box found with the wrong
class shows off the diagonal instead of as a miss plus a false alarm. Difficult and crowd
boxes are ignored: never missed, and a prediction on one is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.detect.config import DEFAULT_CONF
from workbench.evaluation.inputs import GroundTruth, Predictions, stack
from workbench.evaluation.matching import match


@dataclass(frozen=True, eq=False)
class ConfusionMatrix:
    """``counts[true, predicted]``, (K + 1, K + 1) int64; index K is background / missed."""

    counts: np.ndarray
    iou_threshold: float
    conf_threshold: float

    @property
    def num_classes(self) -> int:
        return self.counts.shape[0] - 1

    @property
    def correct(self) -> int:
        """Objects found with the right class."""
        return int(np.trace(self.counts[:-1, :-1]))

    @property
    def wrong_class(self) -> int:
        """Objects found, but with another class."""
        return int(self.counts[:-1, :-1].sum()) - self.correct

    @property
    def background(self) -> np.ndarray:
        """(K,) predictions of each class that matched no object (false alarms)."""
        return self.counts[-1, :-1]

    @property
    def missed(self) -> np.ndarray:
        """(K,) objects of each class that no prediction matched."""
        return self.counts[:-1, -1]

    def row_labels(self, class_names: Sequence[str]) -> list[str]:
        return [*class_names, "background"]

    def column_labels(self, class_names: Sequence[str]) -> list[str]:
        return [*class_names, "missed"]

    def normalized(self) -> np.ndarray:
        """Each row divided by its total (rows without any count stay 0)."""
        totals = self.counts.sum(axis=1, keepdims=True)
        out = np.zeros(self.counts.shape)
        np.divide(self.counts, totals, out=out, where=totals > 0)
        return out


def confusion_matrix(gt: Mapping[str, GroundTruth], pred: Mapping[str, Predictions],
                     num_classes: int, *, iou_threshold: float = 0.5,
                     conf_threshold: float = DEFAULT_CONF) -> ConfusionMatrix:
    """Count matches between true and predicted classes over all images (see module doc)."""
    entries = confusion_entries(gt, pred, num_classes, iou_threshold=iou_threshold,
                                conf_threshold=conf_threshold)
    k = num_classes
    counts = np.zeros((k + 1, k + 1), dtype=np.int64)
    np.add.at(counts, (entries.true, entries.predicted), 1)
    return ConfusionMatrix(counts, float(iou_threshold), float(conf_threshold))


@dataclass(frozen=True, eq=False)
class ConfusionEntries:
    """Every count of the matrix with its image: entry ``i`` adds one to
    ``counts[true[i], predicted[i]]`` and comes from image ``names[image[i]]``."""

    names: list[str]
    image: np.ndarray
    true: np.ndarray
    predicted: np.ndarray

    def images_of(self, true: int, predicted: int) -> dict[str, int]:
        """The images that contribute to one cell, with how many each."""
        chosen = self.image[(self.true == true) & (self.predicted == predicted)]
        found, counts = np.unique(chosen, return_counts=True)
        return {self.names[i]: int(n) for i, n in zip(found, counts, strict=True)}


def confusion_entries(gt: Mapping[str, GroundTruth], pred: Mapping[str, Predictions],
                      num_classes: int, *, iou_threshold: float = 0.5,
                      conf_threshold: float = DEFAULT_CONF) -> ConfusionEntries:
    """The matrix's counts one by one, each with the image it comes from (for drilling down
    from a cell to its images)."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if not (np.isfinite(iou_threshold) and 0.0 < iou_threshold <= 1.0):
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
    if not np.isfinite(conf_threshold):
        raise ValueError(f"conf_threshold must be a finite number, got {conf_threshold!r}")
    s = stack(gt, pred, num_classes)
    confident = np.nonzero(s.det_scores >= conf_threshold)[0]
    _, matched = match(s.det_image[confident], s.det_scores[confident], s.det_boxes[confident],
                       s.gt_image, s.gt_boxes, s.gt_crowd, s.gt_ignored[None, :],
                       np.array([iou_threshold]))
    matched = matched[0, 0]
    det_class = s.det_class[confident]
    det_image = s.det_image[confident]
    k = num_classes
    hit = matched >= 0
    counted_hit = hit.copy()
    counted_hit[hit] = ~s.gt_ignored[matched[hit]]
    found = np.zeros(len(s.gt_class), dtype=bool)
    found[matched[hit]] = True
    missed = ~found & ~s.gt_ignored
    n_background = int(np.count_nonzero(~hit))
    return ConfusionEntries(
        names=list(s.names),
        image=np.concatenate([det_image[counted_hit], det_image[~hit], s.gt_image[missed]]),
        true=np.concatenate([s.gt_class[matched[counted_hit]],
                             np.full(n_background, k, np.int64), s.gt_class[missed]]),
        predicted=np.concatenate([det_class[counted_hit], det_class[~hit],
                                  np.full(int(np.count_nonzero(missed)), k, np.int64)]))
