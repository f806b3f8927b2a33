"""Greedy matching of predictions to ground truth, the rule pycocotools' COCOeval applies.

Within a group (one image and class, or one image for the confusion matrix) predictions are
taken in descending score order, ties in their original order. Each takes, among the ground
truths still free (crowd boxes are always free) with overlap >= the threshold, the one with the
highest overlap, preferring boxes that are not ignored; on equal overlap the later box wins
(as pycocotools does). Overlap is IoU, or intersection over the prediction's area for a crowd
box.

The walk over predictions is sequential by nature, so instead of looping over groups it runs
all groups side by side: step ``d`` handles the d-th best prediction of every group at once,
for every IoU threshold and every set of ignore flags (COCO's area ranges) at once. Groups are
sorted by their number of predictions, so step ``d`` only touches the groups that still have
one, and processed in chunks that bound memory.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# elements of the (ignore sets x thresholds x groups x ground truths) state per chunk
_CHUNK_BUDGET = 1 << 21


def group_starts(sorted_groups: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """(start, count) of each group id 0..n_groups-1 in an array sorted by group id."""
    counts = np.bincount(sorted_groups, minlength=n_groups)
    starts = np.zeros(n_groups, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return starts, counts


def score_order(groups: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Indices sorting predictions by group, then score descending, ties in original order."""
    return np.lexsort((-scores, groups))  # lexsort is stable


