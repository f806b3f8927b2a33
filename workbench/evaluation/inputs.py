"""What evaluation reads: the ground truth and the predictions of one image, as checked arrays.

Boxes are xyxy float pixels (continuous coordinates, no ``+1``). Bad input raises a one-line
ValueError at construction: wrong shapes, mismatched lengths, NaN or infinite numbers, boxes
with x2 < x1, negative or fractional class ids. Integer and non-contiguous arrays are accepted
and converted. Zero-area boxes are valid: they overlap nothing (IoU 0), so a zero-area ground
truth can only be missed and a zero-area prediction is a false positive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from workbench.geometry.boxes import as_boxes, as_scores

if TYPE_CHECKING:
    from workbench.labels.dataset import Box, ImageRecord


def _as_class_ids(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.size == 0 and n == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} class ids for {n} boxes, got shape {arr.shape}")
    if arr.dtype.kind in "iu":
        ids = arr.astype(np.int64)
    else:
        try:
            as_float = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: class ids must be integers") from None
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            i = int(np.nonzero(~np.isfinite(as_float) | (as_float != np.round(as_float)))[0][0])
            raise ValueError(f"{name}: class id {i} is not an integer ({arr[i]!r})")
        ids = as_float.astype(np.int64)
    if ids.size and ids.min() < 0:
        i = int(np.argmin(ids))
        raise ValueError(f"{name}: class id {i} is negative ({ids[i]})")
    return np.ascontiguousarray(ids)


def _as_values(values: Any, n: int, name: str) -> np.ndarray:
    as_scores(values, n, name)  # shape and finiteness, with one-line errors
    # keep double precision (as_scores rounds to float32): rounding would create score ties
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))


def _as_flags(values: Any, n: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(n, dtype=bool)
    arr = np.asarray(values)
    if arr.size == 0 and n == 0:
        return np.zeros(0, dtype=bool)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected {n} flags for {n} boxes, got shape {arr.shape}")
    return np.ascontiguousarray(arr.astype(bool))


@dataclass(frozen=True, eq=False, init=False)
class GroundTruth:
    """The labeled boxes of one image.

    ``difficult`` (VOC) and ``crowd`` (COCO) boxes are ignored: they are never counted as
    missed, and a prediction matching one is neither a true nor a false positive. A crowd box
    may absorb any number of predictions, and its overlap is measured as intersection over the
    prediction's area (pycocotools). ``areas`` (optional) replaces the box areas for COCO's
    small/medium/large ranges, as COCO files store the segmentation area there.

    The constructor takes ``None`` for the optional three; after it every field is an array
    (no flags: all False; no areas: the box areas).
    """

    boxes: np.ndarray
    class_ids: np.ndarray
    difficult: np.ndarray
    crowd: np.ndarray
    areas: np.ndarray

    def __init__(self, boxes: ArrayLike, class_ids: ArrayLike,
                 difficult: ArrayLike | None = None, crowd: ArrayLike | None = None,
                 areas: ArrayLike | None = None) -> None:
        checked = as_boxes(boxes, "ground truth boxes", ordered=True)
        n = len(checked)
        set_ = object.__setattr__
        set_(self, "boxes", checked)
        set_(self, "class_ids", _as_class_ids(class_ids, n, "ground truth class_ids"))
        set_(self, "difficult", _as_flags(difficult, n, "ground truth difficult"))
        set_(self, "crowd", _as_flags(crowd, n, "ground truth crowd"))
        if areas is None:
            areas = (checked[:, 2] - checked[:, 0]) * (checked[:, 3] - checked[:, 1])
        else:
            areas = _as_values(areas, n, "ground truth areas")
        set_(self, "areas", np.ascontiguousarray(areas))

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def ignored(self) -> np.ndarray:
        """(N,) bool: boxes that neither count as missed nor make a match a false positive."""
        return self.difficult | self.crowd

    @classmethod
    def empty(cls) -> GroundTruth:
        """An image with nothing labeled in it."""
        return cls(np.zeros((0, 4)), np.zeros(0, dtype=np.int64))

    @classmethod
    def from_boxes(cls, boxes: Iterable[Box]) -> GroundTruth:
        """From ``workbench.labels.dataset.Box`` objects (x1, y1, x2, y2, class_id, difficult)."""
        items = list(boxes)
        if not items:
            return cls.empty()
        return cls(np.array([b.xyxy() for b in items], dtype=np.float64),
                   np.array([b.class_id for b in items], dtype=np.int64),
                   difficult=np.array([bool(b.difficult) for b in items]))


@dataclass(frozen=True, eq=False)
class Predictions:
    """The detections of one image: xyxy boxes, confidence scores and class ids."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __post_init__(self) -> None:
        boxes = as_boxes(self.boxes, "predicted boxes", ordered=True)
        n = len(boxes)
        set_ = object.__setattr__
        set_(self, "boxes", boxes)
        set_(self, "scores", _as_values(self.scores, n, "prediction scores"))
        set_(self, "class_ids", _as_class_ids(self.class_ids, n, "prediction class_ids"))

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> Predictions:
        """An image where the detector found nothing."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))


@dataclass
class Stacked:
    """Every image's boxes in one array per field, images in the order of the gt dict."""

    names: list[str]
    gt_image: np.ndarray
    gt_boxes: np.ndarray
    gt_class: np.ndarray
    gt_ignored: np.ndarray
    gt_crowd: np.ndarray
    gt_area: np.ndarray
    gt_offsets: np.ndarray
    det_image: np.ndarray
    det_boxes: np.ndarray
    det_scores: np.ndarray
    det_class: np.ndarray
    det_offsets: np.ndarray


