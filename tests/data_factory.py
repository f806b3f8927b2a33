"""Generated test inputs beside ``model_factory.py``'s models: random boxes and a demo video.

Each helper draws from the generator it is given, in a fixed order, so a test's seed keeps
giving it the same data.
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np

from workbench.data.images import list_images, load_bgr
from workbench.data.synth import make_demo_dataset


def random_xyxy(rng: random.Random, width: float, height: float
                ) -> tuple[float, float, float, float]:
    """One box anywhere in a ``width`` x ``height`` image (x1, y1, x2, y2; may be empty)."""
    x1, x2 = sorted(rng.uniform(0, width) for _ in range(2))
    y1, y2 = sorted(rng.uniform(0, height) for _ in range(2))
    return x1, y1, x2, y2


def random_box_array(rng: np.random.Generator, n: int, span: float,
                     sides: tuple[float, float]) -> np.ndarray:
    """``n`` xyxy boxes: top-left corners uniform in [0, span), sides uniform in ``sides``."""
    xy = rng.uniform(0, span, (n, 2))
    return np.c_[xy, xy + rng.uniform(*sides, (n, 2))]


def write_demo_video(folder: Path, frames: int, seed: int = 2, size: int = 192) -> Path:
    """``folder/clip.avi``: ``frames`` demo images (written to ``folder/frames``) as an MJPG
    AVI at 10 fps, what every OpenCV wheel can write and read."""
    root = make_demo_dataset(folder / "frames", images=frames, seed=seed, size=size)
    path = folder / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (size, size))
    assert writer.isOpened()
    for p in list_images(root):
        writer.write(load_bgr(p))
    writer.release()
    return path
