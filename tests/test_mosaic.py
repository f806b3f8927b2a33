"""Mosaic, mixup, copy-paste and multi-scale training: the boxes checked against hand-computed
cases and against where the pixels went, on real files through the real tf.data pipeline."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from workbench.labels.dataset import Box, ImageRecord  # noqa: E402
from workbench.train.augment import AugmentSettings  # noqa: E402
from workbench.train.data import examples_from_records, make_dataset  # noqa: E402
from workbench.train.mosaic import (  # noqa: E402
    MosaicSettings,
    compose,
    mixup,
    placements,
)
from workbench.train.multiscale import batch_sizes, size_choices  # noqa: E402

STILL = MosaicSettings(scale=0.0, translate=0.0, shear=0.0)
COLOURS = [(1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0), (1.0, 1.0, 0.0)]


def _solid(w, h, colour):
    return tf.constant(np.broadcast_to(np.asarray(colour, np.float32), (h, w, 3)).copy())


def _run(images, boxes, classes, u, w=100, h=100, settings=STILL):
    out, kept, cls = compose(images, tf.constant(boxes, tf.float32),
                             tf.constant(classes, tf.int32), tf.constant(u, tf.float32), w, h,
                             settings)
    return out.numpy(), kept.numpy(), cls.numpy()


def test_placements_put_each_image_in_its_quadrant():
    # 100x100 output, canvas 200x200, centre (120, 80); images 200x100 (ratio 0.5) and 50x100
    sizes = tf.constant([[200, 100], [50, 100], [100, 100], [100, 50]], tf.float32)
    ratio, offset, visible = (t.numpy() for t in placements(sizes, tf.constant([120.0, 80.0]),
                                                              100, 100))
    np.testing.assert_allclose(ratio, [0.5, 1.0, 1.0, 1.0])
    # 0: 100x50 ending at the centre; 1: 50x100 starting right of it, ending at it vertically
    np.testing.assert_allclose(offset, [[20, 30], [120, -20], [20, 80], [120, 80]])
    np.testing.assert_allclose(visible, [[20, 30, 120, 80], [120, 0, 170, 80],
                                         [20, 80, 120, 180], [120, 80, 200, 130]])


def test_still_mosaic_pixels_and_boxes_by_hand():
    # centre at the canvas middle (u = .5, .5), no scale/translate: the output is the canvas
    # window [50, 150]^2, so each 100x100 image shows its 50x50 corner nearest the centre
    images = [_solid(100, 100, c) for c in COLOURS]
    boxes = np.zeros((4, 2, 4), np.float32)
    classes = np.full((4, 2), -1, np.int32)
    boxes[0, 0] = [0.6, 0.6, 0.9, 0.8]     # image 0's bottom right: canvas (60..90, 60..80)
    classes[0, 0] = 0                       # -> output (10..40, 10..30), whole
    boxes[1, 0] = [0.0, 0.7, 0.2, 0.9]     # image 1 starts at x=100: canvas (100..120, 70..90)
    classes[1, 0] = 1
    boxes[2, 0] = [0.1, 0.1, 0.2, 0.2]     # canvas (10..20, 110..120): outside the output
    classes[2, 0] = 2
    boxes[3, 0] = [0.4, 0.0, 0.8, 0.3]     # canvas (140..180, 100..130): 10 of 40 px wide show
    classes[3, 0] = 0                       # -> a quarter, above MIN_VISIBLE: kept
    out, kept, cls = _run(images, boxes, classes, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    for (y, x), colour in zip([(25, 25), (25, 75), (75, 25), (75, 75)], COLOURS, strict=True):
        np.testing.assert_allclose(out[y, x], colour, atol=1e-5)
    assert cls.tolist() == [0, 1, 0, -1, -1, -1, -1, -1]
    np.testing.assert_allclose(kept[:3] * 100, [[10, 10, 40, 30], [50, 20, 70, 40],
                                                [90, 50, 100, 80]], atol=1e-4)
    np.testing.assert_allclose(kept[3:], 0.0)


def test_a_box_cut_by_the_canvas_edge_keeps_its_visible_part():
    # centre (60, 100) on the 200x200 canvas: image 0 (100x100) is placed at x -40..60, so only
    # canvas x >= 0 of it exists. Scaled by 0.5 about the canvas centre (u[2] = 0 with scale
    # 0.5), the output shows the whole canvas: p = 0.5 (q - 100) + 50
    images = [_solid(100, 100, c) for c in COLOURS]
    boxes = np.zeros((4, 1, 4), np.float32)
    classes = np.full((4, 1), -1, np.int32)
    boxes[0, 0] = [0.1, 0.5, 0.5, 0.9]    # canvas x -30..10 (a quarter shows), y 50..90
    classes[0, 0] = 3
    shrink = MosaicSettings(scale=0.5, translate=0.0, shear=0.0)
    out, kept, cls = _run(images, boxes, classes, [0.1, 0.5, 0.0, 0.5, 0.5, 0.5, 0.5],
                          settings=shrink)
    assert cls.tolist() == [3, -1, -1, -1]
    np.testing.assert_allclose(kept[0] * 100, [0, 25, 5, 45], atol=1e-4)
    np.testing.assert_allclose(out[30, 2], COLOURS[0], atol=1e-5)   # canvas x 4: image 0
    np.testing.assert_allclose(out[30, 40], COLOURS[1], atol=1e-5)  # canvas x 80: image 1
    np.testing.assert_allclose(out[30, 99], 0.5, atol=1e-5)         # canvas x 198: past image 1


def test_visible_share_decides_a_cut_box():
    # image 3 starts at the centre (100, 100) and shows to the right and below; the output
    # window is canvas (50..150)^2. A box 40 px wide starting 10 px inside shows a quarter
    images = [_solid(100, 100, c) for c in COLOURS]
    boxes = np.zeros((4, 2, 4), np.float32)
    classes = np.full((4, 2), -1, np.int32)
    boxes[3] = [[0.4, 0.0, 0.8, 0.3], [0.45, 0.0, 0.85, 0.3]]   # 10 px and 5 px of 40 show
    classes[3] = [1, 2]
    _, kept, cls = _run(images, boxes, classes, [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert cls.tolist()[:2] == [1, -1]  # 0.25 >= MIN_VISIBLE 0.2 kept, 0.125 dropped
    np.testing.assert_allclose(kept[0] * 100, [90, 50, 100, 80], atol=1e-4)


def _red_box(size, rect):
    w, h = size
    image = np.full((h, w, 3), 0.5, np.float32)
    x1, y1, x2, y2 = rect
    image[y1:y2, x1:x2] = (1.0, 0.0, 0.0)
    return tf.constant(image)


@pytest.mark.parametrize("seed", range(8))
def test_boxes_follow_the_pixels_through_scale_translate_and_shear(seed):
    # one red rectangle per image; every kept box must frame red pixels, and red left outside
    # every kept box must be a box cut below MIN_VISIBLE (a sliver at a border)
    rng = np.random.default_rng(seed)
    settings = MosaicSettings(scale=0.5, translate=0.1, shear=5.0)
    images, boxes, full_areas = [], np.zeros((4, 1, 4), np.float32), []
    u = rng.random(7).astype(np.float32)
    scale = 1 + (u[2] * 2 - 1) * settings.scale
    for k in range(4):
        w, h = int(rng.integers(150, 300)), int(rng.integers(150, 300))
        x1, y1 = int(rng.integers(10, w // 2)), int(rng.integers(10, h // 2))
        rect = (x1, y1, x1 + w // 3, y1 + h // 3)
        images.append(_red_box((w, h), rect))
        boxes[k, 0] = [rect[0] / w, rect[1] / h, rect[2] / w, rect[3] / h]
        ratio = min(320 / w, 256 / h)
        full_areas.append((w // 3) * (h // 3) * (ratio * scale) ** 2)
    out, kept, cls = _run(images, boxes, np.zeros((4, 1), np.int32), u, 320, 256, settings)
    red = (out[..., 0] > 0.75) & (out[..., 1] < 0.25)
    covered = np.zeros_like(red)
    for x1, y1, x2, y2 in kept[cls >= 0] * [320, 256, 320, 256]:
        covered[int(np.floor(y1)):int(np.ceil(y2)), int(np.floor(x1)):int(np.ceil(x2))] = True
        # a kept box is mostly red (shear makes the frame a little larger than the pixels)
        inside = red[int(np.ceil(y1)):int(np.floor(y2)), int(np.ceil(x1)):int(np.floor(x2))]
        assert inside.mean() > 0.6
    count, _, stats, _ = cv2.connectedComponentsWithStats((red & ~covered).astype(np.uint8))
    for area in stats[1:, cv2.CC_STAT_AREA]:
        assert area <= 0.2 * 1.15 * max(full_areas), (area, full_areas)


def test_mixup_keeps_every_box_and_blends_near_half():
    a = (tf.ones((8, 8, 3)), tf.constant([[0.1, 0.1, 0.2, 0.2], [0, 0, 0, 0]]),
         tf.constant([1, -1]))
    b = (tf.zeros((8, 8, 3)), tf.constant([[0.5, 0.5, 0.6, 0.6], [0, 0, 0, 0]]),
         tf.constant([2, -1]))
    image, boxes, classes = mixup(a, b, tf.constant([3, 4], tf.int64))
    assert classes.numpy().tolist() == [1, 2, -1, -1]
    np.testing.assert_allclose(boxes.numpy()[:2], [[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.6, 0.6]])
    r = float(image.numpy()[0, 0, 0])
    assert 0.3 < r < 0.7 and np.allclose(image.numpy(), r)


def test_size_choices_by_hand():
    assert size_choices(416, 416, 0.0) == [(416, 416)]
    assert [w for w, _ in size_choices(416, 416, 0.3)] == [320, 352, 384, 416, 448, 480, 512]
    assert all(w == h for w, h in size_choices(416, 416, 0.3))
    # 640x384 (5:3): the longer side steps, the shorter follows the aspect
    assert size_choices(640, 384, 0.1) == [(576, 352), (608, 352), (640, 384), (672, 416),
                                           (704, 416)]


def test_batch_sizes_change_every_few_batches_and_repeat_per_seed():
    sizes = batch_sizes(25, 416, 416, 0.3, seed=1, epoch=3, every=10)
    assert sizes.shape == (25, 2)
    assert (sizes[:10] == sizes[0]).all() and (sizes[10:20] == sizes[10]).all()
    assert np.array_equal(sizes, batch_sizes(25, 416, 416, 0.3, seed=1, epoch=3, every=10))
    many = batch_sizes(400, 416, 416, 0.3, seed=1, epoch=3, every=1)
    assert set(map(int, many[:, 0])) == {320, 352, 384, 416, 448, 480, 512}


def _records(tmp_path, n=6):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        w, h = int(rng.integers(120, 260)), int(rng.integers(120, 260))
        image = np.full((h, w, 3), 128, np.uint8)
        x1, y1 = w // 4, h // 4
        image[y1:y1 + h // 3, x1:x1 + w // 3] = (0, 0, 255)
        path = tmp_path / f"{i}.jpg"
        assert cv2.imwrite(str(path), image)
        out.append(ImageRecord(path, w, h, [Box(x1, y1, x1 + w // 3, y1 + h // 3, i % 3)],
                               labeled=True))
    return out


def _epoch(examples, **kw):
    return [[t.numpy() for t in b] for b in make_dataset(examples, 96, 64, 2, seed=5, epoch=1,
                                                         shuffle=True, **kw)]


def test_mosaic_pipeline_shapes_and_repeatability(tmp_path):
    examples = examples_from_records(_records(tmp_path), 3)
    mosaic = MosaicSettings()
    first = _epoch(examples, mosaic=mosaic, augment=AugmentSettings(hue=0.1, saturation=1.5))
    again = _epoch(examples, mosaic=mosaic, augment=AugmentSettings(hue=0.1, saturation=1.5))
    assert len(first) == 3
    for (images, boxes, classes), (i2, b2, c2) in zip(first, again, strict=True):
        assert images.shape == (2, 64, 96, 3) and boxes.shape == (2, 4, 4)
        assert classes.shape == (2, 4)
        np.testing.assert_array_equal(images, i2)
        np.testing.assert_array_equal(boxes, b2)
        np.testing.assert_array_equal(classes, c2)
        assert ((boxes >= 0) & (boxes <= 1)).all()
    with_mixup = _epoch(examples, mosaic=MosaicSettings(mixup=1.0))
    assert with_mixup[0][1].shape == (2, 8, 4)
    # images from the pipeline hold the four pictures: some pixels of the red boxes show
    assert any((b[..., 0] > 0.7).any() for b, *_ in first)


def test_multiscale_pipeline_sizes_per_group(tmp_path):
    examples = examples_from_records(_records(tmp_path, n=12), 3)
    batches = _epoch(examples, multiscale=0.5, scale_every=2, mosaic=MosaicSettings())
    shapes = [b[0].shape[1:3] for b in batches]
    expected = batch_sizes(6, 96, 64, 0.5, seed=5, epoch=1, every=2)
    assert [(w, h) for h, w in shapes] == [tuple(map(int, s)) for s in expected]
    plain = _epoch(examples, multiscale=0.5, scale_every=2)
    assert [b[0].shape[1:3] for b in plain] == shapes


def test_training_with_mosaic_mixup_copy_paste_and_multiscale_runs_and_records_it(tmp_path):
    from tests.test_train_loop import MICRO_CFG, Recorder
    from workbench.data.synth import make_demo_dataset
    from workbench.train.loop import train
    from workbench.train.settings import TrainSettings

    cfg = tmp_path / "micro.cfg"
    cfg.write_text(MICRO_CFG)
    data = make_demo_dataset(tmp_path / "data", images=16, seed=3, size=64, valid_fraction=0.25)
    rec = Recorder()
    result = train(TrainSettings(dataset=data, template=str(cfg), size=64, epochs=3, batch=4,
                                 out=tmp_path / "run", patience=0, mosaic=True, mixup=0.5,
                                 multiscale=0.5, copy_paste=0.5), rec)
    assert result.status == "finished" and result.steps == 3 * 3
    assert all(np.isfinite(e["loss"]) for e in rec.of("epoch"))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]
    assert (saved["mosaic"], saved["mixup"], saved["multiscale"], saved["copy_paste"]) == \
        (True, 0.5, 0.5, 0.5)
