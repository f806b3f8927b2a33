"""Large JPEGs decoded at a reduced DCT scale for detection: the ratio, the boxes back in the
full image's pixels, and the switch that decodes every pixel as before."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from workbench.cli import main
from workbench.data.image_headers import Header
from workbench.data.images import Reduced, load_bgr, load_bgr_scaled, reduction
from workbench.detect.backends import Backend
from workbench.detect.detector import Detector
from workbench.detect.pipeline import FULL_DECODE_VARIABLE


@pytest.mark.parametrize("size, net, want", [
    ((640, 480), (416, 416), 1),     # BCCD: under twice the input, decoded whole
    ((831, 1000), (416, 416), 1),    # one pixel short of twice the width
    ((832, 832), (416, 416), 2),
    ((1920, 1440), (416, 416), 2),   # 1440 < 4 x 416
    ((4000, 3000), (416, 416), 4),   # 3000 < 8 x 416
    ((3328, 3328), (416, 416), 8),   # 8 is the largest libjpeg scale
    ((9000, 9000), (416, 416), 8),
    ((2000, 900), (416, 416), 2),    # the smaller side decides
    ((1800, 900), (416, 224), 4),    # a wide network: each side against its own
    ((900, 1800), (416, 224), 2),    # ... the same photo turned (EXIF 6): only 2
])
def test_the_ratio_is_the_largest_that_still_covers_the_network_input(size, net, want):
    assert reduction(*size, *net) == want


def write_jpeg(path, oriented_bgr, orientation=1, quality=95):
    """A JPEG whose EXIF-oriented view is ``oriented_bgr``, stored turned back for its
    ``orientation`` (decoding turns the pixels again: load_bgr gives ``oriented_bgr``)."""
    stored = oriented_bgr
    if orientation in (2, 3, 6, 7):
        stored = stored[:, ::-1]
    if orientation in (3, 4, 7, 8):
        stored = stored[::-1]
    if orientation >= 5:
        stored = np.swapaxes(stored, 0, 1)
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(stored[:, :, ::-1])).save(
        path, quality=quality, subsampling=0, exif=exif)
    return path


def red_box_image(width, height, box):
    """Black, with one pure red rectangle ``box`` (x1, y1, x2, y2: pixel edges)."""
    image = np.zeros((height, width, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = (0, 0, 255)
    return image


def test_a_large_jpeg_decodes_reduced_in_its_orientation(tmp_path):
    oriented = red_box_image(900, 1800, (100, 300, 500, 1500))
    path = write_jpeg(tmp_path / "turned.jpg", oriented, orientation=6)
    image, full, reduced = load_bgr_scaled(path, 416, 224)
    assert full == (900, 1800)
    assert image.shape == (900, 450, 3)  # r = 2 from the oriented sizes (4 if read stored)
    assert reduced == Reduced(450, 900, 2, 0, 0)
    small = cv2.resize(load_bgr(path), (450, 900), interpolation=cv2.INTER_AREA)
    assert np.abs(image.astype(int) - small).mean() < 2.0
    # a size the ratio does not divide: ceil(w / r), as libjpeg makes it
    odd = write_jpeg(tmp_path / "odd.jpg", red_box_image(1403, 1001, (10, 10, 50, 50)))
    image, full, reduced = load_bgr_scaled(odd, 160, 160)
    assert full == (1403, 1001) and image.shape == (251, 351, 3)  # r = 4
    assert reduced == Reduced(351, 251, 4, 0, 0)  # spans 1404 x 1004: padding right, below


@pytest.mark.parametrize("orientation, offsets", [
    (1, (0, 0)), (2, (1, 0)), (3, (1, 3)), (4, (0, 3)),
    (5, (0, 0)), (6, (3, 0)), (7, (3, 1)), (8, (0, 1)),
])
def test_a_mirroring_orientation_puts_the_decodes_padding_before_the_image(orientation,
                                                                           offsets):
    # stored 1403 x 1001 at 1/4: 351 x 251 pixels spanning 1404 x 1004
    reduced = Reduced.of(Header(1403, 1001, orientation), 4)
    assert (reduced.offset_x, reduced.offset_y) == offsets
    assert (reduced.width, reduced.height) == ((251, 351) if orientation >= 5 else (351, 251))


def test_small_images_and_other_formats_decode_exactly_as_before(tmp_path):
    rng = np.random.default_rng(0)
    big = rng.integers(0, 255, (1000, 1200, 3), dtype=np.uint8)
    small = tmp_path / "small.jpg"
    cv2.imwrite(str(small), big[:400, :600])
    png = tmp_path / "big.png"
    cv2.imwrite(str(png), big)
    for path in (small, png):  # 600 x 400 is under twice 416; a PNG is never reduced
        image, full, reduced = load_bgr_scaled(path, 416, 416)
        assert full == image.shape[1::-1] and reduced is None
        assert np.array_equal(image, load_bgr(path))


class RedMoments(Backend):
    """Finds the red rectangle in the blob by its moments (sub-pixel: mean and variance of
    the red-minus-green mass, linear under resizing, zero on black and on letterbox grey)
    and answers it as one row of class 0, as a YOLO head would."""

    name, reason = "moments", "test"
    width = height = 160

    def forward(self, blob):
        rows = []
        for image in blob:
            mass = np.clip(image[0] - image[1], 0, None)  # RGB: red minus green
            total = mass.sum()
            ys, xs = np.mgrid[0:mass.shape[0], 0:mass.shape[1]] + 0.5
            cx, cy = (mass * xs).sum() / total, (mass * ys).sum() / total
            w = np.sqrt(12 * (mass * (xs - cx) ** 2).sum() / total)
            h = np.sqrt(12 * (mass * (ys - cy) ** 2).sum() / total)
            rows.append([[cx / self.width, cy / self.height, w / self.width,
                          h / self.height, 1.0, 0.9, 0.0, 0.0]])
        return [np.asarray(rows, np.float32)]


@pytest.mark.parametrize("letterbox", [False, True])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_boxes_on_a_reduced_decode_land_in_the_full_images_pixels(model, tmp_path,
                                                                  letterbox, orientation):
    # 1403 x 1001 at 160: r = 4, a decode of 351 x 251 spanning 1404 x 1004 (the ratio of
    # the sizes is not 4: mapped by it, y2 below would be 2 pixels off, 7 at 1/8)
    size = (1001, 1403) if orientation >= 5 else (1403, 1001)
    truth = np.array([301, 200, 702, 641], float)
    # blurred (sigma 16), so that resizing 9:1 does not alias the edges: the moments then
    # see the rectangle widened to sqrt(w^2 + 12 sigma^2) about its centre
    image = cv2.GaussianBlur(red_box_image(*size, tuple(truth.astype(int))), (0, 0), 16)
    centre, extent = (truth[:2] + truth[2:]) / 2, np.hypot(truth[2:] - truth[:2], np.sqrt(12 * 16 ** 2))
    seen = np.concatenate([centre - extent / 2, centre + extent / 2])
    path = write_jpeg(tmp_path / "big.jpg", image, orientation)
    detector = Detector(model, RedMoments(), size=160, letterbox=letterbox)
    scaled = next(iter(detector.detect_many([path])))
    full = next(iter(detector.detect_many([path], full_decode=True)))
    assert scaled.reduced is not None and scaled.reduced.scale == 4
    assert full.reduced is None
    assert (scaled.width, scaled.height) == (full.width, full.height) == size
    # the same box within a fraction of a pixel of the full image (one network pixel is ~9);
    # the letterbox rounds its resized size to whole pixels and decodes by the unrounded
    # scale, which costs up to ~1 pixel at 114 of 114.15 (full) and ~2 at 114 of 114.4
    # (reduced) on the short axis, whatever the decode
    atol = 2.0 if letterbox else 0.5
    np.testing.assert_allclose(full.found.boxes[0], seen, atol=atol)
    np.testing.assert_allclose(scaled.found.boxes[0], full.found.boxes[0], atol=atol)


def test_the_switch_and_drawing_decode_every_pixel_as_before(model, tmp_path, monkeypatch):
    path = write_jpeg(tmp_path / "big.jpg", red_box_image(1403, 1001, (301, 200, 702, 641)))
    detector = Detector(model, RedMoments(), size=160)
    before = detector.detect(load_bgr(path))  # one image, decoded whole: today's boxes
    kept = next(iter(detector.detect_many([path], keep_images=True)))
    assert kept.image.shape == (1001, 1403, 3) and kept.reduced is None  # drawn full
    monkeypatch.setenv(FULL_DECODE_VARIABLE, "1")
    by_variable = next(iter(detector.detect_many([path])))
    monkeypatch.delenv(FULL_DECODE_VARIABLE)
    by_option = next(iter(detector.detect_many([path], full_decode=True)))
    for result in (kept, by_variable, by_option):
        assert result.reduced is None
        assert np.array_equal(result.found.boxes, before.boxes)
        assert np.array_equal(result.found.scores, before.scores)


def test_detect_full_decode_writes_the_same_files_as_before(model, tmp_path, monkeypatch,
                                                            capsys):
    rng = np.random.default_rng(1)
    src = tmp_path / "src"
    src.mkdir()
    photo = cv2.resize(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8), (1280, 960))
    cv2.imwrite(str(src / "big.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 90])
    cv2.imwrite(str(src / "small.jpg"), photo[:240, :320])
    cv2.imwrite(str(src / "big.png"), photo)

    def run(out, *extra):
        assert main(["detect", str(src), "--model", str(model.cfg.parent), "--backend", "cpu",
                     "--conf", "0.05", "--out", str(tmp_path / out), *extra]) == 0
        return {p.name: p.read_bytes() for p in (tmp_path / out).glob("*.txt")}

    full = run("full", "--full-decode")
    monkeypatch.setenv(FULL_DECODE_VARIABLE, "yes")
    assert run("variable") == full
    monkeypatch.delenv(FULL_DECODE_VARIABLE)
    scaled = run("scaled")
    capsys.readouterr()
    assert scaled["small.txt"] == full["small.txt"] and scaled["big_png.txt"] == full["big_png.txt"]
    detector = Detector(model, "cpu")
    want = detector.detect(load_bgr(src / "big.jpg"), conf=0.05)
    rows = np.loadtxt(tmp_path / "full" / "big_jpg.txt", ndmin=2).reshape(-1, 6)
    assert len(rows) == len(want) > 0
    np.testing.assert_allclose(rows[:, 5], want.scores, atol=1e-6)
