"""Non-maximum suppression with cv2.dnn.NMSBoxes semantics, and a trace of every decision
(the trace type in :mod:`workbench.geometry.nms_trace`).

Greedy NMS (``nms``, ``batched_nms``, ``diou_nms``) follows OpenCV exactly: scores compared in
float32 and kept when strictly above ``score_threshold``, a stable sort by score, ``top_k``
applied before suppression, and a box kept when its overlap with every kept box is
``<= iou_threshold``. The overlap is OpenCV's ``rectOverlap``: IoU with no ``+1`` pixel, rounded
to float32, and two empty boxes count as identical (overlap 1).

Soft-NMS follows ``cv2.dnn.softNMSBoxes``: the best remaining box is kept while its (decayed)
score is ``>= score_threshold``; ties go to the lower index.

Speed: plain NMS first sweeps kept box by kept box, each one compared at once (numpy) with
the candidates in its window (``workbench.geometry.boxes.PairStrips``: one slice of a strip sorted by
x), while each kept box removes many candidates, as in clustered detector output. Once kept
boxes remove few (spread boxes), or few candidates are left, candidates are visited in blocks
of the best remaining ones: a uniform grid (``workbench.geometry.boxes.PairGrid``) lists each pair of
boxes that can overlap above the threshold once, so the work grows with the nearby pairs
rather than N^2. Within a block the greedy decisions are resolved with integer bit masks; the
block's kept boxes then suppress everything they hit at once. No Python loop runs over pairs:
the loops are over kept boxes in the sweep and in Soft-NMS (as OpenCV does), over blocks, and
over the members of a block that suppress another member.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workbench.geometry.boxes import PairGrid, PairOverlap, PairStrips, as_boxes, as_scores
from workbench.geometry.nms_trace import Decision, NmsTrace, greedy_trace, soft_trace

__all__ = ["Decision", "NmsTrace", "nms", "batched_nms", "diou_nms", "soft_nms", "nms_trace"]


# Candidate pairs examined per block: large enough to amortize numpy call overheads.
_PAIRS_PER_BLOCK = 32768
_FIRST_BLOCK = 32         # small: in clusters the first kept boxes remove most candidates
# The kept-box sweep runs from this many candidates, is judged after _SWEEP_TRIAL kept boxes,
# and hands over once kept boxes remove fewer than _SWEEP_GAIN candidates each on average (one
# round of the sweep costs about as much as the block method spends on that many boxes).
_SWEEP_MIN = 257
_SWEEP_TRIAL = 8
_SWEEP_GAIN = 24
_SWEEP_REST = 256       # hands the last few candidates to the block method

_EMPTY_I = np.zeros(0, np.int64)


def _check_threshold(value: float, name: str) -> float:
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return v


def _candidates(scores: np.ndarray, score_threshold: float, top_k: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(visit order, past top_k): scores strictly above the threshold, stable descending."""
    thr = np.float32(score_threshold)
    above = np.flatnonzero(scores > thr)
    order = above[_descending_stable(scores[above])]
    if top_k > 0 and order.size > top_k:
        return order[:top_k], order[top_k:]
    return order, _EMPTY_I


def _descending_stable(scores: np.ndarray) -> np.ndarray:
    """Indices sorting float32 ``scores`` high to low, ties in input order (OpenCV's
    std::stable_sort), via unique int64 keys: faster than numpy's stable float sort."""
    bits = (scores + np.float32(0)).view(np.int32).astype(np.int64)   # -0.0 becomes 0.0
    # Float bit patterns, mapped to integers in the order of the floats they encode.
    rank = np.where(bits < 0, -(bits & 0x7FFFFFFF) - 1, bits)
    shift = max(1, int(scores.size).bit_length())
    return np.argsort((-rank << shift) + np.arange(scores.size, dtype=np.int64))


