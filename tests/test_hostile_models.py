"""Bad Darknet model files: detect, export, the Detector (the GUI's model loading) and train
refuse each with one line naming the file and the place, exit 2; detect and export agree."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.cli import main
from workbench.darknet.bundle import find_bundle, write_bundle
from workbench.darknet.cfg import customize, format_cfg, read_cfg
from workbench.darknet.validate import MAX_INPUT, check_bundle
from workbench.darknet.weights import random_weights
from workbench.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "tests" / "data" / "micro.cfg"


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A working micro bundle (3 classes, 64x64, random weights) and an image to detect on."""
    root = tmp_path_factory.mktemp("hostile")
    cfg = customize(read_cfg(MICRO), 3, 64, 64)
    write_bundle(root / "good", "model", cfg, random_weights(cfg, 1), ["a", "b", "c"])
    image = root / "image.jpg"
    cv2.imwrite(str(image), np.full((48, 64, 3), 120, np.uint8))
    return root / "good", image


def _set(kind: str, key: str, value: str, nth: int = 0):
    """Damage: set ``key=value`` in the nth section of ``kind`` of model.cfg."""
    def damage(folder: Path) -> None:
        cfg = read_cfg(folder / "model.cfg")
        section = [s for s in cfg.sections if s.kind == kind][nth]
        section.options[key] = value
        (folder / "model.cfg").write_text(format_cfg(cfg))
    return damage


def _weights(change):
    def damage(folder: Path) -> None:
        path = folder / "model.weights"
        path.write_bytes(change(path.read_bytes()))
    return damage