def _concat(parts: list[np.ndarray], empty: np.ndarray) -> np.ndarray:
    return np.concatenate(parts) if parts else empty


def stack(gt: Mapping[str, GroundTruth], pred: Mapping[str, Predictions],
          num_classes: int) -> Stacked:
    """Check every image's entries and stack them; raises ValueError/TypeError naming the image."""
    names = list(gt)
    stray = [name for name in pred if name not in gt]
    if stray:
        raise ValueError(f"predictions for {len(stray)} image(s) without ground truth, "
                         f"first {stray[0]!r}; give every evaluated image a GroundTruth "
                         "(GroundTruth.empty() when nothing is labeled)")
    empty_pred = Predictions.empty()
    gts, preds = [], []
    for name in names:
        g, p = gt[name], pred.get(name, empty_pred)
        if not isinstance(g, GroundTruth):
            raise TypeError(f"image {name!r}: ground truth must be a GroundTruth, "
                            f"not {type(g).__name__}")
        if not isinstance(p, Predictions):
            raise TypeError(f"image {name!r}: predictions must be Predictions, "
                            f"not {type(p).__name__}")
        for what, ids in (("ground truth", g.class_ids), ("prediction", p.class_ids)):
            if len(ids) and ids.max() >= num_classes:
                raise ValueError(f"image {name!r}: {what} class id {int(ids.max())} is not "
                                 f"below num_classes={num_classes}")
        gts.append(g)
        preds.append(p)
    gt_sizes = np.array([len(g) for g in gts], dtype=np.int64)
    det_sizes = np.array([len(p) for p in preds], dtype=np.int64)
    images = np.arange(len(names))
    no_boxes, no_ints, no_flags = np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0, bool)
    return Stacked(
        names=names,
        gt_image=np.repeat(images, gt_sizes),
        gt_boxes=_concat([g.boxes for g in gts], no_boxes),
        gt_class=_concat([g.class_ids for g in gts], no_ints),
        gt_ignored=_concat([g.ignored for g in gts], no_flags),
        gt_crowd=_concat([g.crowd for g in gts], no_flags),
        gt_area=_concat([g.areas for g in gts], np.zeros(0)),
        gt_offsets=np.concatenate([[0], np.cumsum(gt_sizes)]),
        det_image=np.repeat(images, det_sizes),
        det_boxes=_concat([p.boxes for p in preds], no_boxes),
        det_scores=_concat([p.scores for p in preds], np.zeros(0)),
        det_class=_concat([p.class_ids for p in preds], no_ints),
        det_offsets=np.concatenate([[0], np.cumsum(det_sizes)]),
    )


@dataclass
class Truth:
    """The ground truth as evaluation needs it, keyed by image path relative to the root."""

    class_names: list[str]
    records: dict[str, ImageRecord]  # by relative posix path
    coco_doc: dict[str, Any] | None = None  # the parsed GT JSON when GT is a COCO file
    # images of the dataset left out (unlabeled, other split): their predictions are skipped
    left_out: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