def _greedy(boxes: Any, scores: Any, iou_threshold: float, score_threshold: float, top_k: int,
            class_ids: Any, criterion: str, method: str) -> NmsTrace:
    b = as_boxes(boxes, ordered=True)
    n = b.shape[0]
    s = as_scores(scores, n)
    thr = _check_threshold(iou_threshold, "iou_threshold")
    if thr < 0 and criterion == "opencv":
        # As OpenCV: an IoU is never negative, so a negative threshold is a mistake.
        raise ValueError(f"iou_threshold must be >= 0, got {iou_threshold}")
    sthr = _check_threshold(score_threshold, "score_threshold")
    top_k = int(top_k)
    groups = None
    if class_ids is not None:
        groups = _as_class_ids(class_ids, n)
    order, past = _candidates(s, sthr, top_k)
    geo = PairOverlap(b.take(order, axis=0), criterion)   # take: a fast row gather
    kept_pos, sup_pos, by_pos, ov = _resolve(geo, np.float32(thr),
                                             None if groups is None else groups[order])
    return greedy_trace(method, thr, sthr, top_k, s, order, past, kept_pos, sup_pos, by_pos,
                        ov)


def _as_class_ids(class_ids: Any, n: int) -> np.ndarray:
    arr = np.asarray(class_ids)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"class_ids: expected shape ({n},), got {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = arr.astype(np.float64)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            raise ValueError("class_ids: expected whole numbers")
    return arr.astype(np.int64)


