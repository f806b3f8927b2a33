"""`workbench eval --model BUNDLE [--tta]`: a real random-weight model on OpenCV DNN run on a
dataset folder, then scored; with --tta the plain and the TTA figures apart."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from model_factory import random_cfg

from workbench.cli import main
from workbench.darknet.bundle import write_bundle
from workbench.darknet.weights import random_weights
from workbench.data.synth import CLASS_NAMES, make_demo_dataset
from workbench.detect.config import DEFAULT_TTA_MERGE


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A random-weight yolov3-tiny at 160 whose classes are the demo data's."""
    cfg = random_cfg("yolov3-tiny", len(CLASS_NAMES), 160)
    return write_bundle(tmp_path_factory.mktemp("tta-model"), "model", cfg,
                        random_weights(cfg, 7), CLASS_NAMES)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("tta-data") / "shapes", images=4,
                             size=192, seed=3)


def eval_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["eval", *argv])
    return code, out.getvalue(), err.getvalue()


def test_eval_model_tta_prints_both_figures(bundle, dataset):
    model = str(bundle.cfg.parent)
    code, out, err = eval_cli("--gt", str(dataset), "--model", model, "--tta")
    assert code == 0, err
    assert "plain (160x160):" in out
    assert f"tta (160x160, flipped and 224x224, merged by {DEFAULT_TTA_MERGE}):" in out
    summary = [ln for ln in out.splitlines() if ln.startswith(("plain  mAP", "tta    mAP"))]
    assert len(summary) == 2 and "ms/image" in err
    code, out, _ = eval_cli("--gt", str(dataset), "--model", model, "--tta", "--json")
    found = json.loads(out)
    assert set(found) == {"plain", "tta"}
    assert found["tta"]["passes"].endswith(f"merged by {DEFAULT_TTA_MERGE}")
    assert {"map50", "map50_95", "seconds_per_image"} <= set(found["plain"])
    # the plain figure is the model without --tta, as eval --model alone gives it
    code, out, _ = eval_cli("--gt", str(dataset), "--model", model, "--json")
    assert json.loads(out)["map50"] == found["plain"]["map50"]


def test_eval_model_matches_eval_pred_of_detect_output(bundle, dataset, tmp_path):
    """eval --model scores what detect --out at the same thresholds writes, as eval --pred."""
    pred = tmp_path / "pred"
    assert main(["detect", str(dataset), "--model", str(bundle.cfg.parent), "--conf", "0.005",
                 "--format", "coco", "--out", str(pred)]) == 0
    _, from_pred, _ = eval_cli("--gt", str(dataset), "--pred", str(pred), "--json")
    _, from_model, _ = eval_cli("--gt", str(dataset), "--model", str(bundle.cfg.parent),
                                "--json")
    a, b = json.loads(from_pred), json.loads(from_model)
    assert a["map50"] == pytest.approx(b["map50"], abs=1e-4)


def test_eval_tta_needs_model(dataset, tmp_path):
    code, _, err = eval_cli("--gt", str(dataset), "--pred", str(tmp_path), "--tta")
    assert code == 2 and "--tta needs --model" in err


def test_eval_model_sharing_no_class_is_one_line(model, dataset):
    code, _, err = eval_cli("--gt", str(dataset), "--model", str(model.cfg.parent))
    assert code == 2 and "share no name with the labels'" in err and len(err.splitlines()) == 1


def test_eval_needs_pred_or_model(dataset):
    with pytest.raises(SystemExit):
        eval_cli("--gt", str(dataset))
