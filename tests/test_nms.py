"""NMS against the real OpenCV implementations: NMSBoxes, NMSBoxesBatched, softNMSBoxes."""

import cv2
import numpy as np
import pytest

from workbench.geometry.nms import batched_nms, diou_nms, nms, soft_nms


def to_xywh(b):
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1)


def cv_nms(b, s, thr, score_thr=0.0, top_k=0):
    out = cv2.dnn.NMSBoxes(to_xywh(b), s, score_thr, thr, top_k=top_k)
    return np.asarray(out, np.int64).reshape(-1)


def clusters(rng, n, k, span, sizes, scales):
    """Centres and sizes (each (n, 2)) of ``n`` boxes around ``k`` cluster centres in
    [0, span): a cluster's side is drawn from ``sizes``, its boxes' centres lie within about
    a tenth of it from its centre and their sides are ``scales`` times it."""
    centres = rng.uniform(0, span, (k, 2))
    size = rng.uniform(*sizes, (k, 2))
    j = rng.integers(0, k, n)
    return (centres[j] + rng.normal(0, 0.1, (n, 2)) * size[j],
            size[j] * rng.uniform(*scales, (n, 2)))


def make_case(rng, n, kind):
    """Boxes (xyxy) and float32 scores of one kind of scene."""
    if kind == "spread":
        c = rng.uniform(0, 600, (n, 2))
        wh = rng.uniform(1, 90, (n, 2))
    elif kind == "clustered":
        c, wh = clusters(rng, n, int(rng.integers(1, 12)), 500, (20, 120), (0.8, 1.25))
    elif kind == "grid":      # whole-pixel boxes: exact IoU ties with the thresholds
        c = rng.integers(0, 40, (n, 2)).astype(float)
        wh = rng.integers(0, 14, (n, 2)).astype(float)
    else:                     # degenerate: many zero-width or zero-height boxes
        c = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(0, 30, (n, 2))
        wh[rng.random(n) < 0.3, 0] = 0
        wh[rng.random(n) < 0.2, 1] = 0
    boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
    if kind == "grid":
        boxes = np.round(boxes)
    if rng.random() < 0.4:
        scores = rng.integers(0, 6, n) / 5          # many tied scores
    else:
        scores = rng.random(n)
    return boxes, scores.astype(np.float32)


THRESHOLDS = [0.0, 0.1, 0.3, 0.45, 0.5, 0.7, 1.0]


def random_case(rng, n_max):
    kind = ["spread", "clustered", "grid", "degenerate"][int(rng.integers(0, 4))]
    n = int(rng.integers(0, n_max))
    boxes, scores = make_case(rng, n, kind)
    thr = float(rng.choice(THRESHOLDS + [float(rng.random())]))
    score_thr = float(rng.choice([0.0, 0.2, 0.5, float(rng.random())]))
    top_k = int(rng.choice([0, 0, 0, 1, 3, 20]))
    return boxes, scores, thr, score_thr, top_k


def test_nms_identical_to_opencv_on_1200_random_cases():
    rng = np.random.default_rng(2024)
    for case in range(1200):
        boxes, scores, thr, score_thr, top_k = random_case(rng, 120)
        expected = cv_nms(boxes, scores, thr, score_thr, top_k)
        got = nms(boxes, scores, thr, score_thr, top_k)
        assert got.dtype == np.int64
        assert np.array_equal(got, expected), (case, thr, score_thr, top_k)


def test_nms_identical_to_opencv_on_large_inputs():
    # Above a few hundred candidates the grid path runs; check it on every kind of scene.
    rng = np.random.default_rng(7)
    for case in range(40):
        kind = ["spread", "clustered", "grid", "degenerate"][case % 4]
        boxes, scores = make_case(rng, int(rng.integers(300, 2500)), kind)
        thr = float(rng.choice(THRESHOLDS + [float(rng.random()), 1.5]))
        top_k = int(rng.choice([0, 0, 100]))
        expected = cv_nms(boxes, scores, thr, 0.0, top_k)
        assert np.array_equal(nms(boxes, scores, thr, 0.0, top_k), expected), (case, kind, thr)


def test_iou_one_third_boundary():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], float)   # xywh (0,0,10,10), (5,0,10,10)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.34).tolist() == [0, 1]
    assert nms(boxes, scores, 0.33).tolist() == [0]
    assert cv_nms(boxes, scores, 0.34).tolist() == [0, 1]
    assert cv_nms(boxes, scores, 0.33).tolist() == [0]


def test_score_threshold_is_strict_and_ties_keep_input_order():
    boxes = np.array([[0, 0, 10, 10], [100, 0, 110, 10], [200, 0, 210, 10]], float)
    scores = np.array([0.5, 0.7, 0.5], np.float32)
    assert nms(boxes, scores, 0.5, score_threshold=0.5).tolist() == [1]
    assert nms(boxes, scores, 0.5).tolist() == [1, 0, 2]
    assert nms(boxes, scores, 0.5, top_k=2).tolist() == [1, 0]


