"""Open a dataset of 10,000 images with their label files: sizes from headers, no pixel decoding.

Reference, same run: decoding every image with PIL (what a naive loader does to learn sizes).
Usage: python3 bench/bench_open_folder.py [--images 10000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from workbench.data.folder import open_dataset
from workbench.data.images import list_images

OUT = Path(__file__).resolve().parent / "out" / "open_folder"


def make_folder(n: int) -> Path:
    folder = OUT / f"{n}"
    if len(list(folder.glob("*.jpg"))) == n:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "classes.txt").write_text("a\nb\nc\n")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    ok, jpeg = cv2.imencode(".jpg", base)
    for i in range(n):
        (folder / f"{i:05d}.jpg").write_bytes(jpeg.tobytes())
        lines = "".join(f"{rng.integers(0, 3)} 0.5 0.5 0.2 0.3\n" for _ in range(3))
        (folder / f"{i:05d}.txt").write_text(lines)
    return folder


def decode_all(folder: Path) -> int:
    count = 0
    for path in list_images(folder):
        with Image.open(path) as img:
            img.load()
            count += img.size[0] > 0
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    folder = make_folder(args.images)
    open_dataset(folder)  # warm-up: first touch of the files
    decode_all(folder)
    ours, ref = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        ds = open_dataset(folder)
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        decode_all(folder)
        ref.append(time.perf_counter() - t)
    assert len(ds.images) == args.images and all(r.width == 640 for r in ds.images)
    o, r = statistics.median(ours), statistics.median(ref)
    print(f"open_dataset, {args.images} images + label files: {o:.3f} s "
          f"({o / args.images * 1e6:.0f} us/image)")
    print(f"reference, decode every image with PIL:          {r:.3f} s")
    print(f"ratio: open_dataset is {r / o:.1f}x faster than decoding")


if __name__ == "__main__":
    main()