def _all_nan(data: bytes) -> bytes:
    return data[:20] + np.full((len(data) - 20) // 4, np.nan, "<f4").tobytes()


def _names(text: str):
    def damage(folder: Path) -> None:
        (folder / "model.names").write_text(text)
    return damage


# case: (damage, file named, place named)
CASES = {
    "conv stride=0": (_set("convolutional", "stride", "0"), "model.cfg", "'stride=0'"),
    "maxpool stride=0": (_set("maxpool", "stride", "0"), "model.cfg", "'stride=0'"),
    "upsample stride=0": (_set("upsample", "stride", "0"), "model.cfg", "'stride=0'"),
    "route out of range": (_set("route", "layers", "-40"), "model.cfg", "'layers=-40'"),
    "route ahead of itself": (_set("route", "layers", "30"), "model.cfg", "'layers=30'"),
    "route empty": (_set("route", "layers", ""), "model.cfg", "'layers='"),
    "filters=inf": (_set("convolutional", "filters", "inf"), "model.cfg", "'filters=inf'"),
    "filters negative": (_set("convolutional", "filters", "-16"), "model.cfg",
                         "'filters=-16'"),
    "kernel size=0": (_set("convolutional", "size", "0"), "model.cfg", "'size=0'"),
    "anchors not numbers": (_set("yolo", "anchors", "a,b,c,d"), "model.cfg",
                            "'anchors=a,b,c,d'"),
    "anchors odd count": (_set("yolo", "anchors", "8,8,11"), "model.cfg", "'anchors=8,8,11'"),
    "mask out of range": (_set("yolo", "mask", "3,4,9"), "model.cfg", "'mask=3,4,9'"),
    "yolo classes vs filters": (_set("yolo", "classes", "5"), "model.cfg", "layer 10 [yolo]"),
    "width=1000000": (_set("net", "width", "1000000"), "model.cfg", "[net]"),
    "width not a multiple of 32": (_set("net", "width", "100"), "model.cfg", "[net]"),
    "names count vs classes": (_names("a\nb\n"), "model.names", "classes=3"),
    "weights cut to 17 bytes": (_weights(lambda d: d[:17]), "model.weights", "17 bytes"),
    "weights 3 bytes too long": (_weights(lambda d: d + b"abc"), "model.weights", "floats"),
    "weights one layer short": (_weights(lambda d: d[:-400]), "model.weights", "floats"),
    "weights all NaN": (_weights(_all_nan), "model.weights", "layer 0"),
}


def _bad_bundle(good: Path, tmp_path: Path, case: str) -> Path:
    folder = tmp_path / "bad"
    shutil.copytree(good, folder)
    CASES[case][0](folder)
    return folder


def _error_line(capsys, verb: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, no traceback
    prefix = f"workbench {verb}: error: "
    assert err[0].startswith(prefix), err
    return err[0][len(prefix):]


@pytest.mark.parametrize("case", list(CASES))
def test_detect_and_export_refuse_a_bad_model_with_the_same_line(case, good, tmp_path, capsys):
    bundle, image = good
    folder = _bad_bundle(bundle, tmp_path, case)
    _, file, place = CASES[case]
    rc = main(["detect", str(image), "--model", str(folder), "--backend", "cpu",
               "--out", str(tmp_path / "out")])
    assert rc == 2
    detect_says = _error_line(capsys, "detect")
    assert detect_says.startswith(str(folder / file)) and place in detect_says
    rc = main(["export", "--model", str(folder), "--out", str(tmp_path / "m.onnx")])
    assert rc == 2
    assert _error_line(capsys, "export") == detect_says
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("case", ["route out of range", "weights all NaN", "width=1000000"])
def test_the_gui_model_loading_refuses_them_too(case, good, tmp_path):
    # the GUI's pre-label and inspect panels build a Detector from the folder chosen
    from workbench.detect.detector import Detector

    folder = _bad_bundle(good[0], tmp_path, case)
    with pytest.raises(ModelError, match=CASES[case][1]):
        Detector(folder, "cpu")


def test_the_good_bundle_passes_and_detects(good, tmp_path, capsys):
    bundle, image = good
    checked = check_bundle(find_bundle(bundle))
    assert checked.class_names == ["a", "b", "c"] and checked.cfg.classes == 3
    assert main(["detect", str(image), "--model", str(bundle), "--backend", "cpu",
                 "--out", str(tmp_path / "out")]) == 0
    assert main(["export", "--model", str(bundle), "--out", str(tmp_path / "m.onnx")]) == 0


def test_size_limit_is_a_multiple_of_32_up_to_the_documented_maximum(good, tmp_path, capsys):
    bundle, image = good
    rc = main(["detect", str(image), "--model", str(bundle), "--size", str(MAX_INPUT + 32),
               "--backend", "cpu"])
    assert rc == 2 and str(MAX_INPUT) in _error_line(capsys, "detect")
    rc = main(["export", "--model", str(bundle), "--size", str(MAX_INPUT + 32),
               "--out", str(tmp_path / "m.onnx")])
    assert rc == 2 and str(MAX_INPUT) in _error_line(capsys, "export")


@pytest.mark.parametrize("case", ["route out of range", "filters=inf", "anchors not numbers"])
def test_train_refuses_a_bad_template_before_writing_anything(case, good, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from workbench.data.synth import make_demo_dataset

    folder = _bad_bundle(good[0], tmp_path, case)
    data = make_demo_dataset(tmp_path / "data", images=4, seed=1, size=64)
    run = tmp_path / "run"
    rc = main(["train", str(data), "--template", str(folder / "model.cfg"), "--size", "64",
               "--out", str(run)])
    assert rc == 2
    assert _error_line(capsys, "train").startswith(str(folder / "model.cfg"))
    assert not run.exists()


def test_train_refuses_an_absurd_size(good, tmp_path, capsys):
    pytest.importorskip("tensorflow")
    from workbench.data.synth import make_demo_dataset

    data = make_demo_dataset(tmp_path / "data", images=4, seed=1, size=64)
    rc = main(["train", str(data), "--template", str(MICRO), "--size", "1000000",
               "--out", str(tmp_path / "run")])
    assert rc == 2 and "--size" in _error_line(capsys, "train")
    assert not (tmp_path / "run").exists()
