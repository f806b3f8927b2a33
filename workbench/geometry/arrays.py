"""Checked numpy inputs for the box geometry: boxes as (N, 4) float64, scores as (n,) float32,
each refused with a one-line ValueError; and the division the overlaps share (0 / 0 -> 0).
``workbench.geometry.boxes`` offers these names too (the module to import from).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_boxes(boxes: Any, name: str = "boxes", *, ordered: bool = False) -> np.ndarray:
    """Return ``boxes`` as a contiguous float64 (N, 4) array, or raise a one-line ValueError.

    ``ordered=True`` also requires x2 >= x1 and y2 >= y1 (xyxy boxes).
    """
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not an array of numbers ({exc})") from None
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 4:
        raise ValueError(f"{name}: expected shape (N, 4), got a single box of shape (4,); "
                         "use boxes[None] for one box")
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{name}: expected shape (N, 4), got {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.nonzero(bad.any(axis=1))[0][0])
        raise ValueError(f"{name}: row {row} has a NaN or infinite coordinate: {arr[row].tolist()}")
    if ordered:
        flipped = (arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1])
        if flipped.any():
            row = int(np.nonzero(flipped)[0][0])
            raise ValueError(f"{name}: row {row} is not x1 <= x2, y1 <= y2: {arr[row].tolist()}")
    return np.ascontiguousarray(arr)


def as_scores(scores: Any, n: int, name: str = "scores") -> np.ndarray:
    """Return ``scores`` as a float32 (n,) array (the precision OpenCV compares in)."""
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: not an array of numbers ({exc})") from None
    if arr.ndim != 1 and not (arr.size == 0 and n == 0):
        raise ValueError(f"{name}: expected shape ({n},), got {arr.shape}")
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{name}: {arr.shape[0]} values for {n} boxes")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        raise ValueError(f"{name}: value {i} is NaN or infinite ({arr[i]})")
    return arr.astype(np.float32)


def safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 0 / 0 (two empty boxes, or an empty enclosing box) counts as 0, as pycocotools does.
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out
