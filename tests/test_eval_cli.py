"""`workbench eval`: real dataset folders, YOLO and COCO prediction files, pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.data.folder import open_dataset
from workbench.data.synth import CLASS_NAMES, make_demo_dataset
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("gt") / "shapes", images=12, size=160,
                             seed=4)


def write_predictions(dataset: Path, out: Path, seed: int = 0, perfect: bool = False) -> Path:
    """YOLO prediction files from the labels: jittered, some dropped, some false alarms."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    for label in sorted(dataset.glob("img_*.txt")):
        lines = []
        for row in label.read_text().split("\n"):
            if not row.strip():
                continue
            c, cx, cy, w, h = row.split()
            values = np.array([float(cx), float(cy), float(w), float(h)])
            if not perfect:
                if rng.random() < 0.2:
                    continue
                values = values + rng.normal(0, 0.01, 4)
                values[2:] = np.abs(values[2:])
            lines.append(f"{c} {' '.join(f'{v:.6f}' for v in values)} {rng.random():.4f}")
        if not perfect:
            lines.append(f"{rng.integers(0, 4)} 0.5 0.5 0.1 0.1 {rng.random() * 0.5:.4f}")
        (out / label.name).write_text("\n".join(lines) + "\n")
    return out


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["eval", *argv])
    return code, out.getvalue(), err.getvalue()


def test_perfect_predictions_give_map_one(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "pred", perfect=True)
    code, out, err = run_cli("--gt", str(dataset), "--pred", str(pred), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["map50"] == pytest.approx(1.0) and doc["map50_95"] == pytest.approx(1.0, abs=1e-3)
    assert set(doc["per_class"]) <= set(CLASS_NAMES) and doc["images"] == 12
    assert all(c["fp"] == 0 and c["fn"] == 0 for c in doc["per_class"].values())


def test_cli_numbers_equal_the_library_on_the_same_files(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "pred", seed=1)
    for metric in ("voc", "voc07", "coco"):
        code, out, err = run_cli("--gt", str(dataset), "--pred", str(pred), "--metric", metric,
                                 "--iou", "0.6", "--json")
        assert code == 0, err
        doc = json.loads(out)
        # the same evaluation through the API, reading the files independently here
        ds = open_dataset(dataset)
        gt, preds = {}, {}
        for r in ds.images:
            gt[r.name] = GroundTruth.from_boxes(r.boxes)
            rows = np.loadtxt(pred / f"{r.stem}.txt", ndmin=2)
            scale = np.array([r.width, r.height, r.width, r.height])
            xyxy = np.c_[rows[:, 1:3] - rows[:, 3:5] / 2, rows[:, 1:3] + rows[:, 3:5] / 2]
            preds[r.name] = Predictions(xyxy * scale, rows[:, 5], rows[:, 0].astype(int))
        api = evaluate(gt, preds, 4, iou_threshold=0.6, metric=metric)
        assert doc["map50"] == pytest.approx(api.map50, abs=1e-9)
        assert doc["map50_95"] == pytest.approx(api.map50_95, abs=1e-9)
        assert doc["map"] == pytest.approx(api.map, abs=1e-9)
        assert 0.2 < doc["map50"] < 1.0


def test_table_lists_classes_means_and_confusion(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "pred", seed=2)
    code, out, _ = run_cli("--gt", str(dataset), "--pred", str(pred), "--confusion")
    assert code == 0
    for name in ("circle", "square", "triangle", "star", "all", "mAP@0.5", "mAP@[.5:.95]",
                 "background", "missed", "AP@0.5"):
        assert name in out


def test_coco_gt_and_results_equal_pycocotools(tmp_path):
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(0)
    images, annotations, results = [], [], []
    for image_id in range(1, 16):
        images.append({"id": image_id * 10, "file_name": f"dir/{image_id}.jpg",
                       "width": 640, "height": 480})
        for _ in range(int(rng.integers(0, 6))):
            x, y = rng.uniform(0, 400), rng.uniform(0, 300)
            w, h = rng.uniform(5, 200), rng.uniform(5, 150)
            cat = int(rng.choice([3, 7, 9]))
            annotations.append({"id": len(annotations) + 1, "image_id": image_id * 10,
                                "category_id": cat, "bbox": [x, y, w, h], "area": w * h,
                                "iscrowd": 0})
            for _ in range(int(rng.integers(0, 3))):
                jitter = rng.normal(0, 6, 4)
                results.append({"image_id": image_id * 10, "category_id": cat,
                                "bbox": [x + jitter[0], y + jitter[1], w + abs(jitter[2]),
                                         h + abs(jitter[3])], "score": float(rng.random())})
    categories = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}, {"id": 9, "name": "eel"}]
    gt_file = tmp_path / "instances.json"
    gt_file.write_text(json.dumps({"images": images, "annotations": annotations,
                                   "categories": categories}))
    res_file = tmp_path / "results.json"
    res_file.write_text(json.dumps(results))
    code, out, err = run_cli("--gt", str(gt_file), "--pred", str(res_file), "--metric", "coco",
                             "--json")
    assert code == 0, err
    doc = json.loads(out)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_file))
        e = COCOeval(coco_gt, coco_gt.loadRes(str(res_file)), "bbox")
        e.evaluate()
        e.accumulate()
        e.summarize()
    assert [doc["map50_95"], doc["map50"], doc["map75"]] == pytest.approx(e.stats[:3], abs=1e-4)
    assert set(doc["per_class"]) == {"cat", "dog", "eel"}


