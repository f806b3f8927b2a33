"""The tf.data pipeline, in-graph augmentation and learning-rate schedules, on real files."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from workbench.bundled import template_cfg  # noqa: E402
from workbench.darknet.cfg import parse_cfg, read_cfg  # noqa: E402
from workbench.data.images import load_rgb  # noqa: E402
from workbench.errors import WorkbenchError  # noqa: E402
from workbench.labels.dataset import Box, ImageRecord  # noqa: E402
from workbench.train.augment import AugmentSettings  # noqa: E402
from workbench.train.data import (  # noqa: E402
    decode_ratios,
    epoch_order,
    examples_from_records,
    make_dataset,
    split_records,
)
from workbench.train.schedule import LearningRateSchedule, schedule_for  # noqa: E402

RED = (0, 0, 255)  # BGR


def _scene(path, size=(200, 150), rect=(40, 30, 120, 90), noise=True):
    """A grey picture with one red rectangle; returns its record (the rectangle labeled)."""
    w, h = size
    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), 128, np.uint8)
    if noise:
        image = np.clip(image + rng.integers(-20, 20, image.shape), 0, 255).astype(np.uint8)
    x1, y1, x2, y2 = rect
    image[y1:y2, x1:x2] = RED
    assert cv2.imwrite(str(path), image)
    return ImageRecord(path, w, h, [Box(x1, y1, x2, y2, 1)], labeled=True)


def _batches(examples, **kw):
    return [[t.numpy() for t in batch] for batch in make_dataset(examples, **kw)]


def test_plain_pipeline_resizes_as_the_detector_does(tmp_path):
    rec = _scene(tmp_path / "a.jpg")
    images, boxes, classes = _batches(examples_from_records([rec], 3), width=96, height=64,
                                      batch=1, scaled_decoding=False)[0]
    reference = cv2.resize(load_rgb(rec.path), (96, 64), interpolation=cv2.INTER_LINEAR)
    assert images.shape == (1, 64, 96, 3) and images.dtype == np.float32
    # same JPEG pixels as OpenCV, same bilinear; cv2 rounds to uint8 on the way out
    assert np.abs(images[0] * 255 - reference.astype(np.float32)).max() <= 1.0
    np.testing.assert_allclose(boxes[0, 0], [40 / 200, 30 / 150, 120 / 200, 90 / 150], atol=1e-6)
    assert classes.tolist() == [[1]]


@pytest.mark.parametrize(("size", "ratio"), [((200, 150), 2), ((400, 300), 4),
                                             ((800, 600), 8), ((190, 150), 1)])
def test_large_jpegs_decode_at_a_reduced_scale_as_opencv_does(tmp_path, size, ratio):
    # 96x64 from a JPEG at least twice that: libjpeg's scaled IDCT, the same reduced pixels
    # OpenCV's IMREAD_REDUCED_COLOR_N gives, then the detector's bilinear
    rec = _scene(tmp_path / "a.jpg", size=size, rect=(size[0] // 5, size[1] // 5,
                                                       size[0] // 2, size[1] // 2))
    examples = examples_from_records([rec], 3)
    assert decode_ratios(examples, 96, 64).tolist() == [ratio]
    images = _batches(examples, width=96, height=64, batch=1)[0][0]
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[ratio]
    reduced = cv2.cvtColor(cv2.imread(str(rec.path), flags), cv2.COLOR_BGR2RGB)
    assert reduced.shape[:2] == (-(-size[1] // ratio), -(-size[0] // ratio))
    reference = cv2.resize(reduced, (96, 64), interpolation=cv2.INTER_LINEAR)
    assert np.abs(images[0] * 255 - reference.astype(np.float32)).max() <= 1.0


def test_decode_ratio_leaves_png_and_small_images_whole(tmp_path):
    big_png = _scene(tmp_path / "a.png", size=(800, 600))
    small = _scene(tmp_path / "b.jpg", size=(150, 100))
    assert decode_ratios(examples_from_records([big_png, small], 3), 96, 64).tolist() == [1, 1]
    # the need grows with augmentation's magnification: 2x of 96x64 no longer fits 1/4
    big = _scene(tmp_path / "c.jpg", size=(400, 300))
    assert decode_ratios(examples_from_records([big], 3), 192, 128).tolist() == [2]


def _red_extent(image):
    mask = (image[..., 0] > 0.6) & (image[..., 1] < 0.35) & (image[..., 2] < 0.35)
    if not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)


@pytest.mark.parametrize("rotate", [0.0, 25.0])
def test_boxes_follow_the_pixels(tmp_path, rotate):
    # drawn larger than the output so resampling blurs edges by well under a pixel
    rec = _scene(tmp_path / "a.png", size=(400, 300), rect=(80, 60, 240, 180), noise=False)
    settings = AugmentSettings(flip=True, jitter=0.3, zoom=0.3, rotate=rotate)
    ex = examples_from_records([rec] * 16, 3)
    moved = 0
    for images, boxes, classes in _batches(ex, width=128, height=96, batch=8, augment=settings,
                                           seed=7):
        for image, box, cls in zip(images, boxes, classes, strict=True):
            extent = _red_extent(image)
            if cls[0] < 0:  # cut away: (almost) nothing of it may be left in the picture
                assert extent is None or np.prod(extent[2:] - extent[:2]) < 0.25 * 51 * 38
                continue
            assert cls[0] == 1
            pixels = box[0] * [128, 96, 128, 96]
            assert extent is not None
            # the label holds every red pixel ...
            assert (extent[:2] >= pixels[:2] - 1).all() and (extent[2:] <= pixels[2:] + 1).all()
            # ... and fits them tightly, unless a rotated corner left the picture (then the
            # clipped enclosing box is looser than the visible part, as with any box label)
            if not rotate or (pixels[:2] > 0.5).all() and (pixels[2:] < [127.5, 95.5]).all():
                np.testing.assert_allclose(extent, pixels, atol=2.0 if rotate else 1.0)
            moved += not np.allclose(pixels, [80 * 128 / 400, 60 * 96 / 300,
                                              240 * 128 / 400, 180 * 96 / 300], atol=1)
    assert moved >= 8  # the augmentation really moved things


def test_same_seed_same_tensors_other_seed_other_tensors(tmp_path):
    recs = [_scene(tmp_path / f"{i}.jpg", rect=(10 + 5 * i, 20, 90 + 5 * i, 100))
            for i in range(6)]
    ex = examples_from_records(recs, 3)
    settings = AugmentSettings(jitter=0.3, hue=0.1, saturation=1.5, exposure=1.5, rotate=10)
    kw = dict(width=64, height=64, batch=4, augment=settings, shuffle=True, epoch=2)
    a, b = _batches(ex, seed=1, **kw), _batches(ex, seed=1, **kw)
    c = _batches(ex, seed=2, **kw)
    for x, y in zip(a, b, strict=True):
        for p, q in zip(x, y, strict=True):
            np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a[0][0], c[0][0])
    # resuming part-way through an epoch gives the rest of the same epoch
    rest = _batches(ex, seed=1, skip_batches=1, **kw)
    np.testing.assert_array_equal(rest[0][0], a[1][0])


def test_epoch_order_is_a_function_of_seed_and_epoch():
    assert epoch_order(5, 0, 0, shuffle=False).tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(epoch_order(50, 3, 4, True), epoch_order(50, 3, 4, True))
    assert not np.array_equal(epoch_order(50, 3, 4, True), epoch_order(50, 3, 5, True))


def test_colour_jitter_changes_colours_not_boxes(tmp_path):
    rec = _scene(tmp_path / "a.jpg")
    ex = examples_from_records([rec] * 4, 3)
    plain = _batches(ex, width=64, height=64, batch=4, augment=AugmentSettings(flip=False))
    colour = _batches(ex, width=64, height=64, batch=4, seed=3, augment=AugmentSettings(
        flip=False, hue=0.2, saturation=1.8, exposure=1.8))
    np.testing.assert_allclose(plain[0][1], colour[0][1], atol=1e-6)
    assert np.abs(plain[0][0] - colour[0][0]).mean() > 0.02
    assert colour[0][0].min() >= 0 and colour[0][0].max() <= 1


def test_exif_orientation_is_applied_in_the_graph(tmp_path):
    path = tmp_path / "phone.jpg"
    pixels = np.zeros((40, 60, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # shown rotated 90 degrees clockwise
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    rec = ImageRecord(path, 40, 60, [Box(0, 0, 40, 20, 0)], labeled=True)
    images = _batches(examples_from_records([rec], 1), width=40, height=60, batch=1)[0][0]
    expected = load_rgb(path).astype(np.float32) / 255
    assert expected.shape == (60, 40, 3)
    assert np.abs(images[0] - expected).max() <= 1 / 255 + 1e-6


def test_other_formats_go_through_the_workbench_loader(tmp_path):
    rec = _scene(tmp_path / "scan.tif")
    images = _batches(examples_from_records([rec], 3), width=64, height=64, batch=1)[0][0]
    reference = cv2.resize(load_rgb(rec.path), (64, 64), interpolation=cv2.INTER_LINEAR)
    assert np.abs(images[0] * 255 - reference).max() <= 1.0


def test_a_class_outside_the_class_list_is_a_clear_error(tmp_path):
    rec = _scene(tmp_path / "a.jpg")
    with pytest.raises(WorkbenchError, match=r"a\.jpg: box 1 has class 1, the dataset has 1"):
        examples_from_records([rec], 1)


def test_split_uses_the_dataset_split_or_every_kth_labeled_image(tmp_path):
    from workbench.labels.dataset import Dataset

    recs = [ImageRecord(tmp_path / f"{i}.jpg", 10, 10, labeled=i != 3) for i in range(10)]
    train, valid = split_records(Dataset(tmp_path, images=recs), valid_fraction=0.25)
    assert len(train) + len(valid) == 9 and len(valid) == 2
    assert not {id(r) for r in train} & {id(r) for r in valid}
    ds = Dataset(tmp_path, images=recs, split={"train": recs[:6], "valid": recs[6:]})
    train, valid = split_records(ds)
    assert [r.stem for r in train] == ["0", "1", "2", "4", "5"]
    assert [r.stem for r in valid] == ["6", "7", "8", "9"]


def test_burn_in_then_steps_as_darknet():
    s = LearningRateSchedule(lr=0.01, policy="steps", burn_in=100, power=4, steps=(800, 900),
                             scales=(0.1, 0.1))
    assert s.rate(0) == pytest.approx(0.01 * (1 / 100) ** 4)
    assert s.rate(49) == pytest.approx(0.01 * 0.5 ** 4)
    assert s.rate(100) == pytest.approx(0.01)
    assert s.rate(800) == pytest.approx(0.001)
    assert s.rate(950) == pytest.approx(0.0001)
    assert LearningRateSchedule.from_dict(s.to_dict()) == s


def test_cosine_runs_from_lr_down_to_the_floor():
    s = LearningRateSchedule(lr=0.001, policy="cosine", total_steps=1000, burn_in=0)
    assert s.rate(0) == pytest.approx(0.001)
    assert s.rate(500) == pytest.approx(0.001 * (0.01 + 0.99 * 0.5))
    assert s.rate(1000) == pytest.approx(0.001 * 0.01)
    rates = [s.rate(i) for i in range(0, 1000, 50)]
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))


def test_schedule_from_cfg_scales_the_steps_to_the_run():
    cfg = read_cfg(template_cfg("yolov3-tiny"))
    s = schedule_for(cfg, 1e-3, total_steps=1000)
    max_batches = cfg.net.get_int("max_batches")
    expected = tuple(round(1000 * b / max_batches) for b in cfg.net.get_ints("steps"))
    assert s.policy == "steps" and s.steps == expected and s.burn_in == 100
    assert s.scales == (0.1, 0.1)
    cosine = schedule_for(parse_cfg("[net]\npolicy=sgdr\nburn_in=5\n"), 1e-3, 200)
    assert cosine.policy == "cosine" and cosine.burn_in == 5
    with pytest.raises(WorkbenchError, match="learning rate"):
        LearningRateSchedule(lr=math.nan)


def test_augment_settings_come_from_the_cfg():
    cfg = read_cfg(template_cfg("demo-tiny"))
    s = AugmentSettings.from_cfg(cfg, zoom=0.2)
    assert (s.flip, s.jitter, s.hue, s.saturation, s.exposure, s.zoom) == (
        True, 0.2, 0.1, 1.5, 1.5, 0.2)


def test_warm_up_starts_after_the_frozen_epochs_and_the_decay_comes_in_the_run():
    cfg = read_cfg(template_cfg("yolov3-tiny"))  # burn_in=1000, power=4
    s = schedule_for(cfg, 1e-3, total_steps=1000, policy="cosine", hold=100)
    assert s.hold == 100 and s.burn_in == 90  # a tenth of what follows the frozen epochs
    # frozen epochs: the fresh heads train at the full rate (no warm-up spent on them)
    assert [s.rate(i) for i in (0, 50, 99)] == [1e-3] * 3
    # then the warm-up, from near zero, as the pretrained layers start to train
    assert s.rate(100) == pytest.approx(1e-3 * (1 / 90) ** 4)
    assert s.rate(189) == pytest.approx(1e-3)
    # and the cosine reaches its floor at the last step
    assert s.rate(999) == pytest.approx(1e-5, rel=1e-3)
    decay = s.decay_step()
    halfway = 1e-3 * (1 + s.final_fraction) / 2  # half-way from the rate to its floor
    assert s.rate(decay) <= halfway + 1e-15 < s.rate(decay - 1)
    assert LearningRateSchedule.from_dict(s.to_dict()) == s
    old = {k: v for k, v in s.to_dict().items() if k != "hold"}  # a run saved before `hold`
    assert LearningRateSchedule.from_dict(old).hold == 0


def test_decay_step_of_steps_and_constant():
    s = LearningRateSchedule(lr=0.01, policy="steps", steps=(800, 900), scales=(0.1, 0.1),
                             total_steps=1000)
    assert s.decay_step() == 800
    assert LearningRateSchedule(lr=0.01, policy="constant", total_steps=10).decay_step() == 0
