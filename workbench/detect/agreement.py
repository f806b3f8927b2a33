"""How far two engines' detections agree: the figure behind "bf16 keeps the detections".

A detection of run A is matched when run B has one of the same class with IoU >= ``iou`` and a
score within ``score_tol`` (greedy, highest score first, each B detection used once). Used by the
precision tests, ``bench/bench_precision.py`` and the table in docs/engines.md.
"""

from __future__ import annotations

import numpy as np

from workbench.geometry.boxes import iou_matrix


def matched_detections(reference, other, iou: float = 0.9, score_tol: float = 0.05) -> int:
    """Detections of ``reference`` (Detections/Candidates) that ``other`` reproduces."""
    if len(reference) == 0 or len(other) == 0:
        return 0
    overlap = iou_matrix(np.asarray(reference.boxes), np.asarray(other.boxes))
    same = (np.asarray(reference.class_ids)[:, None] == np.asarray(other.class_ids)[None, :])
    close = np.abs(np.asarray(reference.scores)[:, None]
                   - np.asarray(other.scores)[None, :]) <= score_tol
    ok = (overlap >= iou) & same & close
    used = np.zeros(len(other), bool)
    found = 0
    for i in np.argsort(-np.asarray(reference.scores), kind="stable"):
        candidates = np.flatnonzero(ok[i] & ~used)
        if candidates.size:
            used[candidates[np.argmax(overlap[i, candidates])]] = True
            found += 1
    return found
