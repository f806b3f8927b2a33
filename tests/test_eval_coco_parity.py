"""COCO numbers equal pycocotools' COCOeval, run side by side on generated datasets."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate

pytest.importorskip("pycocotools")
from coco_reference import to_coco  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def make_dataset(seed: int, images: int = 40, classes: int = 9, max_gt: int = 9,
                 max_pred: int = 40, crowd_share: float = 0.08):
    """Random ground truth with near-miss predictions: many classes, empty images, images
    without predictions, crowd boxes, boxes of every COCO area range, duplicates."""
    rng = np.random.default_rng(seed)
    gt: dict[str, GroundTruth] = {}
    pred: dict[str, Predictions] = {}
    for i in range(images):
        n_gt = 0 if rng.random() < 0.15 else int(rng.integers(1, max_gt + 1))
        corner = rng.uniform(0, 500, (n_gt, 2))
        size = np.exp(rng.uniform(np.log(4), np.log(250), (n_gt, 2)))  # small to large
        gt_boxes = np.c_[corner, corner + size]
        gt_class = rng.integers(0, classes, n_gt)
        gt[f"img{i:03d}.jpg"] = GroundTruth(gt_boxes, gt_class,
                                            crowd=rng.random(n_gt) < crowd_share)
        if rng.random() < 0.15:
            continue  # an image without predictions
        n = int(rng.integers(0, max_pred + 1))
        corner = rng.uniform(0, 500, (n, 2))
        boxes = np.c_[corner, corner + np.exp(rng.uniform(np.log(4), np.log(250), (n, 2)))]
        classes_of = rng.integers(0, classes, n)
        if n_gt:
            source = rng.integers(0, n_gt, n)
            near = rng.random(n) < 0.75
            jitter = gt_boxes[source] + rng.normal(0, 1, (n, 4)) * size[source].repeat(2, 1) * 0.08
            boxes[near] = jitter[near]
            right = near & (rng.random(n) < 0.85)
            classes_of[right] = gt_class[source][right]
        boxes[:, 2] = np.maximum(boxes[:, 2], boxes[:, 0])
        boxes[:, 3] = np.maximum(boxes[:, 3], boxes[:, 1])
        pred[f"img{i:03d}.jpg"] = Predictions(boxes, rng.random(n), classes_of)
    return gt, pred, classes


def pycocotools_stats(gt, pred, classes) -> np.ndarray:
    """COCOeval's stats for the same data; image ids follow the gt dict order."""
    coco_gt, coco_dt = to_coco(gt, pred, classes, image_size=800)
    with contextlib.redirect_stdout(io.StringIO()):
        e = COCOeval(coco_gt, coco_dt, "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    return np.asarray(e.stats)


@pytest.mark.parametrize("seed", range(12))
def test_coco_map_equals_pycocotools(seed):
    gt, pred, classes = make_dataset(seed)
    reference = pycocotools_stats(gt, pred, classes)
    result = evaluate(gt, pred, classes, metric="coco")
    ours = np.array([result.map50_95, result.map50, result.map75])
    np.testing.assert_allclose(ours, reference[:3], atol=1e-4)
    # the whole summary, area ranges and maxDets 1/10/100 included
    np.testing.assert_allclose(result.coco_stats, reference, atol=1e-4)
    assert result.map == result.map50_95


def test_coco_parity_with_many_predictions_per_class_cuts_at_100():
    gt, pred, classes = make_dataset(99, images=8, classes=2, max_gt=12, max_pred=260)
    assert max(np.bincount(p.class_ids).max() for p in pred.values() if len(p)) > 100
    np.testing.assert_allclose(evaluate(gt, pred, classes, metric="coco").coco_stats,
                               pycocotools_stats(gt, pred, classes), atol=1e-4)


def test_coco_parity_with_tied_scores_and_duplicate_boxes():
    gt, pred, classes = make_dataset(7, images=30, classes=4)
    tied = {}
    for name, p in pred.items():
        boxes = np.r_[p.boxes, p.boxes[: len(p) // 3]]  # exact duplicates
        scores = np.round(np.r_[p.scores, p.scores[: len(p) // 3]], 1)  # many ties
        tied[name] = Predictions(boxes, scores, np.r_[p.class_ids, p.class_ids[: len(p) // 3]])
    np.testing.assert_allclose(evaluate(gt, tied, classes, metric="coco").coco_stats,
                               pycocotools_stats(gt, tied, classes), atol=1e-4)


def test_coco_parity_with_integer_boxes_and_exact_iou_ties():
    # integer boxes give exact IoU values such as 0.5 and 0.75, right on the thresholds
    rng = np.random.default_rng(3)
    gt, pred = {}, {}
    for i in range(30):
        n = int(rng.integers(0, 6))
        xy = rng.integers(0, 200, (n, 2))
        wh = rng.choice([8, 10, 16, 20, 40, 100], (n, 2))
        boxes = np.c_[xy, xy + wh]
        gt[f"{i}"] = GroundTruth(boxes, rng.integers(0, 3, n))
        m = int(rng.integers(0, 12))
        if n:
            src = rng.integers(0, n, m)
            dx, dy, grow = (rng.choice([0, 2, 4, 5, 10], m) for _ in range(3))
            p_boxes = boxes[src] + np.c_[dx, dy, dx + grow, dy]
            pred[f"{i}"] = Predictions(p_boxes, rng.integers(1, 5, m) / 4.0,
                                       gt[f"{i}"].class_ids[src])
    np.testing.assert_allclose(evaluate(gt, pred, 3, metric="coco").coco_stats,
                               pycocotools_stats(gt, pred, 3), atol=1e-4)