def test_two_empty_boxes_count_as_identical_like_opencv():
    boxes = np.array([[0, 0, 0, 0], [50, 50, 50, 60]], float)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.9).tolist() == cv_nms(boxes, scores, 0.9).tolist() == [0]


def test_batched_nms_equals_opencv_per_class():
    rng = np.random.default_rng(11)
    for case in range(150):
        boxes, scores, thr, score_thr, top_k = random_case(rng, 400)
        classes = rng.integers(0, 4, len(boxes))
        if case % 3 == 0:
            classes = classes * 1_000_003 - 7     # sparse, negative and huge ids are just labels
        got = batched_nms(boxes, scores, classes, thr, score_thr)
        expected = []
        for c in np.unique(classes):
            idx = np.flatnonzero(classes == c)
            expected.extend(idx[cv_nms(boxes[idx], scores[idx], thr, score_thr)])
        expected = np.array(expected, np.int64)
        # Highest score first across classes, ties in input order.
        expected = expected[np.lexsort((expected, -scores[expected]))]
        assert np.array_equal(got, expected), case


def test_batched_nms_equals_opencv_batched_with_top_k():
    rng = np.random.default_rng(12)
    for case in range(60):
        boxes, scores = make_case(rng, int(rng.integers(1, 600)), ["spread", "clustered"][case % 2])
        classes = rng.integers(0, 5, len(boxes))
        top_k = int(rng.choice([0, 10, 200]))
        expected = cv2.dnn.NMSBoxesBatched(to_xywh(boxes), scores, classes, 0.1, 0.45, top_k=top_k)
        got = batched_nms(boxes, scores, classes, 0.45, 0.1, top_k)
        assert np.array_equal(got, np.asarray(expected, np.int64).reshape(-1)), case


@pytest.mark.parametrize("method", ["linear", "gaussian"])
def test_soft_nms_matches_opencv(method):
    cv_method = {"linear": cv2.dnn.SOFT_NMSMETHOD_SOFTNMS_LINEAR,
                 "gaussian": cv2.dnn.SOFT_NMSMETHOD_SOFTNMS_GAUSSIAN}[method]
    rng = np.random.default_rng(5)
    for case in range(150):
        kind = ["spread", "clustered", "grid", "degenerate"][case % 4]
        boxes, scores = make_case(rng, int(rng.integers(0, 80)), kind)
        boxes = np.round(boxes)      # softNMSBoxes takes integer Rects
        thr = float(rng.choice([0.0, 0.3, 0.5, 0.8]))
        score_thr = float(rng.choice([0.0, 0.05, 0.3]))
        top_k = int(rng.choice([0, 0, 5]))
        sigma = float(rng.choice([0.1, 0.5, 2.0]))
        ref_scores, ref_idx = cv2.dnn.softNMSBoxes(
            to_xywh(boxes).astype(np.int32).tolist(), scores.tolist(), score_thr, thr,
            top_k=top_k, sigma=sigma, method=cv_method)
        kept, kept_scores = soft_nms(boxes, scores, thr, score_thr, top_k, method=method,
                                     sigma=sigma)
        assert np.array_equal(kept, np.asarray(ref_idx, np.int64).reshape(-1)), case
        np.testing.assert_allclose(kept_scores, np.asarray(ref_scores).reshape(-1), atol=1e-5)


def test_soft_nms_linear_known_value():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], float)
    kept, s = soft_nms(boxes, [0.9, 0.8], 0.2, 0.1, method="linear")
    assert kept.tolist() == [0, 1]
    assert s[1] == pytest.approx(0.8 * (1 - 1 / 3), abs=1e-6)


def test_diou_nms_keeps_overlapping_neighbours_with_distant_centres():
    # IoU 0.5 but centres far apart relative to the enclosing box: DIoU well below 0.45.
    boxes = np.array([[0, 0, 30, 10], [10, 0, 40, 10]], float)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms(boxes, scores, 0.45).tolist() == [0]
    assert diou_nms(boxes, scores, 0.45).tolist() == [0, 1]
    same_centre = np.array([[0, 0, 10, 10], [1, 1, 9, 9]], float)
    assert diou_nms(same_centre, scores, 0.45).tolist() == [0]


def test_diou_nms_accepts_negative_thresholds():
    # DIoU runs from -1 to 1: a negative threshold also suppresses close, disjoint boxes.
    boxes = np.array([[0, 0, 10, 10], [12, 0, 22, 10], [500, 0, 510, 10]], float)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert diou_nms(boxes, scores, -0.3).tolist() == [0, 2]     # DIoU(0, 1) = -0.247
    big = np.repeat(boxes, 150, axis=0) + np.arange(450)[:, None] * 1e-3
    assert diou_nms(big, np.linspace(1, 0.1, 450), -0.3).tolist() == [0, 300]


