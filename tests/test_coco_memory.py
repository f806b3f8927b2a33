"""Converting a COCO file takes memory in proportion to the file, a few times its size (issue 21).

A COCO instances file is mostly segmentation polygons, which the reader never uses; held as
Python numbers they take 5-8x their text, and a 200 MB file peaked near 10 GB. The file and
the child's peak come from bench/bench_coco_memory.py, the bench that measures the same
thing at 200 MB.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_coco_memory.py"
SIZE = 25_000_000
# the COCO file's part of the peak, in file sizes: ~2 now (the bytes read and their text),
# ~8 while every polygon was parsed and kept (the bytes, the text and the whole document)
LIMIT = 5.0

pytestmark = [pytest.mark.slow,  # about 15 s on a busy 2-core machine
              pytest.mark.skipif(sys.platform == "win32", reason="resource is POSIX only")]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_coco_memory", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_coco_convert_peak_memory_is_a_few_times_the_file(tmp_path):
    bench = _bench()
    # integer outlines, as in files converted from masks: the most numbers per byte
    coco, small, images = bench.make_data(tmp_path / "data", SIZE, coords="int")
    # the same convert on a small file of the same images: the interpreter, its imports and
    # the folder, so that what is left is the COCO file's own part
    baseline, _ = bench.peak_rss(bench.convert_argv(small, images, "yolo", tmp_path / "a"),
                                 timeout=120)
    peak, _ = bench.peak_rss(bench.convert_argv(coco, images, "yolo", tmp_path / "b"),
                             timeout=120)
    size = coco.stat().st_size
    ratio = (peak - baseline) / size
    assert ratio < LIMIT, (f"converting a {size / 1e6:.0f} MB COCO file peaked at "
                           f"{peak / 1e6:.0f} MB, {ratio:.1f}x the file above the "
                           f"{baseline / 1e6:.0f} MB baseline")
    # the conversion itself happened: one label file per listed image
    assert sum(1 for _ in (tmp_path / "b").glob("*.txt")) >= len(list(images.iterdir()))
