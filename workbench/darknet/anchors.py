"""Anchor boxes for a dataset: k-means over labeled box sizes with 1 - IoU as the distance.

Boxes are compared by width and height only (centred on each other), as in darknet's
``calc_anchors``; sizes are scaled from each image to the network input (stretch resize).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.data.folder import open_dataset
from workbench.data.splits import split_records
from workbench.errors import WorkbenchError
from workbench.labels.dataset import Dataset


@dataclass
class AnchorResult:
    """Anchors (k, 2) as (w, h) network pixels, sorted by area; the mean best IoU they reach."""

    anchors: np.ndarray
    mean_iou: float
    boxes: int
    iterations: int

    def cfg_line(self) -> str:
        """``anchors = 10,13,  16,30, ...`` ready to paste into every [yolo] section."""
        return "anchors = " + ",  ".join(f"{round(w)},{round(h)}" for w, h in self.anchors)


def wh_iou(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU (N, K) of (w, h) pairs placed on a common centre."""
    inter = (np.minimum(boxes[:, None, 0], anchors[None, :, 0])
             * np.minimum(boxes[:, None, 1], anchors[None, :, 1]))
    union = (boxes[:, 0] * boxes[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None] - inter
    return inter / union


def dataset_box_sizes(dataset: Dataset, width: int, height: int) -> np.ndarray:
    """(N, 2) widths and heights of every labeled box, scaled to a ``width`` x ``height`` input."""
    sizes: list[tuple[float, float]] = []
    for record in dataset.images:
        if record.width <= 0 or record.height <= 0:
            continue  # unreadable image: its boxes cannot be scaled
        sx, sy = width / record.width, height / record.height
        sizes.extend((b.width * sx, b.height * sy) for b in record.boxes)
    wh = np.asarray(sizes, np.float64).reshape(-1, 2)
    return wh[(wh[:, 0] > 0) & (wh[:, 1] > 0)]


def _plus_plus_init(wh: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):
        d = 1.0 - wh_iou(wh, np.asarray(centres)).max(axis=1)
        d2 = d * d
        total = d2.sum()
        index = rng.choice(len(wh), p=d2 / total) if total > 0 else rng.integers(len(wh))
        centres.append(wh[index])
    return np.asarray(centres, np.float64)


def kmeans_anchors(wh: np.ndarray, k: int = 9, *, seed: int = 0,
                   max_iterations: int = 300) -> AnchorResult:
    """k-means (k-means++ start, seeded) with distance 1 - IoU over box sizes ``wh`` (N, 2)."""
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if k < 1:
        raise WorkbenchError("the number of anchors must be at least 1")
    if len(wh) < k:
        raise WorkbenchError(f"{len(wh)} labeled boxes are too few for {k} anchors")
    rng = np.random.default_rng(seed)
    centres = _plus_plus_init(wh, k, rng)
    assign = np.full(len(wh), -1)
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        new = wh_iou(wh, centres).argmax(axis=1)
        if np.array_equal(new, assign):
            break
        assign = new
        for j in range(k):
            members = wh[assign == j]
            # an emptied cluster restarts on the box worst served so far
            centres[j] = (members.mean(axis=0) if len(members)
                          else wh[wh_iou(wh, centres).max(axis=1).argmin()])
    order = np.argsort(centres[:, 0] * centres[:, 1], kind="stable")
    centres = centres[order]
    mean_iou = float(wh_iou(wh, centres).max(axis=1).mean())
    return AnchorResult(centres, mean_iou, len(wh), iterations)


@dataclass
class DatasetAnchors:
    """:func:`dataset_anchors`' answer: the clustering and the dataset it read (its label
    problems were skipped)."""

    result: AnchorResult
    dataset: Dataset


def dataset_anchors(folder: str | Path, k: int, width: int, height: int, *,
                    label_format: str = "auto", labels: str | Path | None = None,
                    split: str = "all", seed: int = 0) -> DatasetAnchors:
    """``workbench anchors``: open the dataset at ``folder``, take the boxes of ``split``
    scaled to a ``width`` x ``height`` input and cluster them into ``k`` anchors.
    WorkbenchError when the split holds no labeled box."""
    dataset = open_dataset(folder, label_format, labels=labels)
    chosen = dataclasses.replace(dataset, images=split_records(dataset, split))
    wh = dataset_box_sizes(chosen, width, height)
    if len(wh) == 0:
        where = "" if split == "all" else f" in the {split} split"
        raise WorkbenchError(f"{dataset.root}: no labeled boxes found{where} "
                             f"(label format: {dataset.label_format})"
                             + (f"; {dataset.problems[0]}" if dataset.problems else ""))
    return DatasetAnchors(kmeans_anchors(wh, k, seed=seed), dataset)
