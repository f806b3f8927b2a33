"""Multi-scale training: the input size changes every few batches (YOLOv2's recipe, darknet's
``random=1``), so the model sees its objects at more than one scale.

Pure NumPy and a function of its arguments: a resumed run gets the same sizes.
"""

from __future__ import annotations

import numpy as np

#: sizes stay multiples of the largest stride of the YOLO family
STRIDE = 32


def size_choices(width: int, height: int, spread: float) -> list[tuple[int, int]]:
    """The (width, height) pairs within ``+-spread`` of the network size: the longer side a
    multiple of 32 inside the range, the shorter one following the aspect ratio (rounded to a
    multiple of 32). With ``spread`` 0 only the network size."""
    if spread <= 0:
        return [(width, height)]
    longer, shorter = max(width, height), min(width, height)
    low = max(STRIDE, -(-int(longer * (1 - spread)) // STRIDE) * STRIDE)
    high = max(low, int(longer * (1 + spread)) // STRIDE * STRIDE)
    out = []
    for side in range(low, high + 1, STRIDE):
        other = max(STRIDE, int(round(shorter * side / longer / STRIDE)) * STRIDE)
        out.append((side, other) if width >= height else (other, side))
    return out


def batch_sizes(batches: int, width: int, height: int, spread: float, *, seed: int,
                epoch: int, every: int = 10) -> np.ndarray:
    """(batches, 2) int: the input size of each batch of the epoch, drawn from
    :func:`size_choices` once per ``every`` batches; the epoch's last group ends at the
    network size's neighbourhood too (no special case)."""
    choices = np.asarray(size_choices(width, height, spread), np.int64)
    groups = -(-batches // max(1, every))
    picks = np.random.default_rng([seed, epoch, 2]).integers(0, len(choices), groups)
    return np.repeat(choices[picks], max(1, every), axis=0)[:batches]
