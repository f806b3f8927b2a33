"""Copy-paste with boxes: which copies are kept, checked against hand-computed cases, and
where their pixels come from, on real files through the real tf.data pipeline."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from workbench.labels.dataset import Box, ImageRecord  # noqa: E402
from workbench.train.copy_paste import copy_paste, cover  # noqa: E402
from workbench.train.data import examples_from_records, make_dataset  # noqa: E402
from workbench.train.mosaic import MosaicSettings  # noqa: E402

# A: left, kept (its copy 0.7-0.9 covers C by 0.15 x 0.05 / 0.06 = 0.125 < 0.30)
# B: centred, its copy lies on itself: dropped
# C: top right, kept (its copy 0.15-0.35 x 0-0.3 covers A by 0.15 x 0.05 / 0.1 = 0.075)
# D: padding
BOXES = [[0.10, 0.25, 0.30, 0.75], [0.40, 0.20, 0.60, 0.60], [0.65, 0.00, 0.85, 0.30],
         [0.0, 0.0, 0.0, 0.0]]
CLASSES = [2, 0, 1, -1]


def _image(w=20, h=8):
    """Every pixel different: channel 0 its column, channel 1 its row."""
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.stack([xs, ys, np.zeros_like(xs)], axis=-1)


def _paste(p, boxes=BOXES, classes=CLASSES, seed=(1, 2)):
    out, kept, cls = copy_paste(tf.constant(_image()), tf.constant(boxes, tf.float32),
                                tf.constant(classes, tf.int32), tf.constant(seed, tf.int64), p)
    return out.numpy(), kept.numpy(), cls.numpy()


def test_cover_is_the_share_of_the_labeled_box_by_hand():
    shares = cover(tf.constant([[0.15, 0.0, 0.35, 0.3]]),
                   tf.constant([[0.10, 0.25, 0.30, 0.75], [0.0, 0.0, 0.0, 0.0]])).numpy()
    np.testing.assert_allclose(shares, [[0.075, 0.0]], atol=1e-6)


def test_copies_kept_and_their_boxes_by_hand():
    image, boxes, classes = _paste(1.0)
    assert classes.tolist() == [2, 0, 1, 2, 1, -1, -1, -1]
    np.testing.assert_allclose(boxes[:3], BOXES[:3], atol=1e-6)
    np.testing.assert_allclose(boxes[3:5], [[0.70, 0.25, 0.90, 0.75], [0.15, 0.00, 0.35, 0.30]],
                               atol=1e-6)
    assert not boxes[5:].any()


def test_pasted_pixels_are_the_mirror_inside_the_copies_and_nothing_else_moves():
    image, _, _ = _paste(1.0)
    source = _image()
    expected = source.copy()
    # A's copy: columns 14-17 (0.7 x 20 to 0.9 x 20), rows 2-5 (0.25 x 8 to 0.75 x 8);
    # C's copy: columns 3-6, rows 0-1 (0.3 x 8 = 2.4: row 2's centre 2.5 lies outside)
    for rows, cols in ((slice(2, 6), slice(14, 18)), (slice(0, 2), slice(3, 7))):
        expected[rows, cols] = source[:, ::-1][rows, cols]
    np.testing.assert_array_equal(image, expected)
    # the copy of A shows A's columns 2-5 mirrored
    assert image[3, 14:18, 0].tolist() == [5, 4, 3, 2]


def test_no_chance_no_copy_and_the_chance_is_per_object():
    image, boxes, classes = _paste(0.0)
    np.testing.assert_array_equal(image, _image())
    assert (classes >= 0).sum() == 3
    # one object on the left, copied in about half of many seeds
    counts = [int((_paste(0.5, [[0.1, 0.1, 0.2, 0.2]], [0], (7, s))[2] >= 0).sum())
              for s in range(200)]
    assert set(counts) == {1, 2} and 70 < counts.count(2) < 130


def _records(tmp_path, n=4):
    out = []
    for i in range(n):
        w, h = 160, 96
        image = np.full((h, w, 3), 128, np.uint8)
        image[24:72, 16:48] = (0, 0, 255)  # red (BGR) at x 0.1-0.3, y 0.25-0.75
        path = tmp_path / f"{i}.png"
        assert cv2.imwrite(str(path), image)
        out.append(ImageRecord(path, w, h, [Box(16, 24, 48, 72, i % 2)], labeled=True))
    return out


def test_pipeline_pastes_copies_in_plain_and_mosaic_examples(tmp_path):
    examples = examples_from_records(_records(tmp_path), 2)
    plain = list(make_dataset(examples, 160, 96, 2, seed=3, copy_paste=1.0))
    for images, boxes, classes in plain:
        assert boxes.shape == (2, 2, 4) and classes.shape == (2, 2)
        np.testing.assert_allclose(boxes.numpy()[:, 1], [[0.7, 0.25, 0.9, 0.75]] * 2, atol=1e-6)
        assert (classes.numpy()[:, 0] == classes.numpy()[:, 1]).all()
        red = images.numpy()[:, 24:72, 112:144, 0]  # the copy, mirrored on the right
        assert (red > 0.9).all()
    off = list(make_dataset(examples, 160, 96, 2, seed=3))
    assert off[0][1].shape == (2, 1, 4) and (off[0][0].numpy()[:, 24:72, 112:144, 0] < 0.6).all()
    mixed = list(make_dataset(examples, 96, 64, 2, seed=3, copy_paste=0.5,
                              mosaic=MosaicSettings(mixup=1.0)))
    assert mixed[0][1].shape == (2, 16, 4)

