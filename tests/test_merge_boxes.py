"""NMS with merged boxes (detect --merge-boxes): YOLOv5's merge NMS, by hand and on a model."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.detect.decode import Candidates, class_aware_nms, merged_boxes, suppress
from workbench.detect.detector import Detector


def _candidates() -> Candidates:
    return Candidates(
        np.array([[0, 0, 10, 10],      # best of class 0
                  [1, 0, 11, 10],      # IoU 90/110 with it: merged in
                  [5, 0, 15, 10],      # IoU 50/150: below 0.45, neither merged nor suppressed
                  [50, 50, 60, 60],    # alone
                  [0, 0, 10, 10]],     # class 1 on the same spot: never merged into class 0
                 np.float32),
        np.array([0.9, 0.5, 0.6, 0.8, 0.7], np.float32), np.array([0, 0, 0, 0, 1]))


def test_merged_box_is_the_score_times_iou_weighted_mean_by_hand():
    c = _candidates()
    plain, merged = suppress(c, 0.45), suppress(c, 0.45, merge=True)
    # the same boxes kept with the same scores and classes: only corners move
    np.testing.assert_array_equal(plain.scores, merged.scores)
    np.testing.assert_array_equal(plain.class_ids, merged.class_ids)
    w_self, w_near = 0.9, (90 / 110) * 0.5
    x_shift = (0 * w_self + 1 * w_near) / (w_self + w_near)
    first = merged.boxes[np.argmax(merged.scores)]
    np.testing.assert_allclose(first, [x_shift, 0, 10 + x_shift, 10], atol=1e-5)
    for box, score in zip(merged.boxes, merged.scores, strict=True):
        if score in (np.float32(0.8), np.float32(0.7), np.float32(0.6)):  # nothing to merge
            assert box.tolist() in c.boxes.tolist()


def test_merging_follows_the_nms_threshold_and_empty_input():
    c = _candidates()
    keep = class_aware_nms(c, 0.3)  # at 0.3 the third box (IoU 1/3) is suppressed ...
    first = merged_boxes(c, keep, 0.3)[0]
    w = np.array([0.9, (90 / 110) * 0.5, (50 / 150) * 0.6])  # ... and merged in
    np.testing.assert_allclose(first[0], (w @ [0, 1, 5]) / w.sum(), atol=1e-5)
    empty = Candidates(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                       np.zeros(0, np.int64))
    assert suppress(empty, 0.45, merge=True).boxes.shape == (0, 4)


def test_detector_with_merged_boxes_keeps_opencvs_choice(reduced):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    plain = Detector(reduced, "cpu", size=160).detect(image, conf=0.05, nms=0.45)
    merged = Detector(reduced, "cpu", size=160, merge_boxes=True).detect(image, conf=0.05,
                                                                          nms=0.45)
    assert len(plain) == len(merged) > 1
    np.testing.assert_array_equal(plain.scores, merged.scores)
    moved = np.abs(plain.boxes - merged.boxes).max(axis=1)
    assert (moved > 1e-3).any()  # a random model's candidates overlap: some boxes move
    assert np.abs(plain.boxes - merged.boxes).max() < 0.5 * max(image.shape)


@pytest.mark.parametrize("flag", [[], ["--merge-boxes"]])
def test_detect_cli_merge_boxes(tmp_path, reduced, flag):
    import subprocess
    import sys

    import cv2

    image = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "workbench", "detect", str(tmp_path / "a.png"),
                           "--model", str(reduced.cfg.parent), "--backend", "cpu", "--conf",
                           "0.05", "--size", "160", "--format", "csv", "--out", str(out), *flag],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = (out / "detections.csv").read_text().splitlines()[1:]
    corners = np.array(sorted(tuple(float(v) for v in r.split(",")[6:10]) for r in rows))

    def expected(merge: bool) -> np.ndarray:
        det = Detector(reduced, "cpu", size=160, merge_boxes=merge).detect(image, conf=0.05)
        return np.array(sorted(tuple(float(v) for v in b) for b in det.boxes))

    # order-free: the column sums (rows tie on rounded corners and sort apart)
    want, other = expected(bool(flag)), expected(not flag)
    assert corners.shape == want.shape == other.shape
    rounding = 0.006 * len(corners)  # the CSV's two decimals
    assert np.abs(corners.sum(0) - want.sum(0)).max() < rounding
    assert np.abs(corners.sum(0) - other.sum(0)).max() > 10 * rounding  # the flag acts


def _copy_bundle(model, folder):
    import shutil

    from workbench.darknet.bundle import find_bundle

    folder.mkdir()
    for f in (model.cfg, model.weights, model.names):
        shutil.copy(f, folder / f.name)
    return find_bundle(folder)


def test_detect_merges_when_the_bundle_says_so_and_the_flag_wins(model, tmp_path, capsys):
    from workbench.cli import main
    from workbench.darknet.bundle import read_model_merge, write_model_defaults

    bundle = _copy_bundle(model, tmp_path / "b")
    image = np.random.default_rng(2).integers(0, 255, (200, 260, 3), dtype=np.uint8)
    import cv2

    cv2.imwrite(str(tmp_path / "a.png"), image)
    write_model_defaults(tmp_path / "b", "test", merge_boxes=True)
    assert read_model_merge(bundle) is True
    runs = {}
    for flag in ([], ["--merge-boxes"], ["--no-merge-boxes"]):
        assert main(["detect", str(tmp_path / "a.png"), "--model", str(tmp_path / "b"),
                     "--backend", "cpu", "--conf", "0.05", *flag]) == 0
        captured = capsys.readouterr()
        runs[tuple(flag)] = [ln for ln in captured.out.splitlines() if "\t" in ln]
        assert ("merging boxes as the model's training run found better" in captured.err) \
            == (not flag)
    assert runs[()] == runs[("--merge-boxes",)] != runs[("--no-merge-boxes",)]
    assert len(runs[()]) == len(runs[("--no-merge-boxes",)]) > 0  # same boxes, moved


@pytest.mark.parametrize("text, message", [('{"merge_boxes": "yes"}', "is not true or false"),
                                           ('{"why": "x"}', "not a thresholds file")])
def test_a_bad_merge_setting_names_the_file(model, tmp_path, text, message):
    from workbench.darknet.bundle import read_model_merge
    from workbench.errors import ModelError

    bundle = _copy_bundle(model, tmp_path / "b")
    (tmp_path / "b" / "thresholds.json").write_text(text)
    with pytest.raises(ModelError, match=f"thresholds.json: .*{message}"):
        read_model_merge(bundle)


def test_calibration_stores_merged_boxes_only_when_they_score_better(tmp_path):
    # calibrate() gets validate_bundle's results with and without merged boxes
    import json

    from workbench.darknet.bundle import find_bundle
    from workbench.data.folder import open_dataset
    from workbench.data.synth import make_demo_dataset
    from workbench.train.validation import calibrate, validate_bundle

    # the bundled demo model on demo data: it finds the shapes, so the merge shows in the mAP
    root = make_demo_dataset(tmp_path / "ds", images=8, seed=3, size=192)
    records = [r for r in open_dataset(root).images if r.boxes]
    bundle = _copy_bundle(find_bundle("demo"), tmp_path / "b")
    folder, classes = bundle.cfg.parent, len(bundle.class_names())
    plain = validate_bundle(folder, records, classes, backend="cpu")
    merged = validate_bundle(folder, records, classes, backend="cpu", merge_boxes=True)
    assert plain[1] != merged[1]  # the merge changed the boxes the evaluator saw
    for first, second in ((plain, merged), (merged, plain)):
        path = folder / "thresholds.json"
        path.unlink(missing_ok=True)
        info = calibrate(folder, first, second, len(records))
        assert info  # the demo model finds the shapes: an operating point exists
        assert info["merge_boxes"] == (0.1 * second[0] + 0.9 * second[1]
                                       > 0.1 * first[0] + 0.9 * first[1])
        saved = json.loads(path.read_text()) if path.exists() else {}
        assert saved.get("merge_boxes", False) == info["merge_boxes"]


def test_a_detector_not_told_follows_the_bundle_as_detect_does(model, tmp_path):
    # the GUI's docks and eval --model build Detectors from a DetectConfig without the flag
    from workbench.darknet.bundle import write_model_defaults
    from workbench.detect.config import DetectConfig

    bundle = _copy_bundle(model, tmp_path / "b")
    assert Detector(bundle, "cpu").merge_boxes is False  # no thresholds.json: NMS's boxes
    write_model_defaults(tmp_path / "b", "test", merge_boxes=True)
    assert Detector.from_config(DetectConfig(model=bundle, engine="cpu")).merge_boxes is True
    assert Detector(bundle, "cpu", merge_boxes=False).merge_boxes is False  # told: as told


def test_merge_boxes_with_tta_is_one_line_and_writes_nothing(tmp_path, capsys):
    from workbench.cli import main

    out = tmp_path / "out"
    assert main(["detect", str(tmp_path), "--model", "demo", "--tta", "--merge-boxes",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ("workbench detect: error: --merge-boxes with --tta: test-time "
                       "augmentation merges its passes' boxes itself (--tta-merge wbf or nms)")
    assert not out.exists()