def overlaps(det: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """Overlap of every prediction with every ground truth of the same group.

    ``det`` (..., D, 4) and ``gt`` (..., G, 4) xyxy, ``crowd`` (..., G) -> (..., D, G): IoU,
    or intersection over the prediction's area against a crowd box. Empty unions give 0.
    """
    dx1, dy1, dx2, dy2 = (det[..., :, None, k] for k in range(4))
    gx1, gy1, gx2, gy2 = (gt[..., None, :, k] for k in range(4))
    iw = np.minimum(dx2, gx2) - np.maximum(dx1, gx1)
    ih = np.minimum(dy2, gy2) - np.maximum(dy1, gy1)
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    det_area = (dx2 - dx1) * (dy2 - dy1)
    union = det_area + (gx2 - gx1) * (gy2 - gy1) - inter
    denominator = np.where(crowd[..., None, :], det_area, union)
    out = np.zeros(inter.shape, dtype=np.float64)
    np.divide(inter, denominator, out=out, where=inter > 0)
    return out


def _chunks(n_det: np.ndarray, n_gt: np.ndarray, per_cell: int) -> Iterator[np.ndarray]:
    """Index arrays of groups to match together, within the memory budget.

    Groups of similar ground-truth counts go together (power-of-two buckets) so little
    padding is wasted; inside a chunk they are sorted by prediction count, descending.
    """
    if len(n_det) == 0:
        return
    bucket = np.ceil(np.log2(np.maximum(n_gt, 1))).astype(np.int64)
    order = np.lexsort((-n_det, bucket))
    edges = np.flatnonzero(np.diff(bucket[order])) + 1
    for members in np.split(order, edges):
        width_g = int(n_gt[members].max())
        i = 0
        while i < len(members):
            width_d = int(n_det[members[i]])  # the widest group comes first
            per_group = width_g * per_cell + width_d * width_g
            size = max(1, _CHUNK_BUDGET // per_group)
            yield members[i:i + size]
            i += size


def match(det_groups: np.ndarray, det_scores: np.ndarray, det_boxes: np.ndarray,
          gt_groups: np.ndarray, gt_boxes: np.ndarray, gt_crowd: np.ndarray,
          gt_ignore: np.ndarray, thresholds: np.ndarray,
          max_dets: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Match every prediction to at most one ground truth of its group.

    Groups are non-negative ints. ``gt_ignore`` is (A, G): one set of ignore flags per
    variant (COCO area range). ``thresholds`` (T,) IoU thresholds. Only the ``max_dets``
    best predictions of each group take part (all when None).

    Returns ``rank`` (D,), each prediction's place in its group by score (0 = best), and
    ``matched`` (A, T, D) int32: the index of the ground truth each prediction matched, or -1.
    """
    n_variants = gt_ignore.shape[0]
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n_det_all, n_gt_all = len(det_groups), len(gt_groups)
    # int32 halves the largest array of an evaluation (variants x thresholds x predictions)
    matched = np.full((n_variants, len(thresholds), n_det_all), -1, dtype=np.int32)
    n_groups = int(max(det_groups.max(initial=-1), gt_groups.max(initial=-1))) + 1
    order = score_order(det_groups, det_scores)
    det_start, det_count = group_starts(det_groups[order], n_groups)
    rank = np.empty(n_det_all, dtype=np.int64)
    rank[order] = np.arange(n_det_all) - np.repeat(det_start, det_count)
    if n_det_all == 0 or n_gt_all == 0:
        return rank, matched
    gt_order = np.argsort(gt_groups, kind="stable")
    gt_start, gt_count = group_starts(gt_groups[gt_order], n_groups)
    n_det = det_count if max_dets is None else np.minimum(det_count, max_dets)

    both = np.nonzero((n_det > 0) & (gt_count > 0))[0]
    # pycocotools caps the threshold just below 1 so that IoU 1.0 boxes match at t = 1
    thr = np.minimum(thresholds, 1 - 1e-10)[None, :, None, None]
    per_cell = n_variants * len(thresholds)
    for part in _chunks(n_det[both], gt_count[both], per_cell):
        groups = both[part]
        det_index = _table(order, det_start[groups], n_det[groups])
        gt_index = _table(gt_order, gt_start[groups], gt_count[groups])
        _match_chunk(det_index, n_det[groups], gt_index, gt_count[groups], det_boxes,
                     gt_boxes, gt_crowd, gt_ignore, thr, matched)
    return rank, matched


def _table(order: np.ndarray, start: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(B, max count) table of the members of each group (padding repeats a valid index)."""
    steps = np.arange(int(count.max()))
    return order[np.where(steps < count[:, None], start[:, None] + steps, start[:, None])]


def _match_chunk(det_index: np.ndarray, n_d: np.ndarray, gt_index: np.ndarray,
                 n_g: np.ndarray, det_boxes: np.ndarray, gt_boxes: np.ndarray,
                 gt_crowd: np.ndarray, gt_ignore: np.ndarray, thr: np.ndarray,
                 matched: np.ndarray) -> None:
    """The greedy walk for one chunk of groups (sorted by n_d descending), into ``matched``."""
    width_d, width_g = det_index.shape[1], gt_index.shape[1]
    valid_g = np.arange(width_g) < n_g[:, None]
    crowd = gt_crowd[gt_index] & valid_g
    overlap = overlaps(det_boxes[det_index], gt_boxes[gt_index], crowd)
    overlap[np.broadcast_to(~valid_g[:, None, :], overlap.shape)] = -1.0  # padding never matches
    ignore = gt_ignore[:, gt_index][:, None]  # (A, 1, B, G)
    counted = ~ignore
    shape = (len(gt_ignore), thr.shape[1], len(n_d), width_g)
    # a box is free until matched; crowd boxes stay free (they absorb any number)
    free = np.broadcast_to(valid_g, shape).copy()
    # groups are sorted by n_d descending: at step d the first `active` still have one
    active_at = np.searchsorted(-n_d, -np.arange(width_d), side="left")
    for d in range(width_d):
        active = int(active_at[d])
        current = overlap[:active, d, :]
        ok = free[:, :, :active] & (current >= thr)
        # prefer boxes that count; fall back to ignored ones only when none qualifies
        any_counted = (ok & counted[:, :, :active]).any(axis=-1, keepdims=True)
        candidates = ok & (ignore[:, :, :active] != any_counted)
        score = np.where(candidates, current, -1.0)[..., ::-1]
        last = np.argmax(score, axis=-1)[..., None]  # the last of equal maxima
        hit = np.take_along_axis(score, last, axis=-1)[..., 0] >= 0
        a, t, b = np.nonzero(hit)
        best = width_g - 1 - last[a, t, b, 0]
        free[a, t, b, best] = crowd[b, best]
        matched[a, t, det_index[b, d]] = gt_index[b, best]
