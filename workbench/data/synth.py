"""The synthetic shapes dataset: deterministic images with exact boxes, for tests, benchmarks,
the demo and training (no data set can be downloaded here).

Each image has a cluttered background (smooth colour gradients, noise, thin random lines,
which are never one of the classes) and 1-6 filled shapes of four classes in random colours,
sizes and positions; shapes may overlap a little but never hide one another.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from workbench.errors import WorkbenchError
from workbench.formats.yolo import write_classes, write_yolo
from workbench.labels.dataset import Box
from workbench.storage.atomic import atomic_write_text

CLASS_NAMES = ["circle", "square", "triangle", "star"]
# at most this share of the smaller of two boxes may be covered, so no shape hides another
MAX_COVERED = 0.25


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2  # lazy: OpenCV takes a while to import; only drawing needs it

    corners = rng.integers(0, 256, (2, 2, 3)).astype(np.float32)
    image: np.ndarray = cv2.resize(corners, (size, size), interpolation=cv2.INTER_LINEAR)
    small = rng.normal(0, 25, (size // 16 + 1, size // 16 + 1, 3)).astype(np.float32)
    image += cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 8, (size, size, 3)).astype(np.float32)
    image = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 12))):
        p1 = tuple(int(v) for v in rng.integers(0, size, 2))
        p2 = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.line(image, p1, p2, colour, int(rng.integers(1, 3)), cv2.LINE_AA)
    return image


def _shape_points(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    if kind == "square":
        a = np.arange(4) * math.pi / 2 + math.pi / 4
        return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)
    if kind == "triangle":
        a = np.arange(3) * 2 * math.pi / 3 + angle
        return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], 1)
    # star: five outer points, five inner ones
    a = np.arange(10) * math.pi / 5 + angle
    radius = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
    return np.stack([cx + radius * np.cos(a), cy + radius * np.sin(a)], 1)


def _covered(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over the smaller box's area."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller if smaller > 0 else 0.0


def draw_image(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[tuple]]:
    """One BGR image and its objects as (class_id, x1, y1, x2, y2) in float pixels."""
    import cv2  # lazy: OpenCV takes a while to import; only drawing needs it

    image = _background(rng, size)
    objects: list[tuple] = []
    for _ in range(int(rng.integers(1, 7))):
        for _attempt in range(20):
            kind = int(rng.integers(0, len(CLASS_NAMES)))
            r = float(rng.uniform(0.05, 0.2)) * size
            cx, cy = (float(v) for v in rng.uniform(r, size - r, 2))
            angle = float(rng.uniform(0, 2 * math.pi))
            if CLASS_NAMES[kind] == "circle":
                box = (cx - r, cy - r, cx + r, cy + r)
                points = None
            else:
                points = _shape_points(CLASS_NAMES[kind], cx, cy, r, angle)
                box = (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max())
            if all(_covered(box, o[1:]) <= MAX_COVERED for o in objects):
                break
        else:
            continue
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        # keep the shape visible against the local background
        if np.abs(np.array(colour) - image[int(cy), int(cx)].astype(int)).sum() < 120:
            colour = tuple(255 - c for c in colour)
        if points is None:
            cv2.circle(image, (round(cx * 16), round(cy * 16)), round(r * 16), colour, -1,
                       cv2.LINE_AA, shift=4)
        else:
            cv2.fillPoly(image, [np.round(points * 16).astype(np.int32)], colour, cv2.LINE_AA,
                         shift=4)
        objects.append((kind, *(float(v) for v in box)))
    return image, objects


def make_demo_dataset(out: str | Path, images: int = 200, seed: int = 0, size: int = 416,
                      valid_fraction: float = 0.2,
                      progress: Callable[[int, int], None] | None = None) -> Path:
    """Write a deterministic synthetic dataset in YOLO format into ``out``.

    ``out`` gets ``img_00000.jpg`` + ``img_00000.txt`` ..., ``classes.txt``, ``train.txt`` and
    ``valid.txt`` (image file names relative to ``out``). Returns ``out``.
    """
    import cv2  # lazy: OpenCV takes a while to import; only drawing needs it

    if images < 1:
        raise ValueError("images must be at least 1")
    if not 0.0 <= valid_fraction < 1.0:
        raise ValueError("valid fraction must be in [0, 1)")
    if size < 32:
        raise ValueError("size must be at least 32 pixels")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(images):
        image, objects = draw_image(rng, size)
        name = f"img_{i:05d}.jpg"
        if not cv2.imwrite(str(out / name), image, [cv2.IMWRITE_JPEG_QUALITY, 92]):
            raise OSError(f"{out / name}: cannot write image")
        boxes = [Box(x1, y1, x2, y2, k) for k, x1, y1, x2, y2 in objects]
        write_yolo(out / f"img_{i:05d}.txt", boxes, size, size)
        names.append(name)
        if progress:
            progress(i + 1, images)
    write_classes(out / "classes.txt", CLASS_NAMES)
    order = np.random.default_rng(seed + 1).permutation(images)
    n_valid = int(round(images * valid_fraction))
    valid = sorted(names[j] for j in order[:n_valid])
    train = sorted(names[j] for j in order[n_valid:])
    atomic_write_text(out / "train.txt", "".join(f"{n}\n" for n in train))
    atomic_write_text(out / "valid.txt", "".join(f"{n}\n" for n in valid))
    return out



def write_demo_dataset(out: str | Path, images: int = 200, seed: int = 0, size: int = 416,
                       valid_fraction: float = 0.2, *, force: bool = False,
                       progress: Callable[[int, int], None] | None = None) -> Path:
    """``workbench demo-data``: :func:`make_demo_dataset` into a new or empty folder (any
    folder with ``force``). WorkbenchError for an ``out`` that is a file or a non-empty
    folder, a bad parameter, or an OS error while writing."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise WorkbenchError(f"{folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        # it would replace a user's classes.txt, train.txt and same-named labels
        raise WorkbenchError(f"{folder}: already exists and is not an empty folder "
                             "(choose a new folder, or add --force to write into it)")
    try:
        return make_demo_dataset(out, images=images, seed=seed, size=size,
                                 valid_fraction=valid_fraction, progress=progress)
    except (ValueError, OSError) as exc:
        raise WorkbenchError(str(exc)) from None
