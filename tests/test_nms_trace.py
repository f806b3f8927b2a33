"""The NMS decision trace: every suppression names the kept box responsible and the overlap."""

import cv2
import numpy as np
import pytest

from workbench.geometry.boxes import diou_matrix, iou_matrix
from workbench.geometry.nms import (
    Decision,
    NmsTrace,
    batched_nms,
    diou_nms,
    nms,
    nms_trace,
    soft_nms,
)


def scene(seed, n=600, clusters=12):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 800, (clusters, 2))
    size = rng.uniform(30, 150, (clusters, 2))
    j = rng.integers(0, clusters, n)
    c = centres[j] + rng.normal(0, 0.12, (n, 2)) * size[j]
    wh = size[j] * rng.uniform(0.8, 1.25, (n, 2))
    scores = rng.random(n).astype(np.float32)
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1), scores


def check_greedy_trace(trace, boxes, scores, thr, overlap_matrix, groups=None):
    n = len(boxes)
    kept_set = set(trace.kept.tolist())
    position = {int(i): p for p, i in enumerate(trace.order)}
    assert trace.decision.shape == trace.by.shape == trace.overlap.shape == (n,)
    for i in trace.suppressed.tolist():
        by = int(trace.by[i])
        assert by in kept_set
        assert position[by] < position[i]
        assert trace.overlap[i] == pytest.approx(overlap_matrix[i, by], abs=1e-6)
        assert trace.overlap[i] > np.float32(thr)
        # The responsible box is the first kept box (in visiting order) that overlaps enough.
        earlier = [k for k in trace.kept.tolist() if position[k] < position[i]
                   and (groups is None or groups[k] == groups[i])]
        hits = [k for k in earlier if overlap_matrix[i, k] > thr + 1e-6]
        assert hits and hits[0] == by
    for i in trace.kept.tolist():
        assert trace.decision[i] == Decision.KEPT and trace.by[i] == -1
        assert np.isnan(trace.overlap[i])
    assert set(trace.order.tolist()) == kept_set | set(trace.suppressed.tolist())


def test_greedy_trace_names_first_responsible_kept_box():
    boxes, scores = scene(0)
    trace = nms_trace(boxes, scores, 0.45, score_threshold=0.1)
    assert isinstance(trace, NmsTrace)
    assert np.array_equal(trace.kept, nms(boxes, scores, 0.45, 0.1))
    check_greedy_trace(trace, boxes, scores, 0.45, iou_matrix(boxes, boxes))
    below = np.flatnonzero(trace.decision == Decision.BELOW_SCORE)
    assert np.array_equal(below, np.flatnonzero(scores <= np.float32(0.1)))
    assert trace.suppressed.size > 100


def test_trace_with_top_k_and_explanations():
    boxes, scores = scene(1, n=300)
    trace = nms(boxes, scores, 0.5, 0.0, 50, return_trace=True)
    assert np.array_equal(trace.kept, np.asarray(
        cv2.dnn.NMSBoxes(np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], scores, 0.0, 0.5,
                         top_k=50)).reshape(-1))
    assert (trace.decision == Decision.BEYOND_TOP_K).sum() == 250 - (scores <= 0).sum()
    s = int(trace.suppressed[0])
    text = trace.explain(s)
    assert f"suppressed by kept box {int(trace.by[s])}" in text and "IoU" in text
    assert "kept" in trace.explain(int(trace.kept[0]))
    far = int(np.flatnonzero(trace.decision == Decision.BEYOND_TOP_K)[0])
    assert "top_k=50" in trace.explain(far)


def test_batched_and_diou_traces():
    boxes, scores = scene(2, n=500)
    classes = np.random.default_rng(2).integers(0, 3, len(boxes))
    trace = batched_nms(boxes, scores, classes, 0.45, return_trace=True)
    assert np.array_equal(trace.kept, batched_nms(boxes, scores, classes, 0.45))
    check_greedy_trace(trace, boxes, scores, 0.45, iou_matrix(boxes, boxes), groups=classes)
    assert all(classes[i] == classes[trace.by[i]] for i in trace.suppressed.tolist())
    trace = diou_nms(boxes, scores, 0.3, return_trace=True)
    check_greedy_trace(trace, boxes, scores, 0.3, diou_matrix(boxes, boxes))
    assert "DIoU" in trace.explain(int(trace.suppressed[0]))


@pytest.mark.parametrize("method", ["soft-linear", "soft-gaussian"])
def test_soft_trace_decays_reproduce_final_scores(method):
    boxes, scores = scene(3, n=200, clusters=6)
    trace = nms_trace(boxes, scores, 0.3, score_threshold=0.05, method=method, sigma=0.5)
    kept, kept_scores = soft_nms(boxes, scores, 0.3, 0.05, method=method[5:], sigma=0.5)
    assert np.array_equal(trace.kept, kept)
    np.testing.assert_array_equal(trace.kept_scores, kept_scores)
    # Replaying every recorded decay on the input scores gives the final scores.
    replay = scores.copy()
    for box, by, factor in zip(trace.decay_box, trace.decay_by, trace.decay_factor, strict=True):
        assert trace.decision[by] == Decision.KEPT
        replay[box] = np.float32(replay[box] * np.float32(factor))
    np.testing.assert_allclose(replay, trace.scores, rtol=1e-6)
    iou = iou_matrix(boxes, boxes)
    np.testing.assert_allclose(trace.decay_overlap, iou[trace.decay_box, trace.decay_by],
                               atol=1e-6)
    sup = np.flatnonzero(trace.decision == Decision.SUPPRESSED)
    assert sup.size and np.all(trace.scores[sup] < 0.05)
    assert np.all(trace.decision[trace.by[sup]] == Decision.KEPT)
    assert "decayed" in trace.explain(int(sup[0]))


def test_trace_of_empty_input_and_unknown_method():
    trace = nms_trace(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert trace.kept.size == 0 and trace.suppressed.size == 0
    with pytest.raises(ValueError, match="unknown NMS method"):
        nms_trace([[0, 0, 1, 1]], [0.5], 0.5, method="fast")


def test_trace_across_the_sweep_hand_over():
    # Clusters first (the kept-box sweep), then lone boxes (the block method takes over).
    boxes, scores = scene(4, n=400, clusters=5)
    rng = np.random.default_rng(4)
    c = rng.uniform(0, 800, (400, 2))
    wh = rng.uniform(5, 40, (400, 2))
    boxes = np.concatenate([boxes, np.concatenate([c - wh / 2, c + wh / 2], axis=1)])
    scores = np.concatenate([scores, rng.random(400).astype(np.float32)])
    trace = nms_trace(boxes, scores, 0.4)
    assert np.array_equal(trace.kept, np.asarray(cv2.dnn.NMSBoxes(
        np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], scores, 0.0, 0.4)).reshape(-1))
    check_greedy_trace(trace, boxes, scores, 0.4, iou_matrix(boxes, boxes))
