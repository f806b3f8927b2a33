"""Evaluation speed: workbench.evaluation.evaluate (metric="coco") against pycocotools' COCOeval.

    python3 bench/bench_eval.py [--images 5000] [--dets 100] [--classes 80] [--rounds 2]

A COCO-like synthetic set (about 7 objects per image, ``--dets`` detections per image, most
near an object, some with the wrong class, some stray) is evaluated by both, alternating
A B A B after a warm-up pass on a small part. Both start from data already in memory (our
GroundTruth/Predictions dicts, pycocotools' COCO objects with the results loaded); timed is
COCOeval evaluate() + accumulate() + summarize() against one evaluate() call. The twelve
summary numbers must agree within 1e-4. Prints the medians and the speed-up.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.coco_reference import to_coco  # noqa: E402 - after the path
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate  # noqa: E402


def make_data(images: int, dets: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for i in range(images):
        n = int(rng.poisson(7))
        corner = rng.uniform(0, 560, (n, 2))
        size = np.exp(rng.uniform(np.log(6), np.log(300), (n, 2)))
        boxes = np.c_[corner, corner + size]
        labels = rng.integers(0, classes, n)
        gt[f"{i:06d}.jpg"] = GroundTruth(boxes, labels, crowd=rng.random(n) < 0.01)
        corner = rng.uniform(0, 560, (dets, 2))
        p_boxes = np.c_[corner, corner + np.exp(rng.uniform(np.log(6), np.log(300), (dets, 2)))]
        p_labels = rng.integers(0, classes, dets)
        if n:
            near = rng.random(dets) < 0.6
            source = rng.integers(0, n, dets)
            jitter = boxes[source] + rng.normal(0, 0.1, (dets, 4)) * size[source].repeat(2, 1)
            p_boxes[near] = jitter[near]
            p_labels[near] = np.where(rng.random(near.sum()) < 0.8, labels[source][near],
                                      p_labels[near])
        p_boxes[:, 2:] = np.maximum(p_boxes[:, 2:], p_boxes[:, :2])
        pred[f"{i:06d}.jpg"] = Predictions(p_boxes, rng.random(dets), p_labels)
    return gt, pred


def run_pycocotools(coco_gt, coco_dt) -> tuple[float, np.ndarray]:
    from pycocotools.cocoeval import COCOeval

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        e = COCOeval(coco_gt, coco_dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return time.perf_counter() - start, np.asarray(e.stats)


def run_ours(gt, pred, classes) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = evaluate(gt, pred, classes, metric="coco")
    return time.perf_counter() - start, result.coco_stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    gt, pred = make_data(args.images, args.dets, args.classes)
    coco_gt, coco_dt = to_coco(gt, pred, args.classes)
    n_gt = sum(len(g) for g in gt.values())
    print(f"{args.images} images, {n_gt} ground-truth boxes, {args.images * args.dets} "
          f"detections, {args.classes} classes")

    # warm-up: a small part through both, so first-touch costs do not land on one side
    part = dict(list(gt.items())[: max(1, args.images // 20)])
    small_gt, small_dt = to_coco(part, {k: pred[k] for k in part}, args.classes)
    run_pycocotools(small_gt, small_dt)
    run_ours(part, {k: pred[k] for k in part}, args.classes)

    ours, reference = [], []
    for r in range(args.rounds):
        t_ours, stats_ours = run_ours(gt, pred, args.classes)
        t_ref, stats_ref = run_pycocotools(coco_gt, coco_dt)
        ours.append(t_ours)
        reference.append(t_ref)
        diff = float(np.abs(stats_ours - stats_ref).max())
        print(f"round {r + 1}: workbench {t_ours:.2f} s  pycocotools {t_ref:.2f} s  "
              f"max |stats difference| {diff:.2e}")
        if diff > 1e-4:
            print("FAIL: the numbers differ from pycocotools", file=sys.stderr)
            return 1
    print(f"AP {stats_ours[0]:.4f}  AP50 {stats_ours[1]:.4f}  AP75 {stats_ours[2]:.4f} "
          "(equal to pycocotools within 1e-4, all twelve stats)")
    t_ours, t_ref = statistics.median(ours), statistics.median(reference)
    print(f"median: workbench {t_ours:.2f} s, pycocotools {t_ref:.2f} s, "
          f"speed-up {t_ref / t_ours:.1f}x (target >= 5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
