"""Evaluation: matching rules, AP definitions, worked numbers, confusion matrix, bad input."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from data_factory import random_box_array

from workbench.evaluation.confusion import confusion_matrix
from workbench.evaluation.evaluate import GroundTruth, Predictions, average_precision, evaluate
from workbench.evaluation.matching import overlaps
from workbench.geometry.boxes import iou_matrix
from workbench.labels.dataset import Box

ODM = Path(__file__).parent / "data" / "odm_sample"


def one(gt_boxes, gt_classes, pred_boxes, scores, pred_classes, **gt_flags):
    """A single-image evaluation input."""
    return ({"a": GroundTruth(np.array(gt_boxes, float).reshape(-1, 4), gt_classes, **gt_flags)},
            {"a": Predictions(np.array(pred_boxes, float).reshape(-1, 4), scores, pred_classes)})


# ---------------------------------------------------------------- worked numbers

def odm_sample():
    """The Object-Detection-Metrics sample. Its boxes are `x y w h` in integer pixels whose
    last row/column is inside the box (its IoU adds 1 to widths), so the continuous box is
    [x, x + w + 1): converting here keeps the evaluator itself free of the +1 convention."""
    def boxes(rows):
        a = np.array(rows, dtype=float).reshape(-1, 4)
        return np.c_[a[:, :2], a[:, :2] + a[:, 2:] + 1]

    gt, pred = {}, {}
    for path in sorted((ODM / "groundtruths").glob("*.txt")):
        rows = [line.split()[1:] for line in path.read_text().splitlines() if line.strip()]
        gt[path.stem] = GroundTruth(boxes(rows), np.zeros(len(rows), int))
        det = (ODM / "detections" / path.name).read_text().splitlines()
        rows = [line.split()[1:] for line in det if line.strip()]
        pred[path.stem] = Predictions(boxes([r[1:] for r in rows]), [float(r[0]) for r in rows],
                                      np.zeros(len(rows), int))
    return gt, pred


def test_odm_sample_all_point_and_11_point_ap():
    gt, pred = odm_sample()
    assert sum(map(len, gt.values())) == 15 and sum(map(len, pred.values())) == 24
    all_point = evaluate(gt, pred, 1, iou_threshold=0.3, metric="voc")
    eleven = evaluate(gt, pred, 1, iou_threshold=0.3, metric="voc07")
    assert all_point.map * 100 == pytest.approx(24.57, abs=0.005)
    assert eleven.map * 100 == pytest.approx(26.84, abs=0.005)
    # the sample's table: 7 TP and 17 FP over all 24 detections
    assert sum(r.tp for r in all_point.per_image.values()) == 7
    assert sum(r.fp for r in all_point.per_image.values()) == 17
    assert sum(r.fn for r in all_point.per_image.values()) == 8


def test_average_precision_definitions_by_hand():
    # 4 ground truths; predictions in score order: TP FP TP FP
    recall = np.array([0.25, 0.25, 0.5, 0.5])
    precision = np.array([1.0, 0.5, 2 / 3, 0.5])
    assert average_precision(recall, precision, "voc") == pytest.approx(0.25 * 1 + 0.25 * 2 / 3)
    # 11-point: recall 0, 0.1, 0.2 -> 1; 0.3, 0.4, 0.5 -> 2/3; beyond -> 0
    assert average_precision(recall, precision, "voc07") == pytest.approx((3 + 3 * 2 / 3) / 11)
    # 101-point: recall 0..0.25 (26 points) -> 1; 0.26..0.5 (25 points) -> 2/3
    assert average_precision(recall, precision, "coco") == pytest.approx((26 + 25 * 2 / 3) / 101)
    assert average_precision(np.zeros(0), np.zeros(0), "coco") == 0.0
    with pytest.raises(ValueError, match="unknown AP method"):
        average_precision(recall, precision, "area")


def test_perfect_predictions_score_one_with_every_metric():
    gt, pred = one([[0, 0, 10, 10], [20, 20, 60, 60]], [0, 1],
                   [[0, 0, 10, 10], [20, 20, 60, 60]], [0.9, 0.8], [0, 1])
    for metric in ("voc", "voc07", "coco"):
        result = evaluate(gt, pred, 2, metric=metric)
        assert result.map == result.map50 == result.map50_95 == pytest.approx(1.0)
        assert result.per_class[0].tp == 1 and result.per_class[0].fp == 0


def test_images_without_predictions_count_as_missed():
    gt, _ = one([[0, 0, 10, 10]], [0], [], [], [])
    result = evaluate(gt, {}, 1)
    assert result.map == 0.0
    assert result.per_class[0].fn == 1
    assert result.per_image["a"].fn == 1 and result.per_image["a"].tp == 0


# ---------------------------------------------------------------- matching rules

def test_match_needs_iou_at_least_the_threshold():
    # IoU exactly 0.5: (0,0,10,10) vs (0,0,10,5)
    gt, pred = one([[0, 0, 10, 10]], [0], [[0, 0, 10, 5]], [0.9], [0])
    assert iou_matrix(gt["a"].boxes, pred["a"].boxes)[0, 0] == 0.5
    assert evaluate(gt, pred, 1, iou_threshold=0.5).per_image["a"].tp == 1
    assert evaluate(gt, pred, 1, iou_threshold=0.51).per_image["a"].tp == 0


def test_duplicate_detection_is_a_false_positive():
    gt, pred = one([[0, 0, 10, 10]], [0], [[0, 0, 10, 10], [0, 0, 10, 9]], [0.8, 0.9], [0, 0])
    image = evaluate(gt, pred, 1).per_image["a"]
    # the higher score matches first, even with the lower IoU
    assert image.pred_tp.tolist() == [False, True] and image.pred_fp.tolist() == [True, False]
    assert image.gt_pred.tolist() == [1]


def test_prediction_takes_the_best_unmatched_ground_truth():
    # A and B both overlap the two predictions; the first takes A (best IoU),
    # the second then takes B although its IoU with A is higher.
    gt, pred = one([[0, 0, 10, 10], [2, 0, 12, 10]], [0, 0],
                   [[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 0])
    image = evaluate(gt, pred, 1).per_image["a"]
    assert image.pred_gt.tolist() == [0, 1] and image.tp == 2


def test_classes_are_matched_separately():
    gt, pred = one([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [1])
    result = evaluate(gt, pred, 2)
    assert result.per_image["a"].tp == 0 and result.per_image["a"].fp == 1
    assert result.per_class[0].ap == 0.0
    # a class with predictions but no ground truth: listed, AP undefined, not in the mean
    assert np.isnan(result.per_class[1].ap) and result.per_class[1].fp == 1
    assert result.map == 0.0


def test_difficult_box_is_neither_missed_nor_a_false_positive():
    gt, pred = one([[0, 0, 10, 10], [50, 50, 60, 60]], [0, 0],
                   [[50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8], [0, 0],
                   difficult=[False, True])
    result = evaluate(gt, pred, 1)
    image = result.per_image["a"]
    # the prediction on the difficult box is neither TP nor FP
    assert image.pred_tp.tolist() == [False, True] and image.pred_fp.tolist() == [False, False]
    assert image.fn == 0 and result.per_class[0].n_gt == 1
    assert result.map == 1.0
    # without the matching prediction the difficult box is still not a miss
    gt_only, _ = one([[50, 50, 60, 60]], [0], [], [], [], difficult=[True])
    assert evaluate(gt_only, {}, 1).per_image["a"].fn == 0


def test_crowd_box_absorbs_many_predictions_under_coco():
    gt, pred = one([[0, 0, 100, 100], [200, 200, 220, 220]], [0, 0],
                   [[10, 10, 30, 30], [50, 50, 70, 70], [200, 200, 220, 220]],
                   [0.9, 0.8, 0.7], [0, 0, 0], crowd=[True, False])
    result = evaluate(gt, pred, 1, metric="coco")
    image = result.per_image["a"]
    assert image.pred_gt.tolist() == [0, 0, 1]
    assert image.tp == 1 and image.fp == 0 and image.fn == 0
    assert result.map == pytest.approx(1.0)


def test_coco_keeps_at_most_100_predictions_per_image_and_class():
    boxes = [[i * 20, 0, i * 20 + 10, 10] for i in range(101)]
    scores = np.linspace(1.0, 0.5, 101)
    gt, pred = one([boxes[100]], [0], boxes, scores, [0] * 101)
    image = evaluate(gt, pred, 1, metric="coco").per_image["a"]
    # the 101st (lowest score) would match, but it is beyond maxDets: neither TP nor FP
    assert image.tp == 0 and image.fp == 100 and image.fn == 1
    assert evaluate(gt, pred, 1, metric="voc").per_image["a"].tp == 1


def test_overlaps_equal_iou_matrix_and_crowd_uses_prediction_area():
    rng = np.random.default_rng(5)
    a = rng.uniform(0, 50, (30, 2))
    b = rng.uniform(0, 50, (20, 2))
    det = np.c_[a, a + rng.uniform(0, 30, (30, 2))]
    gt = np.c_[b, b + rng.uniform(0, 30, (20, 2))]
    det[0, 2] = det[0, 0]  # a zero-area box
    np.testing.assert_allclose(overlaps(det, gt, np.zeros(20, bool)), iou_matrix(det, gt),
                               atol=1e-12)
    inside = overlaps(np.array([[0.0, 0, 10, 10]]), np.array([[0.0, 0, 100, 100]]),
                      np.array([True]))
    assert inside[0, 0] == 1.0


def test_best_f1_point_does_not_split_tied_scores():
    # TP 0.9, FP 0.5, TP 0.5: a threshold can only keep both 0.5 predictions or neither
    gt, pred = one([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0],
                   [[0, 0, 10, 10], [50, 50, 60, 60], [20, 0, 30, 10]], [0.9, 0.5, 0.5],
                   [0, 0, 0])
    c = evaluate(gt, pred, 1).per_class[0]
    assert (c.tp, c.fp, c.fn, c.conf) == (2, 1, 0, 0.5)
    assert c.precision == pytest.approx(2 / 3) and c.recall == 1.0
    assert c.f1 == pytest.approx(0.8)


# ---------------------------------------------------------------- an independent reference

def reference_voc_ap(gt, pred, k, t, eleven_point=False):
    """A plain loop implementation of the guide's definitions for one class."""
    dets = [(s, name, b) for name, p in pred.items()
            for b, s, c in zip(p.boxes, p.scores, p.class_ids, strict=True) if c == k]
    dets.sort(key=lambda d: -d[0])  # stable: image order, then position
    taken = {name: np.zeros(len(g), bool) for name, g in gt.items()}
    n_gt = sum(int(((g.class_ids == k) & ~g.difficult).sum()) for g in gt.values())
    flags = []
    for _, name, box in dets:
        g = gt[name]
        ious = iou_matrix(box[None], g.boxes)[0] if len(g) else np.zeros(0)
        free = [j for j in range(len(g))
                if g.class_ids[j] == k and not taken[name][j] and ious[j] >= t]
        # boxes that count first; difficult ones only when none qualifies; ties: the later
        pool = [j for j in free if not g.difficult[j]] or free
        best = max(pool, key=lambda j: (ious[j], j)) if pool else -1
        if best >= 0:
            taken[name][best] = True
            if g.difficult[best]:
                continue
        flags.append(best >= 0)
    flags = np.array(flags, bool)
    tp, fp = np.cumsum(flags), np.cumsum(~flags)
    rec = tp / n_gt
    prec = tp / np.maximum(tp + fp, 1)
    if eleven_point:
        return np.mean([prec[rec >= r].max() if (rec >= r).any() else 0.0
                        for r in np.linspace(0, 1, 11)])
    mrec, mpre = np.r_[0, rec, 1], np.r_[0, prec, 0]
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    i = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


