"""`eval --pred DIR` reads every format `detect --out` writes, and says which (issue 23.2).

The demo model runs once per format on a real demo data set; each output is scored by the
real CLI and must give the YOLO output's mAP (the formats round coordinates differently:
CSV to 0.01 px, VOC to whole pixels, so equal within a small tolerance, not bit for bit).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data.synth import CLASS_NAMES, make_demo_dataset
from workbench.formats.voc import format_voc, parse_voc
from workbench.labels.dataset import Box


def _run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def detected(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    root = tmp_path_factory.mktemp("formats")
    dataset = make_demo_dataset(root / "demo", images=8, size=160, seed=7)
    outputs = {}
    for fmt in ("yolo", "coco", "csv", "voc"):
        outputs[fmt] = root / f"found-{fmt}"
        code, _, err = _run("detect", str(dataset), "--model", "demo", "--backend", "cpu",
                            "--out", str(outputs[fmt]), "--format", fmt)
        assert code == 0, err
    return dataset, outputs


def _map(dataset: Path, pred: Path) -> tuple[dict, str]:
    code, out, err = _run("eval", "--gt", str(dataset), "--pred", str(pred), "--json")
    assert code == 0, err
    return json.loads(out), err


@pytest.mark.parametrize("fmt", ["coco", "csv", "voc"])
def test_eval_reads_every_detect_format_with_the_yolo_figures(detected, fmt):
    dataset, outputs = detected
    reference, _ = _map(dataset, outputs["yolo"])
    result, err = _map(dataset, outputs[fmt])
    assert f"detect's {fmt} output" in err
    assert result["map"] == pytest.approx(reference["map"], abs=0.02)
    assert reference["map"] > 0.3, "the demo model found too little for a meaningful check"


def test_detect_voc_output_keeps_the_scores(detected):
    _, outputs = detected
    files = sorted(outputs["voc"].rglob("*.xml"))
    objects = [o for f in files for o in parse_voc(f.read_bytes(), f).objects]
    assert objects and all(o.score is not None and 0 < o.score <= 1 for o in objects)
    assert len({o.score for o in objects}) > 1, "scores were not written per object"


def test_voc_without_scores_counts_as_confidence_one_and_says_so(detected, tmp_path):
    dataset, _ = detected
    pred = tmp_path / "unscored"
    pred.mkdir()
    label = next(dataset.glob("img_*.txt"))
    cls, cx, cy, w, h = (float(v) for v in label.read_text().split()[:5])
    box = Box((cx - w / 2) * 160, (cy - h / 2) * 160, (cx + w / 2) * 160, (cy + h / 2) * 160,
              int(cls))
    (pred / f"{label.stem}.xml").write_bytes(format_voc([box], CLASS_NAMES, label, 160, 160))
    code, _, err = _run("eval", "--gt", str(dataset), "--pred", str(pred), "--json")
    assert code == 0, err
    assert "carry no <score>" in err


def test_a_folder_without_predictions_says_what_it_holds(detected, tmp_path):
    dataset, _ = detected
    pred = tmp_path / "pictures"
    pred.mkdir()
    for i in range(3):
        (pred / f"p{i}.jpg").write_bytes(b"\xff\xd8")
    (pred / "notes.json").write_text("{}")
    code, _, err = _run("eval", "--gt", str(dataset), "--pred", str(pred))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "3 .jpg, 1 .json" in lines[0] and "detect --out" in lines[0]


def test_csv_rows_for_images_outside_the_gt_are_refused(detected, tmp_path):
    dataset, outputs = detected
    pred = tmp_path / "csv"
    pred.mkdir()
    text = (outputs["csv"] / "detections.csv").read_text().splitlines()
    row = text[1].split(",")
    row[0] = "elsewhere.jpg"
    (pred / "detections.csv").write_text("\n".join([*text, ",".join(row)]) + "\n")
    code, _, err = _run("eval", "--gt", str(dataset), "--pred", str(pred))
    assert code == 2 and "elsewhere.jpg" in err


def test_eval_reads_the_coco_document_detect_prints_without_out(detected, tmp_path):
    """`detect --format coco > found.json` then `eval --pred found.json`: the document names
    its own image and category ids, so no images.json is needed beside it."""
    dataset, outputs = detected
    code, printed, err = _run("detect", str(dataset), "--model", "demo", "--backend", "cpu",
                              "--format", "coco")
    assert code == 0, err
    found = tmp_path / "found.json"
    found.write_text(printed)
    reference, _ = _map(dataset, outputs["yolo"])
    result, _ = _map(dataset, found)
    assert result["map"] == pytest.approx(reference["map"], abs=0.02)
