"""Weighted boxes fusion (workbench/geometry/fusion.py) against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.geometry.fusion import weighted_boxes_fusion


def test_wbf_hand_computed_cases():
    # 1) three sources agree: the weighted mean, the mean score (3 of 3)
    boxes, scores, ids = weighted_boxes_fusion(
        [[0, 0, 10, 10], [2, 0, 12, 10], [0, 2, 10, 12]], [0.8, 0.4, 0.4], [3, 3, 3], 0.5, 3)
    np.testing.assert_allclose(boxes, [[0.5, 0.5, 10.5, 10.5]])  # (0.8*0 + 0.4*2 + 0)/1.6
    assert scores.tolist() == pytest.approx([1.6 / 3]) and ids.tolist() == [3]
    # 2) classes never fuse; a box under the IoU threshold starts its own cluster
    boxes, scores, ids = weighted_boxes_fusion(
        [[0, 0, 10, 10], [0, 0, 10, 10], [5, 0, 15, 10]], [0.9, 0.5, 0.6], [0, 1, 0], 0.34, 2)
    assert ids.tolist() == [0, 0, 1]           # IoU((0,0,10,10), (5,0,15,10)) = 1/3 <= 0.34
    assert scores.tolist() == pytest.approx([0.45, 0.3, 0.25])
    # 3) more members than sources: the mean score, not more
    _, scores, _ = weighted_boxes_fusion([[0, 0, 10, 10]] * 4, [0.8, 0.6, 0.4, 0.2], [0] * 4,
                                         0.5, 3)
    assert scores.tolist() == pytest.approx([0.5])
    # 4) a box joins the cluster it overlaps most, matched against the fused box so far
    boxes, scores, _ = weighted_boxes_fusion(
        [[0, 0, 10, 10], [20, 0, 30, 10], [18, 0, 28, 10]], [0.9, 0.8, 0.7], [0, 0, 0], 0.5, 1)
    np.testing.assert_allclose(boxes, [[0, 0, 10, 10], [(0.8 * 20 + 0.7 * 18) / 1.5, 0,
                                                         (0.8 * 30 + 0.7 * 28) / 1.5, 10]])
    assert scores.tolist() == pytest.approx([0.9, 0.75])
    empty = weighted_boxes_fusion(np.zeros((0, 4)), [], [], 0.5, 3)
    assert [len(a) for a in empty] == [0, 0, 0]


def test_the_loops_iou_is_iou_matrix():
    from workbench.geometry.boxes import iou_matrix
    from workbench.geometry.fusion import _iou_with

    rng = np.random.default_rng(0)
    xy = rng.random((40, 2)) * 50
    boxes = np.concatenate([xy, xy + rng.random((40, 2)) * 30], axis=1)
    boxes[::7, 2] = boxes[::7, 0]  # empty boxes overlap nothing
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for box in boxes[:10]:
        np.testing.assert_allclose(_iou_with(box, boxes, areas), iou_matrix(box[None], boxes)[0],
                                   atol=1e-6)
