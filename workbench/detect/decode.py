"""Turn head outputs into candidate boxes in image pixels, without a per-row Python loop.

Rows follow OpenCV's convention (see backends.py): cx, cy, w, h normalized to the network
input, objectness, class scores already multiplied by objectness. As in darknet, a row yields
one candidate per class whose score is above the threshold (a box can be both "cat" and "dog").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workbench.geometry.boxes import iou_matrix
from workbench.geometry.nms import batched_nms
from workbench.labels.dataset import Box


@dataclass
class Candidates:
    """Boxes (N, 4) xyxy float pixels in the image, scores (N,), class_ids (N,) int64."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, keep: np.ndarray) -> Candidates:
        return type(self)(self.boxes[keep], self.scores[keep], self.class_ids[keep])

    @classmethod
    def empty(cls) -> Candidates:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True)
class Letterbox:
    """Where the resized image sits in the network input: scale, size and top-left padding."""

    scale: float
    new_width: int
    new_height: int
    pad_x: int
    pad_y: int


def letterbox_geometry(image_width: int, image_height: int, net_width: int,
                       net_height: int) -> Letterbox:
    """Darknet's letterbox: keep the aspect ratio, centre, pad the rest (one place for both
    the blob and the decode, so they cannot disagree)."""
    scale = min(net_width / image_width, net_height / image_height)
    new_w = max(1, min(net_width, round(image_width * scale)))
    new_h = max(1, min(net_height, round(image_height * scale)))
    return Letterbox(scale, new_w, new_h, (net_width - new_w) // 2, (net_height - new_h) // 2)


def decode(outputs: list[np.ndarray], image_width: int, image_height: int, net_width: int,
           net_height: int, conf_threshold: float, letterbox: bool = False, *,
           multi_label: bool = True) -> Candidates:
    """Candidates with score (objectness x class probability) above ``conf_threshold``.

    ``outputs`` are one image's head arrays, each (rows, 5+C) or (1, rows, 5+C). Boxes are
    mapped back through the stretch resize (default) or the letterbox, then clipped to the
    image. ``multi_label=False`` keeps only each row's best class.
    """
    rows = np.concatenate([o.reshape(-1, o.shape[-1]) for o in outputs], axis=0)
    scores = rows[:, 5:]
    if multi_label:
        # nonzero returns row-major order: rows in head order, classes ascending in a row
        row_idx, class_ids = np.nonzero(scores > conf_threshold)
        picked = scores[row_idx, class_ids]
    else:
        class_ids = scores.argmax(axis=1)
        picked = scores[np.arange(len(rows)), class_ids]
        row_idx = np.nonzero(picked > conf_threshold)[0]
        class_ids, picked = class_ids[row_idx], picked[row_idx]
    if len(row_idx) == 0:
        return Candidates.empty()
    cx, cy, w, h = rows[row_idx, 0:4].astype(np.float64).T
    if letterbox:
        g = letterbox_geometry(image_width, image_height, net_width, net_height)
        cx = (cx * net_width - g.pad_x) / g.scale
        cy = (cy * net_height - g.pad_y) / g.scale
        w = w * net_width / g.scale
        h = h * net_height / g.scale
    else:
        cx, w = cx * image_width, w * image_width
        cy, h = cy * image_height, h * image_height
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    finite = np.isfinite(boxes).all(axis=1)
    if not finite.all():  # random or diverged weights can overflow exp(w)
        boxes, picked, class_ids = boxes[finite], picked[finite], class_ids[finite]
    np.clip(boxes[:, 0::2], 0, image_width, out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, image_height, out=boxes[:, 1::2])
    return Candidates(boxes.astype(np.float32), picked.astype(np.float32),
                      class_ids.astype(np.int64))


def class_aware_nms(candidates: Candidates, iou_threshold: float,
                    score_threshold: float = 0.0, top_k: int = 0) -> np.ndarray:
    """Indices kept by per-class NMS (cv2.dnn.NMSBoxes semantics), highest score first."""
    if len(candidates) == 0:
        return np.zeros(0, np.int64)
    return batched_nms(candidates.boxes, candidates.scores, candidates.class_ids, iou_threshold,
                       score_threshold=score_threshold, top_k=top_k)


class Detections(Candidates):
    """What survived NMS: boxes (N, 4) xyxy float pixels, scores (N,), class_ids (N,),
    highest score first."""

    def to_boxes(self) -> list[Box]:
        """The boxes as the data model's Box (float pixels, class id)."""
        return [Box(x1, y1, x2, y2, class_id=c)
                for (x1, y1, x2, y2), c in zip(self.boxes.tolist(), self.class_ids.tolist(),
                                               strict=True)]

    @classmethod
    def from_boxes(cls, boxes: list[Box], scores: list[float]) -> Detections:
        """Detections of Boxes and their scores (a prediction set read back)."""
        return cls(np.array([b.xyxy() for b in boxes], np.float64).reshape(-1, 4),
                   np.array(scores, np.float64),
                   np.array([b.class_id for b in boxes], np.int64))


def to_full_size(found: Detections, scale: float, offset: tuple[float, float],
                 full: tuple[int, int]) -> Detections:
    """Detections found on a reduced decode in the full image's pixels: ``x * scale -
    offset_x`` (``workbench.data.images.Reduced`` says why an offset), clipped to the
    ``full`` (width, height)."""
    boxes = found.boxes.astype(np.float64) * scale
    boxes[:, 0::2] -= offset[0]
    boxes[:, 1::2] -= offset[1]
    np.clip(boxes[:, 0::2], 0, full[0], out=boxes[:, 0::2])
    np.clip(boxes[:, 1::2], 0, full[1], out=boxes[:, 1::2])
    return Detections(boxes.astype(found.boxes.dtype), found.scores, found.class_ids)


def suppress(candidates: Candidates, nms: float, merge: bool = False) -> Detections:
    """Class-aware NMS at IoU ``nms``; with ``merge`` each kept box is moved to the mean of
    the candidates it suppressed and itself (:func:`merged_boxes`): the same boxes kept, with
    the same scores, only their corners change."""
    keep = class_aware_nms(candidates, nms)
    boxes = merged_boxes(candidates, keep, nms) if merge else candidates.boxes[keep]
    return Detections(boxes, candidates.scores[keep], candidates.class_ids[keep])


def merged_boxes(candidates: Candidates, keep: np.ndarray, iou_threshold: float) -> np.ndarray:
    """YOLOv5's merge NMS (``merge=True``; weighted NMS, Ning et al. 2017): each kept box
    becomes the mean of the candidates of its class overlapping it by more than
    ``iou_threshold`` (itself included), weighted by score x IoU. A detector's neighbouring
    cells and anchors each place the object a little differently; their consensus fits it
    better than the single best-scored guess, which mAP at IoU 0.75-0.95 rewards."""
    if len(keep) == 0:
        return candidates.boxes[keep]
    kept = candidates.boxes[keep].astype(np.float64)
    overlap = iou_matrix(kept, candidates.boxes.astype(np.float64))           # (K, N)
    same = candidates.class_ids[keep][:, None] == candidates.class_ids[None, :]
    weights = np.where(same & (overlap > iou_threshold), overlap, 0.0) * candidates.scores
    weights[np.arange(len(keep)), keep] = candidates.scores[keep]  # itself, IoU 1 exactly
    merged = weights @ candidates.boxes.astype(np.float64) / weights.sum(1, keepdims=True)
    return merged.astype(candidates.boxes.dtype)