@pytest.mark.parametrize("seed", range(6))
def test_voc_metrics_equal_a_plain_loop_reference(seed):
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for i in range(25):
        n = int(rng.integers(0, 6))
        boxes = random_box_array(rng, n, 100, (5, 40))
        gt[str(i)] = GroundTruth(boxes, rng.integers(0, 3, n), difficult=rng.random(n) < 0.2)
        m = int(rng.integers(0, 10))
        src = rng.integers(0, max(n, 1), m)
        p = rng.uniform(0, 100, (m, 4))
        p = np.c_[p[:, :2], p[:, :2] + np.abs(p[:, 2:]) * 0.3]
        if n:
            p[: m // 2 * 2: 2] = boxes[src[: m // 2 * 2: 2]] + rng.normal(0, 2, (len(range(0, m // 2 * 2, 2)), 4))
            p[:, 2:] = np.maximum(p[:, 2:], p[:, :2])
        pred[str(i)] = Predictions(p, np.round(rng.random(m), 2), rng.integers(0, 3, m))
    for metric, eleven in (("voc", False), ("voc07", True)):
        result = evaluate(gt, pred, 3, iou_threshold=0.4, metric=metric)
        for k, c in result.per_class.items():
            if c.n_gt:
                assert c.ap == pytest.approx(reference_voc_ap(gt, pred, k, 0.4, eleven), abs=1e-12)


# ---------------------------------------------------------------- confusion matrix

def test_confusion_matrix_counts_right_wrong_missed_and_background():
    gt, pred = one([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]],
                   [0, 1, 1, 0],
                   [[0, 0, 10, 10], [20, 0, 30, 10], [100, 100, 110, 110], [60, 0, 70, 10]],
                   [0.9, 0.8, 0.7, 0.1], [0, 0, 1, 0])
    cm = confusion_matrix(gt, pred, 2, iou_threshold=0.5, conf_threshold=0.25)
    # rows: true 0, true 1, background; columns: predicted 0, predicted 1, missed
    assert cm.counts.tolist() == [[1, 0, 1], [1, 0, 1], [0, 1, 0]]
    assert cm.correct == 1 and cm.wrong_class == 1
    assert cm.background.tolist() == [0, 1] and cm.missed.tolist() == [1, 1]
    assert cm.row_labels(["a", "b"])[-1] == "background"
    assert cm.column_labels(["a", "b"])[-1] == "missed"
    np.testing.assert_allclose(cm.normalized().sum(axis=1), [1, 1, 1])
    lower = confusion_matrix(gt, pred, 2, conf_threshold=0.05)
    assert lower.counts[0, 0] == 2 and lower.counts[0, 2] == 0


