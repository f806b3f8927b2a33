"""decode(): vectorized decoding checked against a plain per-row reference on OpenCV's outputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from workbench.detect.decode import decode, letterbox_geometry
from workbench.detect.engines.opencv import OpenCvBackend


@pytest.fixture(scope="module")
def heads(reduced):
    rng = np.random.default_rng(0)
    blob = rng.random((1, 3, 160, 160), dtype=np.float32)
    return [o[0] for o in OpenCvBackend(reduced, 160, 160).forward(blob)]


def reference_decode(outputs, image_w, image_h, conf):
    """The book's loop, darknet-style: one candidate per (row, class) above ``conf``."""
    found = []
    for head in outputs:
        for row in head:
            for c, score in enumerate(row[5:]):
                if score > conf:
                    cx, cy, w, h = (float(v) for v in row[:4])
                    x1, y1 = (cx - w / 2) * image_w, (cy - h / 2) * image_h
                    x2, y2 = (cx + w / 2) * image_w, (cy + h / 2) * image_h
                    if not all(np.isfinite([x1, y1, x2, y2])):
                        continue
                    found.append((min(max(x1, 0), image_w), min(max(y1, 0), image_h),
                                  min(max(x2, 0), image_w), min(max(y2, 0), image_h),
                                  float(score), c))
    return found


@pytest.mark.parametrize("conf", [0.001, 0.25, 0.6])
def test_decode_matches_per_row_reference_on_opencv_outputs(heads, conf):
    got = decode(heads, 640, 480, 160, 160, conf)
    want = reference_decode(heads, 640, 480, conf)
    assert len(got) == len(want) > 0
    want = np.array(want)
    np.testing.assert_allclose(got.boxes, want[:, :4], rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(got.scores, want[:, 4], rtol=1e-6)
    np.testing.assert_array_equal(got.class_ids, want[:, 5].astype(int))
    assert got.boxes.dtype == np.float32 and got.class_ids.dtype == np.int64


def test_decode_single_label_keeps_the_best_class_per_row(heads):
    got = decode(heads, 160, 160, 160, 160, 0.001, multi_label=False)
    rows = np.concatenate(heads)
    best = rows[:, 5:].max(axis=1)
    finite = np.isfinite(rows[:, :4]).all(axis=1)
    want = best[(best > 0.001) & finite]
    np.testing.assert_allclose(np.sort(got.scores), np.sort(want), rtol=1e-6)


def test_opencv_class_scores_are_not_zeroed_below_default_thresh(reduced, heads):
    # the network OpenCV builds from the user's cfg zeroes class scores <= thresh (0.2)
    net = cv2.dnn.readNetFromDarknet(str(reduced.cfg), str(reduced.weights))
    rng = np.random.default_rng(0)
    net.setInput(rng.random((1, 3, 160, 160), dtype=np.float32))
    default = net.forward(net.getUnconnectedOutLayersNames())
    ours = np.concatenate([h[:, 5:] for h in heads])
    theirs = np.concatenate([d[:, 5:] for d in default])
    kept = theirs > 0
    np.testing.assert_allclose(ours[kept], theirs[kept], rtol=1e-5)
    assert np.all(ours[~kept] <= 0.2 + 1e-6)
    assert np.count_nonzero((ours > 0) & (ours <= 0.2)) > 0  # the low ones survive here
    # objectness x class probability: never above objectness
    rows = np.concatenate(heads)
    assert np.all(rows[:, 5:] <= rows[:, 4:5] + 1e-6)


def synthetic_row(cx, cy, w, h, score, classes=2, cls=0):
    row = np.zeros((1, 5 + classes), np.float32)
    row[0, :5] = (cx, cy, w, h, score)
    row[0, 5 + cls] = score
    return row


def test_stretch_maps_normalized_boxes_to_pixels():
    out = synthetic_row(0.5, 0.25, 0.2, 0.1, 0.9, cls=1)
    got = decode([out], 1000, 500, 416, 416, 0.5)
    np.testing.assert_allclose(got.boxes, [[400, 100, 600, 150]], atol=1e-3)
    assert got.class_ids.tolist() == [1] and got.scores.tolist() == [pytest.approx(0.9)]


def test_letterbox_undoes_scale_and_padding():
    # 800x400 image into 416x416: scale 0.52, 416x208 image at pad_y=104
    g = letterbox_geometry(800, 400, 416, 416)
    assert (g.new_width, g.new_height, g.pad_x, g.pad_y) == (416, 208, 0, 104)
    # a box covering the whole image area inside the letterbox
    out = synthetic_row(0.5, 0.5, 1.0, 208 / 416, 0.8)
    got = decode([out], 800, 400, 416, 416, 0.5, letterbox=True)
    np.testing.assert_allclose(got.boxes, [[0, 0, 800, 400]], atol=1e-3)
    # a box in the top padding band is clipped to the image's top edge
    out = synthetic_row(0.25, 104 / 416, 0.1, 0.1, 0.8)
    got = decode([out], 800, 400, 416, 416, 0.5, letterbox=True)
    assert got.boxes[0, 1] == 0 and got.boxes[0, 3] == pytest.approx(20.8 / 0.52, rel=1e-4)


def test_threshold_is_strict_and_empty_input_is_fine():
    out = synthetic_row(0.5, 0.5, 0.1, 0.1, 0.25)
    assert len(decode([out], 100, 100, 32, 32, 0.25)) == 0
    assert len(decode([out], 100, 100, 32, 32, 0.2499)) == 1
    empty = decode([np.zeros((0, 7), np.float32)], 100, 100, 32, 32, 0.1)
    assert empty.boxes.shape == (0, 4)


def test_non_finite_boxes_are_dropped():
    out = np.concatenate([synthetic_row(0.5, 0.5, np.inf, 0.1, 0.9),
                          synthetic_row(0.5, 0.5, 0.1, 0.1, 0.9)])
    got = decode([out], 100, 100, 32, 32, 0.5)
    assert len(got) == 1 and np.isfinite(got.boxes).all()


def test_batched_head_shape_is_accepted(heads):
    a = decode(heads, 300, 200, 160, 160, 0.3)
    b = decode([h[None] for h in heads], 300, 200, 160, 160, 0.3)
    np.testing.assert_array_equal(a.boxes, b.boxes)