def test_coco_results_of_a_folder_resolve_through_images_json(dataset, tmp_path):
    from workbench.formats.coco import coco_document

    ds = open_dataset(dataset)
    doc = coco_document([(r.name, r) for r in ds.images], list(ds.classes))
    results = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
                "score": 0.9} for a in doc["annotations"]]
    (tmp_path / "detections.json").write_text(json.dumps(results))
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(tmp_path / "detections.json"))
    assert code == 2 and "images.json" in err
    (tmp_path / "images.json").write_text(json.dumps(doc))
    code, out, err = run_cli("--gt", str(dataset), "--pred", str(tmp_path / "detections.json"),
                             "--json")
    assert code == 0, err
    assert json.loads(out)["map50"] == pytest.approx(1.0)


def test_mismatched_images_and_classes_are_errors(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "pred", perfect=True)
    (pred / "not_in_gt.txt").write_text("0 0.5 0.5 0.2 0.2 0.9\n")
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(pred))
    assert code == 2 and "match no GT image: not_in_gt.txt" in err
    (pred / "not_in_gt.txt").unlink()

    (pred / "classes.txt").write_text("circle\nsquare\nstar\ntriangle\n")
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(pred))
    assert code == 2 and "another order" in err and "'star' in PRED" in err
    (pred / "classes.txt").write_text("circle\nsquare\ntriangle\nhexagon\n")
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(pred))
    assert code == 2 and "only in PRED hexagon" in err and "only in GT star" in err


def test_bad_prediction_line_names_file_and_line(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "pred", perfect=True)
    (pred / "img_00003.txt").write_text("0 0.5 0.5 0.2 0.2 0.9\n1 0.5 0.5 0.2 0.2\n")
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(pred))
    assert code == 2 and "img_00003.txt:2: expected 6 fields" in err
    (pred / "img_00003.txt").write_text("7 0.5 0.5 0.2 0.2 0.9\n")
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(pred))
    assert code == 2 and "img_00003.txt:1: class id 7" in err
    (pred / "img_00003.txt").write_text("1 0.5 nan 0.2 0.2 0.9\n")
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(pred))
    assert code == 2 and "img_00003.txt:1: NaN" in err


def test_missing_prediction_files_warn_and_count_as_nothing_found(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "pred", perfect=True)
    (pred / "img_00000.txt").unlink()
    code, out, err = run_cli("--gt", str(dataset), "--pred", str(pred), "--json")
    assert code == 0
    assert "1 GT image(s) have no predictions" in err and "img_00000.jpg" in err
    assert json.loads(out)["map50"] < 1.0
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli("--gt", str(dataset), "--pred", str(empty))
    assert code == 2 and "no predictions for any" in err


def test_split_evaluates_only_the_listed_images(dataset, tmp_path):
    pred = write_predictions(dataset, tmp_path / "pred", seed=3)
    code, out, _ = run_cli("--gt", str(dataset), "--pred", str(pred), "--split", "valid",
                           "--json")
    assert code == 0
    valid = [line for line in (dataset / "valid.txt").read_text().splitlines() if line]
    assert json.loads(out)["images"] == len(valid)


def test_entry_point_reports_bad_input_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "workbench", "eval", "--gt",
                           str(tmp_path / "nope"), "--pred", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("workbench eval: error: ") and proc.stderr.count("\n") == 1
