"""The check that an image decodes in full (stats --decode, training's start-up): full decode
vs JPEG draft (1/8 scale), as workbench.data.images.check_decodable does.

Both must refuse a truncated JPEG (checked first); then each pass over the folder is timed,
alternating full, draft, full, draft..., and the medians compared.
Usage: python3 bench/bench_decode_check.py [FOLDER] [--rounds 5]
(default FOLDER: /work/shared/datasets/bccd/JPEGImages, 364 JPEGs of 640x480)
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from PIL import Image


def full(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        img.load()


def draft(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", (max(img.width // 8, 1), max(img.height // 8, 1)))
        img.load()


def refuses_truncated(check, data: bytes) -> bool:
    try:
        check(data[:-300])
    except OSError:
        return True
    return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", default="/work/shared/datasets/bccd/JPEGImages")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    files = [p.read_bytes() for p in sorted(Path(args.folder).glob("*.jp*g"))]
    assert files, f"no JPEGs in {args.folder}"
    assert all(refuses_truncated(c, files[0]) for c in (full, draft))
    times: dict[str, list[float]] = {"full": [], "draft": []}
    for _ in range(args.rounds):
        for name, check in (("full", full), ("draft", draft)):
            start = time.perf_counter()
            for data in files:
                check(data)
            times[name].append((time.perf_counter() - start) / len(files) * 1000)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(files)} JPEGs, {args.rounds} rounds, median ms/image: full {med['full']:.2f}, "
          f"draft {med['draft']:.2f}; draft is {med['full'] / med['draft']:.1f}x faster; "
          "both refuse a truncated JPEG")


if __name__ == "__main__":
    main()
