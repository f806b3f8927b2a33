"""A model's validation mAP@0.5 on a data set, measured as the trainer measures it.

The same validation images (``workbench.data.splits.training_split``, as the trainer's), the same
thresholds (candidates above 0.005, class-aware NMS at 0.45, VOC all-point AP at IoU 0.5), so
a trained model's reported ``best_map50`` and the current model's score can be compared
before one replaces the other. Model classes are matched to the data set's by name;
detections of other classes are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from workbench.data.splits import training_split
from workbench.detect.config import DEFAULT_NMS, MAP_CONF
from workbench.detect.detector import Detector
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate
from workbench.labels.dataset import Dataset

VALID_CONF = MAP_CONF  # as the trainer's validation
VALID_NMS = DEFAULT_NMS  # detect's own NMS


def validation_map50(model: str | Path, dataset: Dataset, valid_fraction: float = 0.1, *,
                     cancelled: Callable[[], bool] = lambda: False) -> float | None:
    """mAP@0.5 of ``model`` on the data set's validation images; None without any."""
    _, valid = training_split(dataset, valid_fraction)
    if not valid:
        return None
    detector = Detector(model)
    names = dataset.classes.names
    to_dataset = np.array([names.index(n) if n in names else -1
                           for n in detector.class_names], np.int64)
    predictions = {}
    for result in detector.detect_many([r.path for r in valid], VALID_CONF, VALID_NMS):
        if cancelled():
            return None
        d = result.detections
        if d is None:
            continue
        ids = to_dataset[d.class_ids]
        keep = ids >= 0
        predictions[str(result.path)] = Predictions(d.boxes[keep], d.scores[keep], ids[keep])
    truth = {str(r.path): GroundTruth.from_boxes(r.boxes) for r in valid}
    return float(evaluate(truth, predictions, len(names), iou_threshold=0.5,
                          metric="voc").map50)
