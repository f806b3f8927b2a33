"""`workbench eval --model BUNDLE [--tta]`: a real random-weight model on OpenCV DNN run on a
demo_shapes folder, then scored; with --tta the plain and the TTA figures apart."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from workbench.cli import main
from workbench.detect.config import DEFAULT_TTA_MERGE


def eval_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["eval", *argv])
    return code, out.getvalue(), err.getvalue()


def test_eval_model_tta_prints_both_figures(demo_bundle, demo_shapes):
    model = str(demo_bundle.cfg.parent)
    code, out, err = eval_cli("--gt", str(demo_shapes), "--model", model, "--tta")
    assert code == 0, err
    assert "plain (160x160):" in out
    assert f"tta (160x160, flipped and 224x224, merged by {DEFAULT_TTA_MERGE}):" in out
    summary = [ln for ln in out.splitlines() if ln.startswith(("plain  mAP", "tta    mAP"))]
    assert len(summary) == 2 and "ms/image" in err
    code, out, _ = eval_cli("--gt", str(demo_shapes), "--model", model, "--tta", "--json")
    found = json.loads(out)
    assert set(found) == {"plain", "tta"}
    assert found["tta"]["passes"].endswith(f"merged by {DEFAULT_TTA_MERGE}")
    assert {"map50", "map50_95", "seconds_per_image"} <= set(found["plain"])
    # the plain figure is the model without --tta, as eval --model alone gives it
    code, out, _ = eval_cli("--gt", str(demo_shapes), "--model", model, "--json")
    assert json.loads(out)["map50"] == found["plain"]["map50"]


def test_eval_model_matches_eval_pred_of_detect_output(demo_bundle, demo_shapes, tmp_path):
    """eval --model scores what detect --out at the same thresholds writes, as eval --pred."""
    pred = tmp_path / "pred"
    assert main(["detect", str(demo_shapes), "--model", str(demo_bundle.cfg.parent), "--conf", "0.005",
                 "--format", "coco", "--out", str(pred)]) == 0
    _, from_pred, _ = eval_cli("--gt", str(demo_shapes), "--pred", str(pred), "--json")
    _, from_model, _ = eval_cli("--gt", str(demo_shapes), "--model", str(demo_bundle.cfg.parent),
                                "--json")
    a, b = json.loads(from_pred), json.loads(from_model)
    assert a["map50"] == pytest.approx(b["map50"], abs=1e-4)


def test_eval_tta_needs_model(demo_shapes, tmp_path):
    code, _, err = eval_cli("--gt", str(demo_shapes), "--pred", str(tmp_path), "--tta")
    assert code == 2 and "--tta needs --model" in err


def test_eval_model_sharing_no_class_is_one_line(model, demo_shapes):
    code, _, err = eval_cli("--gt", str(demo_shapes), "--model", str(model.cfg.parent))
    assert code == 2 and "share no name with the labels'" in err and len(err.splitlines()) == 1


def test_eval_needs_pred_or_model(demo_shapes):
    with pytest.raises(SystemExit):
        eval_cli("--gt", str(demo_shapes))