def test_confusion_matrix_ignores_difficult_boxes():
    gt, pred = one([[0, 0, 10, 10], [20, 0, 30, 10]], [0, 0], [[0, 0, 10, 10]], [0.9], [1],
                   difficult=[True, True])
    assert confusion_matrix(gt, pred, 2).counts.sum() == 0


# ---------------------------------------------------------------- inputs and bad input

def test_integer_and_non_contiguous_arrays_give_the_same_result():
    boxes = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], dtype=np.int32)
    wide = np.zeros((2, 8), dtype=np.float64)
    wide[:, ::2] = boxes  # every other column: a non-contiguous view
    gt = {"a": GroundTruth(boxes, np.array([0, 1], dtype=np.uint8))}
    as_int = {"a": Predictions(boxes, np.array([0.9, 0.8], dtype=np.float32), [0, 1])}
    strided = {"a": Predictions(wide[:, ::2], np.array([0.9, 0.8]), np.array([0.0, 1.0]))}
    assert not wide[:, ::2].flags.c_contiguous
    for metric in ("voc", "coco"):
        assert evaluate(gt, as_int, 2, metric=metric).map == \
            evaluate(gt, strided, 2, metric=metric).map == pytest.approx(1.0)


def test_zero_area_boxes_are_valid_and_never_match():
    gt, pred = one([[5, 5, 5, 15], [0, 0, 10, 10]], [0, 0],
                   [[5, 5, 5, 15], [0, 0, 10, 10], [3, 3, 3, 3]], [0.9, 0.8, 0.7], [0, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division-by-zero warnings
        image = evaluate(gt, pred, 1).per_image["a"]
        evaluate(gt, pred, 1, metric="coco")
    assert image.tp == 1 and image.fp == 2 and image.fn == 1


def test_ground_truth_from_dataset_boxes():
    g = GroundTruth.from_boxes([Box(0, 0, 10, 10, 2), Box(5, 5, 9, 9, 1, difficult=True)])
    assert g.boxes.tolist() == [[0, 0, 10, 10], [5, 5, 9, 9]]
    assert g.class_ids.tolist() == [2, 1] and g.difficult.tolist() == [False, True]
    assert len(GroundTruth.from_boxes([])) == 0


@pytest.mark.parametrize("make, message", [
    (lambda: GroundTruth([[0, 0, np.nan, 1]], [0]), "NaN or infinite"),
    (lambda: GroundTruth([[0, 0, np.inf, 1]], [0]), "NaN or infinite"),
    (lambda: GroundTruth([[5, 0, 1, 1]], [0]), "not x1 <= x2"),
    (lambda: GroundTruth([[0, 0, 1, 1]], [0, 1]), "expected 1 class ids"),
    (lambda: GroundTruth([[0, 0, 1, 1]], [-1]), "negative"),
    (lambda: GroundTruth([[0, 0, 1, 1]], [0.5]), "not an integer"),
    (lambda: GroundTruth([[0, 0, 1, 1]], [0], difficult=[True, False]), "expected 1 flags"),
    (lambda: GroundTruth([0, 0, 1, 1], [0]), "expected shape"),
    (lambda: Predictions([[0, 0, 1, 1]], [np.nan], [0]), "NaN or infinite"),
    (lambda: Predictions([[0, 0, 1, 1]], [np.inf], [0]), "NaN or infinite"),
    (lambda: Predictions([[0, 0, 1, 1]], [0.5, 0.4], [0]), "2 values for 1 boxes"),
    (lambda: Predictions([[0, 0, 1, 1], [0, 0, 2, 2]], [0.5, 0.4], [0]), "expected 2 class"),
])
def test_bad_boxes_raise_a_clear_value_error(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_bad_evaluate_arguments_raise_clear_errors():
    gt, pred = one([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [0])
    with pytest.raises(ValueError, match="no images"):
        evaluate({}, {}, 1)
    with pytest.raises(ValueError, match="without ground truth, first 'b'"):
        evaluate(gt, {**pred, "b": pred["a"]}, 1)
    with pytest.raises(ValueError, match="image 'a': prediction class id 3 is not below"):
        evaluate(gt, {"a": Predictions([[0, 0, 1, 1]], [0.5], [3])}, 2)
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate(gt, pred, 1, metric="map")
    with pytest.raises(ValueError, match="iou_threshold"):
        evaluate(gt, pred, 1, iou_threshold=0.0)
    with pytest.raises(ValueError, match="num_classes"):
        evaluate(gt, pred, 0)
    with pytest.raises(TypeError, match="must be a GroundTruth"):
        evaluate({"a": [[0, 0, 1, 1]]}, {}, 1)


def test_empty_ground_truth_boxes_give_undefined_map():
    result = evaluate({"a": GroundTruth.empty()}, {"a": Predictions.empty()}, 3)
    assert np.isnan(result.map) and result.per_class == {}
    assert result.to_dict()["map50"] is None