def test_diou_nms_matches_brute_force_greedy():
    from workbench.geometry.boxes import diou_matrix

    rng = np.random.default_rng(9)
    for case in range(24):
        boxes, scores = make_case(rng, int(rng.integers(1, 400)), ["spread", "clustered"][case % 2])
        d = diou_matrix(boxes, boxes)
        order = np.argsort(-scores, kind="stable")
        order = order[scores[order] > 0]        # the default score threshold is strict
        kept = []
        for i in order:
            if all(d[i, k] <= np.float32(0.4) for k in kept):
                kept.append(i)
        assert diou_nms(boxes, scores, 0.4).tolist() == kept, case


def test_empty_and_bad_inputs():
    assert nms(np.zeros((0, 4)), [], 0.5).tolist() == []
    assert batched_nms([], [], [], 0.5).shape == (0,)
    kept, s = soft_nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert kept.size == 0 and s.size == 0
    box = [[0, 0, 10, 10]]
    with pytest.raises(ValueError, match="scores: value 0 is NaN"):
        nms(box, [np.nan], 0.5)
    with pytest.raises(ValueError, match="2 values for 1 boxes"):
        nms(box, [0.5, 0.6], 0.5)
    with pytest.raises(ValueError, match="iou_threshold must be a finite"):
        nms(box, [0.5], np.inf)
    with pytest.raises(ValueError, match="iou_threshold must be >= 0"):
        nms(box, [0.5], -0.1)
    with pytest.raises(ValueError, match="row 0 has a NaN"):
        nms([[0, 0, np.nan, 1]], [0.5], 0.5)
    with pytest.raises(ValueError, match="class_ids: expected shape"):
        batched_nms(box, [0.5], [0, 1], 0.5)
    with pytest.raises(ValueError, match="method must be"):
        soft_nms(box, [0.5], method="box")
    with pytest.raises(ValueError, match="sigma must be > 0"):
        soft_nms(box, [0.5], method="gaussian", sigma=0)


def test_integer_and_non_contiguous_inputs():
    rng = np.random.default_rng(3)
    boxes, scores = make_case(rng, 300, "clustered")
    expected = nms(boxes, scores, 0.5)
    wide = np.zeros((300, 8))
    wide[:, ::2] = boxes
    assert np.array_equal(nms(wide[:, ::2], scores.astype(np.float64), 0.5), expected)
    ints = np.round(boxes).astype(np.int64)
    assert np.array_equal(nms(ints, scores, 0.5), cv_nms(ints.astype(float), scores, 0.5))


def sweep_scene(rng, kind):
    """Large scenes for the kept-box sweep (clusters) and its hand-over to the block method."""
    n = int(rng.integers(300, 3000))
    c, wh = clusters(rng, n, int(rng.integers(1, 60)), 2000, (10, 300), (0.7, 1.4))
    if kind == "mixed":          # clusters among many lone boxes: the sweep hands over midway
        lone = rng.random(n) < 0.6
        c[lone] = rng.uniform(0, 2000, (int(lone.sum()), 2))
        wh[lone] = rng.uniform(2, 60, (int(lone.sum()), 2))
    elif kind == "pixels":       # whole pixels: IoU ties with thresholds like 1/3 and 0.5
        c, wh = np.round(c / 8), np.maximum(np.round(wh / 16), 1)
    elif kind == "thin":         # extreme aspect ratios, far from the origin
        wh[:, 1] *= 0.02
        c += 1e6
    boxes = np.concatenate([c - wh / 2, c + wh / 2], axis=1)
    if kind == "pixels":         # no empty box: those are left to the block method
        corner = np.floor(c - wh / 2)
        boxes = np.concatenate([corner, corner + wh], axis=1)
        scores = rng.integers(0, 20, n) / 19
    else:
        scores = rng.random(n)
    return boxes, scores.astype(np.float32)


def test_nms_sweep_and_hand_over_identical_to_opencv():
    rng = np.random.default_rng(31)
    for case in range(48):
        kind = ["clustered", "mixed", "pixels", "thin"][case % 4]
        boxes, scores = sweep_scene(rng, kind)
        thr = float(rng.choice([0.05, 0.25, 1 / 3, 0.45, 0.5, 0.7, 0.95, float(rng.random())]))
        score_thr = float(rng.choice([0.0, 0.0, 0.3]))
        top_k = int(rng.choice([0, 0, 0, 50]))
        expected = cv_nms(boxes, scores, thr, score_thr, top_k)
        got = nms(boxes, scores, thr, score_thr, top_k)
        assert np.array_equal(got, expected), (case, kind, thr, score_thr, top_k)