def _resolve(geo: PairOverlap, thr: np.float32, groups: np.ndarray | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy NMS over boxes already in visiting order.

    Returns positions (in that order): kept, suppressed, the kept box responsible for each
    suppressed one, and the overlap between them.
    """
    n = geo.n
    alive = np.ones(n, bool)
    is_kept = np.zeros(n, bool)
    by_pos = np.full(n, -1, np.int64)
    ov_pos = np.full(n, np.nan)
    kept_parts: list[np.ndarray] = []
    start = 0
    if (n >= _SWEEP_MIN and groups is None and geo.criterion == "opencv"
            and 2e-6 <= thr < 1 and not geo.tiny.any()):
        # Empty boxes overlap wherever they are (no window holds them); at a threshold near
        # 0 every touching box is a candidate: both are left to the block method.
        swept, start = _sweep(geo, thr, alive, by_pos, ov_pos)
        kept_parts.append(swept)
        is_kept[swept] = True
    undecided = np.flatnonzero(alive)
    if undecided.size:
        kept_parts += _blocks(geo, thr, groups, undecided, start, alive, is_kept, by_pos, ov_pos)
    kept_pos = np.concatenate(kept_parts) if kept_parts else _EMPTY_I
    sup_pos = np.flatnonzero(by_pos >= 0)
    return kept_pos, sup_pos, by_pos[sup_pos], ov_pos[sup_pos]


def _blocks(geo: PairOverlap, thr: np.float32, groups: np.ndarray | None,
            undecided: np.ndarray, start: int, alive: np.ndarray, is_kept: np.ndarray,
            by_pos: np.ndarray, ov_pos: np.ndarray) -> list[np.ndarray]:
    """Greedy NMS of the ``undecided`` positions (all from ``start`` on), block by block.

    Updates ``alive``, ``is_kept``, ``by_pos``, ``ov_pos`` in place; returns the kept
    positions, one array per block.
    """
    n = geo.n
    first_by = np.full(n, n, np.int64)    # smallest kept source hitting each box so far
    finder = PairGrid(geo, float(thr), dense=undecided.size <= 256, groups=groups,
                      boxes=undecided)
    kept_parts: list[np.ndarray] = []
    block = _FIRST_BLOCK
    while True:
        rest = np.flatnonzero(alive[start:])
        if rest.size == 0:
            break
        members = rest[:block] + start
        start = int(members[-1]) + 1
        src, dst = finder.pairs(members, alive)
        pairs_len = src.size
        if groups is not None:
            same = groups[src] == groups[dst]
            src, dst = src[same], dst[same]
        ov = geo.fast_overlap(dst, src)
        # The plain arithmetic is within ~1e-7 of OpenCV's; pairs that close to the threshold
        # are decided by OpenCV's exact arithmetic.
        close = np.flatnonzero(np.abs(ov - thr) < 1e-6)
        if close.size:
            ov[close] = geo.overlap(dst[close], src[close])
        hit = ov > thr
        src, dst, ov = src[hit], dst[hit], ov[hit]
        kept = _kept_in_block(members, src, dst)
        is_kept[kept] = True
        from_kept = is_kept[src]
        src, dst, ov = src[from_kept], dst[from_kept], ov[from_kept]
        if dst.size:
            # Every hit from a kept box suppresses. OpenCV walks the kept list in order and
            # stops at the first hit, so the box responsible is the earliest kept one. Each
            # pair is listed once and suppressed boxes never come back, so one minimum per
            # box picks exactly one pair.
            np.minimum.at(first_by, dst, src)
            pick = first_by[dst] == src
            sup = dst[pick]
            by_pos[sup] = src[pick]
            ov_pos[sup] = ov[pick]
            alive[sup] = False
        kept_parts.append(kept)
        alive[members] = False
        # Size the next block for a bounded number of candidate pairs: large blocks for spread
        # boxes, small ones in clusters, where each kept box removes many before they are met.
        per_member = max(finder.enumerated, pairs_len) / members.size
        block = int(min(max(_PAIRS_PER_BLOCK / max(per_member, 1.0), 16), 4096))
        finder.refresh(alive, start)
    return kept_parts


def _sweep(geo: PairOverlap, thr: np.float32, alive: np.ndarray, by_pos: np.ndarray,
           ov_pos: np.ndarray) -> tuple[np.ndarray, int]:
    """Greedy NMS one kept box at a time, while each kept box removes many candidates.

    The next alive candidate is always kept; it is compared only with the candidates in its
    window (``PairStrips``, a slice: no gathers) and removes those it overlaps above ``thr``,
    so the first kept box responsible is the one recorded. This wins in clusters, where a few
    kept boxes remove nearly everything; once kept boxes remove few candidates each (spread
    boxes) the block method is cheaper and takes over. Needs ``2e-6 <= thr < 1`` and no empty
    boxes. Updates ``alive``, ``by_pos``, ``ov_pos`` in place; returns the kept positions and
    the first undecided position.
    """
    n = geo.n
    # Overlap > t_lo  <=>  inter > s * (area_a + area_b), s = t_lo / (1 + t_lo): two
    # operations per candidate instead of four. t_lo leaves room for rounding.
    t_lo = float(thr) - 1e-6
    s = t_lo / (1.0 + t_lo)
    strips = PairStrips(geo, float(thr), weight=s)
    area = geo.area
    rows = strips.columns.T
    # Per kept box: the corners as (2, 1) columns, to meet the (2, m) corner rows of a window.
    low = rows[:, :2, None]
    high = rows[:, 2:4, None]
    table, need, box_of, window = strips.table, strips.weight, strips.box_of, strips.window
    thr_hi = float(thr) + 1e-6
    kept: list[int] = []
    sup_parts: list[np.ndarray] = []
    ov_parts: list[np.ndarray] = []
    removed = 0
    p = 0
    while p < n:
        p += int(alive[p:].argmax())
        if not alive[p]:
            break
        kept.append(p)
        alive[p] = False
        lo, hi = window(p)
        # Intersection width and height in one pass over the (2, m) corner rows. One clamp
        # of both is needed as the product of two negatives would pass.
        wh = np.minimum(table[2:4, lo:hi], high[p])
        wh -= np.maximum(table[0:2, lo:hi], low[p])
        np.maximum(wh, 0.0, out=wh)
        inter = wh[0] * wh[1]
        ka = float(area[p])
        hit = (inter > need[lo:hi] + s * ka).nonzero()[0]
        if hit.size:
            pos = box_of[hit + lo]
            live = alive[pos]
            pos = pos[live]
            inter = inter[hit[live]]
            union = area[pos] + ka
            union -= inter
            ov = inter / union
            if ov.size and ov.min() < thr_hi:
                # The plain arithmetic is within ~1e-7 of OpenCV's; values that close to
                # the threshold are decided by OpenCV's exact arithmetic.
                close = np.flatnonzero(np.abs(ov - thr) < 1e-6)
                ov[close] = geo.overlap(np.full(close.size, p), pos[close])
                sure = ov > thr
                pos, ov = pos[sure], ov[sure]
            alive[pos] = False
            sup_parts.append(pos)
            ov_parts.append(ov)
            removed += pos.size
            by_pos[pos] = p
        p += 1
        rounds = len(kept)
        if n - rounds - removed <= _SWEEP_REST:
            # Few candidates left: the block method settles them in a few numpy passes.
            break
        if rounds >= _SWEEP_TRIAL and removed < _SWEEP_GAIN * rounds:
            # Kept boxes remove few candidates each: the block method costs less per box.
            break
    if sup_parts:
        ov_pos[np.concatenate(sup_parts)] = np.concatenate(ov_parts)
    return np.asarray(kept, np.int64), p if p < n and alive[p:].any() else n


def _kept_in_block(members: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Which block members survive the suppressions among themselves (greedy, in order)."""
    m = members.size
    first = int(members[0])
    last = int(members[-1])
    inside = (dst <= last) & (src <= last)
    if not inside.any():
        return members
    # Local index of each member; members are increasing positions.
    local = np.full(last - first + 1, -1, np.int64)
    local[members - first] = np.arange(m)
    ls, ld = local[src[inside] - first], local[dst[inside] - first]
    ld_ok = ld >= 0
    ls, ld = ls[ld_ok], ld[ld_ok]
    suppresses = np.bincount(ls, minlength=m) > 0
    rows = np.flatnonzero(suppresses)
    row_of = (np.cumsum(suppresses) - 1)[ls]
    bits = np.zeros((rows.size, m), bool)
    bits[row_of, ld] = True
    packed = np.packbits(bits, axis=1, bitorder="little")
    masks = [int.from_bytes(r.tobytes(), "little") for r in packed]
    removed = 0
    # A loop over the members that suppress something: at most the block size, never pairs.
    for r, mask in zip(rows.tolist(), masks, strict=True):
        if not (removed >> r) & 1:
            removed |= mask
    if removed == 0:
        return members
    gone = np.frombuffer(removed.to_bytes((m + 7) // 8, "little"), np.uint8)
    gone = np.unpackbits(gone, bitorder="little")[:m].astype(bool)
    return members[~gone]


def nms(boxes_xyxy: Any, scores: Any, iou_threshold: float, score_threshold: float = 0.0,
        top_k: int = 0, *, return_trace: bool = False) -> Any:
    """Greedy NMS, identical to ``cv2.dnn.NMSBoxes`` (which takes x, y, w, h).

    Returns the kept indices (int64), highest score first; with ``return_trace=True`` an
    NmsTrace whose ``.kept`` is that array.
    """
    trace = _greedy(boxes_xyxy, scores, iou_threshold, score_threshold, top_k, None,
                    "opencv", "greedy")
    return trace if return_trace else trace.kept


def batched_nms(boxes_xyxy: Any, scores: Any, class_ids: Any, iou_threshold: float,
                score_threshold: float = 0.0, top_k: int = 0, *,
                return_trace: bool = False) -> Any:
    """Class-aware greedy NMS: boxes of different classes never suppress each other.

    Like ``cv2.dnn.NMSBoxesBatched``: ``top_k`` applies to all candidates together and the
    result is in descending score order over all classes.
    """
    trace = _greedy(boxes_xyxy, scores, iou_threshold, score_threshold, top_k, class_ids,
                    "opencv", "batched")
    return trace if return_trace else trace.kept


def diou_nms(boxes_xyxy: Any, scores: Any, iou_threshold: float, score_threshold: float = 0.0,
             top_k: int = 0, *, class_ids: Any = None, return_trace: bool = False) -> Any:
    """DIoU-NMS (Zheng et al. 2020): suppress when IoU - d^2 / c^2 > ``iou_threshold``.

    d is the distance between box centres and c the diagonal of their enclosing box, so
    overlapping boxes with distant centres (two neighbouring objects) are both kept.
    """
    trace = _greedy(boxes_xyxy, scores, iou_threshold, score_threshold, top_k, class_ids,
                    "diou", "diou")
    return trace if return_trace else trace.kept


def soft_nms(boxes_xyxy: Any, scores: Any, iou_threshold: float = 0.3,
             score_threshold: float = 0.001, top_k: int = 0, *, method: str = "linear",
             sigma: float = 0.5, return_trace: bool = False) -> Any:
    """Soft-NMS (Bodla et al. 2017) with ``cv2.dnn.softNMSBoxes`` semantics.

    ``method="linear"``: ``s *= 1 - IoU`` when IoU > ``iou_threshold``;
    ``method="gaussian"``: ``s *= exp(-IoU^2 / sigma)`` for every remaining box.
    Returns ``(kept indices, their updated scores)``, best first, or an NmsTrace.
    """
    if method not in ("linear", "gaussian"):
        raise ValueError(f"method must be 'linear' or 'gaussian', got {method!r}")
    b = as_boxes(boxes_xyxy, ordered=True)
    n = b.shape[0]
    cur = as_scores(scores, n).copy()
    original = cur.copy()
    thr = _check_threshold(iou_threshold, "iou_threshold")
    if thr < 0:
        raise ValueError(f"iou_threshold must be >= 0, got {iou_threshold}")
    sthr = _check_threshold(score_threshold, "score_threshold")
    sig = _check_threshold(sigma, "sigma")
    if method == "gaussian" and sig <= 0:
        raise ValueError(f"sigma must be > 0 for Gaussian Soft-NMS, got {sigma}")
    top_k = int(top_k)
    limit = n if top_k <= 0 else min(top_k, n)
    geo = PairOverlap(b, "opencv")
    thr32, sthr32, sig32 = np.float32(thr), np.float32(sthr), np.float32(sig)
    active = np.flatnonzero(cur >= sthr32)     # ascending index: argmax ties -> lowest index
    kept: list[int] = []
    events: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = []
    # One iteration per kept box; the work inside is numpy over the remaining boxes.
    while len(kept) < limit and active.size:
        j = int(np.argmax(cur[active]))
        i = int(active[j])
        kept.append(i)
        active = np.concatenate([active[:j], active[j + 1:]])
        if active.size == 0:
            break
        ov = geo.overlap(np.full(active.size, i), active)
        if method == "linear":
            decayed = ov > thr32
            factor = np.float32(1) - ov[decayed]
        else:
            # exp(0) = 1: boxes that do not touch keep their score, so only touching ones
            # are decayed (and traced).
            decayed = ov > 0
            factor = np.exp(-(ov[decayed] * ov[decayed]) / sig32).astype(np.float32)
        targets = active[decayed]
        if targets.size:
            cur[targets] *= factor
            events.append((targets, i, ov[decayed], factor))
        active = active[cur[active] >= sthr32]
    kept_arr = np.asarray(kept, np.int64)
    if not return_trace:
        return kept_arr, cur[kept_arr]
    return soft_trace(method, thr, sthr, top_k, original, cur, kept_arr, events, sthr32)


def nms_trace(boxes_xyxy: Any, scores: Any, iou_threshold: float, score_threshold: float = 0.0,
              top_k: int = 0, *, method: str = "greedy", class_ids: Any = None,
              sigma: float = 0.5) -> NmsTrace:
    """The full decision trace of one NMS run.

    ``method``: "greedy" (``nms``, or ``batched_nms`` when ``class_ids`` is given), "diou",
    "soft-linear" or "soft-gaussian".
    """
    if method == "greedy":
        if class_ids is not None:
            return batched_nms(boxes_xyxy, scores, class_ids, iou_threshold, score_threshold,
                               top_k, return_trace=True)
        return nms(boxes_xyxy, scores, iou_threshold, score_threshold, top_k, return_trace=True)
    if method == "diou":
        return diou_nms(boxes_xyxy, scores, iou_threshold, score_threshold, top_k,
                        class_ids=class_ids, return_trace=True)
    if method in ("soft-linear", "soft-gaussian"):
        if class_ids is not None:
            raise ValueError("Soft-NMS here is class-agnostic; run it per class")
        return soft_nms(boxes_xyxy, scores, iou_threshold, score_threshold, top_k,
                        method=method[5:], sigma=sigma, return_trace=True)
    raise ValueError(f"unknown NMS method {method!r}: greedy, diou, soft-linear, soft-gaussian")
