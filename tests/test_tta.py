"""Test-time augmentation (workbench/detect/tta.py, geometry/fusion.py, detect --tta,
eval --model --tta): a real random-weight model on OpenCV DNN, real files, hand-computed boxes."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from workbench.cli import main
from workbench.data.images import list_images
from workbench.data.synth import CLASS_NAMES
from workbench.detect.config import DEFAULT_TTA_MERGE, DetectConfig
from workbench.detect.decode import Candidates
from workbench.detect.detector import Detector
from workbench.detect.run import run_detection
from workbench.detect.sinks import CsvSink, ImageNames
from workbench.detect.tta import (
    TtaDetector,
    flip_input,
    load_detector,
    merge,
    second_size,
    unflip_rows,
)


@pytest.fixture(scope="module")
def tta(demo_bundle):
    """Merged by NMS: a box one pass found keeps its score (the bookkeeping tests' boxes)."""
    return load_detector(DetectConfig(model=demo_bundle, engine="cpu", tta=True, tta_merge="nms"))


def image(width: int = 320, height: int = 240, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def head(*rows: tuple[float, ...], classes: int = len(CLASS_NAMES)) -> np.ndarray:
    """One head's rows (cx, cy, w, h, objectness, class scores...); a row given as
    (cx, cy, w, h, score, class) puts ``score`` on that class only."""
    out = np.zeros((max(1, len(rows)), 5 + classes), np.float32)
    for i, (cx, cy, w, h, score, c) in enumerate(rows):
        out[i, :5] = cx, cy, w, h, score
        out[i, 5 + int(c)] = score
    return out


def test_second_size_is_1_3_times_rounded_to_32():
    assert second_size(416, 416) == (544, 544)        # 540.8 -> 544
    assert second_size(160, 160) == (224, 224)        # 208 = 6.5 x 32: halves go up
    assert second_size(608, 320) == (800, 416)
    assert second_size(32, 32) == (64, 64)            # at least one step more


def test_load_detector_is_the_plain_detector_without_tta(demo_bundle, tta):
    plain = load_detector(DetectConfig(model=demo_bundle, engine="cpu"))
    assert type(plain) is Detector
    assert isinstance(tta, TtaDetector)
    assert (tta.plain.width, tta.second.width, tta.width) == (160, 224, 224)
    assert "flipped and 224x224, merged by nms" in tta.backend.reason
    default = load_detector(DetectConfig(model=demo_bundle, engine="cpu", tta=True))
    assert default.merge == DEFAULT_TTA_MERGE == "wbf"
    key = DetectConfig(model=demo_bundle).detector_key()
    assert len(key) == 7 and DetectConfig(model=demo_bundle, tta=True).detector_key() != key
    # merged boxes are the detector's own (Detector.merge_boxes): another detector
    assert DetectConfig(model=demo_bundle, merge_boxes=True).detector_key() != key


def test_unflip_mirrors_cx_only():
    rows = head((0.25, 0.5, 0.2, 0.4, 0.9, 1))
    back = unflip_rows(rows)
    assert back[0, 0] == pytest.approx(0.75)
    np.testing.assert_array_equal(back[:, 1:], rows[:, 1:])
    assert rows[0, 0] == pytest.approx(0.25)  # a copy


def test_flipped_pass_box_unflipped_equals_hand_computed(tta):
    # the flipped pass saw the object at cx 0.25 of the input: in the image it is at 0.75
    empty = head((0.5, 0.5, 0.1, 0.1, 0.0, 0))
    heads = [empty, head((0.25, 0.5, 0.2, 0.4, 0.9, 1)), empty]
    found = tta.decode(heads, 320, 240, conf=0.5)
    assert found.class_ids.tolist() == [1]
    np.testing.assert_allclose(found.boxes[0], [208, 72, 272, 168], atol=1e-3)  # hand: 0.65..0.85 x 320


def test_flipped_pass_is_the_plain_network_on_the_mirrored_image(tta):
    """The flip made on the network input and undone on the rows gives the plain detector's
    boxes on the mirrored image, mirrored back (a real forward, both ways)."""
    img = image(320, 320, seed=1)  # 320 -> 160 halves exactly, so the resize is symmetric
    plain = tta.plain
    heads = plain.forward(flip_input(plain.preprocess(img)))[0]
    ours = plain.decode([unflip_rows(h) for h in heads], 320, 320, 0.3)
    theirs = plain.candidates(np.ascontiguousarray(img[:, ::-1]), conf=0.3)
    mirrored = theirs.boxes.copy()
    mirrored[:, [0, 2]] = 320 - theirs.boxes[:, [2, 0]]
    assert len(ours) == len(theirs) > 0
    np.testing.assert_allclose(ours.boxes, mirrored, atol=1e-3)
    np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-5)


def test_second_scale_boxes_are_in_image_pixels(tta):
    # normalized (0.5, 0.5, 0.5, 0.5) on the 224 input is the image's centre half
    empty = head((0.5, 0.5, 0.1, 0.1, 0.0, 0))
    found = tta.decode([empty, empty, head((0.5, 0.5, 0.5, 0.5, 0.8, 2))], 320, 240, 0.5)
    np.testing.assert_allclose(found.boxes[0], [80, 60, 240, 180], atol=1e-3)


def test_second_scale_pass_is_a_detector_at_the_second_size(demo_bundle, tta):
    img = image(300, 200, seed=2)
    k = 2  # yolov3-tiny's heads per pass
    heads = tta.forward(tta.preprocess(img))[0]
    assert len(heads) == 3 * k
    scaled = tta.second.decode(heads[2 * k:], 300, 200, 0.3)
    alone = Detector(demo_bundle, "cpu", size=224).candidates(img, conf=0.3)
    assert len(scaled) == len(alone) > 0
    np.testing.assert_allclose(scaled.boxes, alone.boxes, atol=1e-3)
    assert scaled.boxes[:, 2].max() <= 300 and scaled.boxes[:, 3].max() <= 200


def test_letterboxed_second_scale_maps_through_the_padding(demo_bundle):
    tta = load_detector(DetectConfig(model=demo_bundle, engine="cpu", letterbox=True, tta=True,
                                     tta_merge="nms"))
    # 320x240 into 224x224: scale 0.7, 224x168 placed 28 px down
    empty = head((0.5, 0.5, 0.1, 0.1, 0.0, 0))
    found = tta.decode([empty, empty, head((0.5, 0.5, 0.5, 0.25, 0.8, 0))], 320, 240, 0.5)
    np.testing.assert_allclose(found.boxes[0], [80, 80, 240, 160], atol=1e-3)


def candidates(*rows: tuple[float, float, float, float, float, int]) -> Candidates:
    a = np.array(rows, np.float64).reshape(-1, 6)
    return Candidates(a[:, :4].astype(np.float32), a[:, 4].astype(np.float32),
                      a[:, 5].astype(np.int64))


def test_nms_merge_hand_computed():
    passes = [candidates((0, 0, 10, 10, 0.9, 0), (50, 50, 60, 60, 0.3, 1)),
              candidates((1, 0, 11, 10, 0.95, 0), (0, 0, 10, 10, 0.6, 1)),
              candidates((20, 20, 30, 30, 0.2, 0))]
    found = merge(passes, "nms", conf=0.25, nms=0.45)
    # class 0: (1,0,11,10) at 0.95 suppresses (0,0,10,10) (IoU 90/110); 0.2 is under conf;
    # class 1: its box over class 0's is kept (class-aware), and (50,50,...) at 0.3
    assert found.scores.tolist() == pytest.approx([0.95, 0.6, 0.3])
    assert found.class_ids.tolist() == [0, 1, 1]
    np.testing.assert_array_equal(found.boxes[0], [1, 0, 11, 10])


def test_wbf_merge_hand_computed():
    passes = [candidates((0, 0, 10, 10, 0.9, 0), (40, 40, 50, 50, 0.9, 0)),
              candidates((1, 0, 11, 10, 0.6, 0)),
              candidates()]
    found = merge(passes, "wbf", conf=0.35, nms=0.45)
    # (0,0,10,10) 0.9 and (1,0,11,10) 0.6 (IoU 0.818): x1 = 0.6 x 1 / 1.5 = 0.4,
    # x2 = (0.9 x 10 + 0.6 x 11) / 1.5 = 10.4, score (0.9 + 0.6) / 2 x 2/3 = 0.5;
    # (40,40,50,50) alone: 0.9 / 3 = 0.3, under conf 0.35
    assert found.scores.tolist() == pytest.approx([0.5])
    np.testing.assert_allclose(found.boxes[0], [0.4, 0, 10.4, 10], atol=1e-5)


def test_detect_tta_writes_files(demo_bundle, demo_shapes, tmp_path, capsys):
    for fmt in ("yolo", "coco"):
        out = tmp_path / fmt
        assert main(["detect", str(demo_shapes), "--model", str(demo_bundle.cfg.parent), "--backend",
                     "cpu", "--conf", "0.3", "--tta", "--tta-merge", "wbf", "--out", str(out),
                     "--format", fmt]) == 0
        printed = capsys.readouterr().out
        assert "--tta: 160x160, flipped and 224x224, merged by wbf" in printed
    assert len(list((tmp_path / "yolo").glob("img_*.txt"))) == 4
    rows = [ln.split() for f in (tmp_path / "yolo").glob("img_*.txt")
            for ln in f.read_text().splitlines()]
    assert rows and all(len(r) == 6 and float(r[5]) > 0.3 for r in rows)
    assert json.loads((tmp_path / "coco" / "detections.json").read_text())


def test_detect_tta_refuses_ray(demo_bundle, demo_shapes, capsys):
    assert main(["detect", str(demo_shapes), "--model", str(demo_bundle.cfg.parent), "--tta",
                 "--ray", "local"]) == 2
    assert "--tta locally" in capsys.readouterr().err


def csv_of(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["detect", *argv]) == 0
    return out.getvalue()


def test_default_output_is_the_plain_detectors(demo_bundle, demo_shapes, tmp_path):
    """Without --tta the output is byte for byte the plain Detector's (--tta-merge alone
    changes nothing); with it, it differs."""
    args = [str(demo_shapes), "--model", str(demo_bundle.cfg.parent), "--backend", "cpu", "--conf",
            "0.3", "--format", "csv"]
    default = csv_of(*args)
    assert default == csv_of(*args, "--tta-merge", "wbf")
    assert default != csv_of(*args, "--tta")
    config = DetectConfig(model=demo_bundle, engine="cpu", conf=0.3)
    paths = list_images(demo_shapes)
    out = tmp_path / "direct"
    run_detection(config, paths, [CsvSink(out, CLASS_NAMES, ImageNames.of(paths, demo_shapes))],
                  detector=Detector.from_config(config))
    assert (out / "detections.csv").read_text() == default
