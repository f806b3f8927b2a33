"""The decision trace of one NMS run (:func:`workbench.geometry.nms.nms_trace`): what
happened to every input box, and for each suppressed one the kept box responsible and their
overlap. The GUI's Inspect panel shows it; ``workbench.geometry.nms`` builds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

__all__ = ["Decision", "NmsTrace", "greedy_trace", "soft_trace"]


class Decision(IntEnum):
    """What NMS did with one input box."""

    KEPT = 0
    SUPPRESSED = 1      # removed (greedy) or decayed below the score threshold (soft)
    BELOW_SCORE = 2     # never a candidate: score not above the score threshold
    BEYOND_TOP_K = 3    # a candidate, but past top_k


_EMPTY_I = np.zeros(0, np.int64)
_EMPTY_F = np.zeros(0, np.float64)


@dataclass(frozen=True)
class NmsTrace:
    """Every NMS decision. Per-box arrays are indexed by the input box index.

    ``by[i]`` is the kept box responsible for suppressing box ``i`` (-1 if none) and
    ``overlap[i]`` the IoU (DIoU criterion for DIoU-NMS) between them at that moment.
    For Soft-NMS, ``decay_*`` list every decay in order: box, kept box, overlap, factor.
    """

    method: str
    iou_threshold: float
    score_threshold: float
    top_k: int
    order: np.ndarray        # candidates in the order they were visited
    kept: np.ndarray         # kept indices, highest score first (the NMS result)
    decision: np.ndarray     # (N,) int8 Decision codes
    by: np.ndarray           # (N,) int64
    overlap: np.ndarray      # (N,) float64, NaN where not suppressed
    scores: np.ndarray       # (N,) float32 final scores (decayed by Soft-NMS)
    decay_box: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    decay_by: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    decay_overlap: np.ndarray = field(default_factory=lambda: _EMPTY_F)
    decay_factor: np.ndarray = field(default_factory=lambda: _EMPTY_F)

    @property
    def kept_scores(self) -> np.ndarray:
        """Scores of the kept boxes, aligned with ``kept`` (Soft-NMS: the decayed score)."""
        return self.scores[self.kept]

    @property
    def suppressed(self) -> np.ndarray:
        """Suppressed box indices in the order they were visited."""
        in_order = self.decision[self.order] == Decision.SUPPRESSED
        return self.order[in_order]

    def explain(self, i: int) -> str:
        """One sentence saying what happened to box ``i`` and why."""
        d = Decision(int(self.decision[i]))
        score = float(self.scores[i])
        if d is Decision.BELOW_SCORE:
            return (f"box {i}: score {score:.4g} is not above the score threshold "
                    f"{self.score_threshold:.4g}")
        if d is Decision.BEYOND_TOP_K:
            return f"box {i}: past the top_k={self.top_k} best candidates"
        if d is Decision.KEPT:
            return f"box {i}: kept (score {score:.4g})"
        crit = "DIoU" if self.method == "diou" else "IoU"
        if self.method.startswith("soft"):
            return (f"box {i}: decayed to {score:.4g}, below the score threshold "
                    f"{self.score_threshold:.4g}, last by kept box {int(self.by[i])} "
                    f"({crit} {float(self.overlap[i]):.4f})")
        return (f"box {i}: suppressed by kept box {int(self.by[i])} "
                f"({crit} {float(self.overlap[i]):.4f} > {self.iou_threshold:.4g})")


def greedy_trace(method: str, thr: float, sthr: float, top_k: int, scores: np.ndarray,
                 order: np.ndarray, past: np.ndarray, kept_pos: np.ndarray,
                 sup_pos: np.ndarray, by_pos: np.ndarray, overlap_pos: np.ndarray) -> NmsTrace:
    """The trace of a greedy run: ``order`` the candidates visited, ``past`` those beyond
    top_k; ``kept_pos``, ``sup_pos`` positions in ``order``, ``by_pos`` (the kept box of
    each suppressed one, a position in ``order``) and ``overlap_pos`` aligned with
    ``sup_pos``."""
    n = scores.size
    decision = np.full(n, Decision.BELOW_SCORE, np.int8)
    decision[past] = Decision.BEYOND_TOP_K
    decision[order[kept_pos]] = Decision.KEPT
    decision[order[sup_pos]] = Decision.SUPPRESSED
    by = np.full(n, -1, np.int64)
    by[order[sup_pos]] = order[by_pos]
    overlap = np.full(n, np.nan)
    overlap[order[sup_pos]] = overlap_pos
    return NmsTrace(method, thr, sthr, top_k, order, order[kept_pos], decision, by, overlap,
                    scores)


def soft_trace(method: str, thr: float, sthr: float, top_k: int, original: np.ndarray,
               cur: np.ndarray, kept: np.ndarray, events: list, sthr32: np.float32) -> NmsTrace:
    """The trace of a Soft-NMS run: ``original`` and ``cur`` (decayed) scores, ``events``
    every decay in order as (boxes, kept box, overlaps, factors)."""
    n = original.size
    decision = np.full(n, Decision.BEYOND_TOP_K, np.int8)
    decision[original < sthr32] = Decision.BELOW_SCORE
    decision[(original >= sthr32) & (cur < sthr32)] = Decision.SUPPRESSED
    decision[kept] = Decision.KEPT
    by = np.full(n, -1, np.int64)
    overlap = np.full(n, np.nan)
    if events:
        box = np.concatenate([e[0] for e in events])
        src = np.concatenate([np.full(e[0].size, e[1], np.int64) for e in events])
        ov = np.concatenate([e[2] for e in events]).astype(np.float64)
        fac = np.concatenate([e[3] for e in events]).astype(np.float64)
        sup = decision[box] == Decision.SUPPRESSED
        # Later events overwrite earlier ones: the last decay is the one that crossed.
        by[box[sup]] = src[sup]
        overlap[box[sup]] = ov[sup]
    else:
        box, src, ov, fac = _EMPTY_I, _EMPTY_I, _EMPTY_F, _EMPTY_F
    visited = np.concatenate([kept, np.flatnonzero(decision == Decision.SUPPRESSED)])
    return NmsTrace(f"soft-{method}", thr, sthr, top_k, visited, kept, decision, by, overlap,
                    cur, box, src, ov, fac)
