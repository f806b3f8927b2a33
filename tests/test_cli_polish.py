"""Issue 23, items 3, 4 and 9, through the real command line on real folders:
detect --format without --out prints that format (or refuses in one line), convert --format
voc names the published folder in every XML, split says images and boxes per class and what
became of the unlabeled images, and a detect output is never taken for labels."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

from workbench.cli import main
from workbench.data.synth import make_demo_dataset

ROOT = Path(__file__).resolve().parents[1]
DETECT = ("--model", "demo", "--backend", "cpu", "--size", "160")


def _workbench(*args, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("polish") / "demo", images=4, seed=7,
                             size=128)


# ------------------------------------------------------------------ item 3: detect --format

def test_detect_format_coco_without_out_prints_one_coco_document(demo, tmp_path):
    proc = _workbench("detect", demo, *DETECT, "--format", "coco")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # nothing else on stdout: the summary went to stderr
    assert "backend:" in proc.stderr and "detections" in proc.stderr
    assert sorted(i["file_name"] for i in doc["images"]) == sorted(
        p.name for p in demo.glob("*.jpg"))
    assert [c["name"] for c in doc["categories"]] == ["circle", "square", "triangle", "star"]
    ids = {i["id"] for i in doc["images"]}
    assert doc["annotations"] and all(a["image_id"] in ids and 0 < a["score"] <= 1
                                      for a in doc["annotations"])
    # the same detections --out coco writes (ids resolve through images.json there)
    out = tmp_path / "coco"
    assert main(["detect", str(demo), *DETECT, "--format", "coco", "--out", str(out)]) == 0
    rows = json.loads((out / "detections.json").read_text())
    names = {i["id"]: i["file_name"] for i in json.loads((out / "images.json").read_text())
             ["images"]}
    by_name = {i["id"]: i["file_name"] for i in doc["images"]}
    written = sorted((names[r["image_id"]], r["category_id"], r["score"]) for r in rows)
    printed = sorted((by_name[a["image_id"]], a["category_id"], a["score"])
                     for a in doc["annotations"])
    # stdout rounds scores to 6 digits, the file keeps them whole: equal within that rounding
    # (rounding both to 4 digits fails for a score such as 0.81165 printed)
    assert [row[:2] for row in written] == [row[:2] for row in printed]
    assert [row[2] for row in written] == pytest.approx([row[2] for row in printed], abs=1e-6)


def test_detect_format_csv_without_out_prints_the_csv(demo, tmp_path):
    proc = _workbench("detect", demo, *DETECT, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "csv"
    assert main(["detect", str(demo), *DETECT, "--format", "csv", "--out", str(out)]) == 0
    assert proc.stdout == (out / "detections.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert rows and set(rows[0]) >= {"image", "class_name", "score", "x1", "y2"}


@pytest.mark.parametrize("fmt", ["voc", "yolo"])
def test_detect_a_per_image_format_without_out_is_refused_in_one_line(demo, fmt):
    proc = _workbench("detect", demo, *DETECT, "--format", fmt)
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--format {fmt}" in lines[0] and "--out DIR" in lines[0]


def test_detect_without_format_or_out_still_prints_one_line_per_detection(demo, capsys):
    assert main(["detect", str(demo / "img_00000.jpg"), *DETECT]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split("\t")[0].endswith("img_00000.jpg") and out[-1].startswith("backend:")


def test_detect_help_says_what_format_does_without_out(capsys):
    with pytest.raises(SystemExit):
        main(["detect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "without --out, coco prints one JSON document" in text
    assert "yolo and voc write one file per image, so they need --out" in text


# ------------------------------------------------------------------ item 4: convert --format voc

def test_convert_to_voc_names_the_published_folder_not_the_build_folder(demo, tmp_path):
    out = tmp_path / "demo-voc"
    assert main(["convert", str(demo), "--format", "voc", "--out", str(out)]) == 0
    xmls = sorted(out.glob("*.xml"))
    assert len(xmls) == 4
    for xml in xmls:
        root = etree.parse(str(xml)).getroot()
        image = xml.with_suffix(".jpg")
        assert root.findtext("folder") == "demo-voc"
        assert root.findtext("filename") == image.name
        assert root.findtext("path") == str(out.resolve() / image.name)
        assert Path(root.findtext("path")).is_file()  # it names a file that is there


# ------------------------------------------------------------------ item 9: split

@pytest.fixture()
def half_labeled(tmp_path):
    data = make_demo_dataset(tmp_path / "data", images=12, seed=3, size=96)
    for stem in ("img_00000", "img_00001"):
        (data / f"{stem}.txt").unlink()  # not labeled yet
    (data / "img_00002.txt").write_text("0 0.5 0.5\n")  # a damaged label
    return data


def test_split_prints_images_and_boxes_per_class_per_part(half_labeled, capsys):
    assert main(["split", str(half_labeled), "--valid", "0.25"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split() == ["train", "valid"])
    assert lines[header + 1].split() == ["images", "boxes", "images", "boxes"]
    table = {" ".join(w for w in line.split() if not w.isdigit()):
             [int(w) for w in line.split() if w.isdigit()] for line in lines[header + 2:]
             if line[:1].strip()}
    # the boxes column is the boxes of the label files each part lists
    parts = {p: (half_labeled / f"{p}.txt").read_text().split() for p in ("train", "valid")}
    boxes = {p: [line.split()[0] for name in files
                 for line in (half_labeled / name).with_suffix(".txt").read_text().splitlines()]
             for p, files in parts.items()}
    assert table["all classes"] == [len(parts["train"]), len(boxes["train"]),
                                    len(parts["valid"]), len(boxes["valid"])]
    for class_id, name in enumerate(["circle", "square", "triangle", "star"]):
        assert table[name][1] == boxes["train"].count(str(class_id))
        assert table[name][3] == boxes["valid"].count(str(class_id))
    assert "images without a label file: 2 (not dealt into any split" in out
    assert "images whose label file has problems: 1 (not dealt into any split" in out
    listed = " ".join(parts["train"] + parts["valid"])
    assert "img_00000" not in listed and "img_00002" not in listed


def test_split_of_a_fully_labeled_folder_has_no_left_out_line(tmp_path, capsys):
    data = make_demo_dataset(tmp_path / "plain", images=10, seed=1, size=96)
    assert main(["split", str(data), "--valid", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "all classes" in out and "not dealt" not in out and "unlabeled" not in out


def test_a_detect_output_beside_or_inside_is_never_taken_for_labels(tmp_path, capsys):
    """Unlabeled photos next to (or holding) a `detect --out` folder: its .txt files are
    predictions named like the photos, not labels somewhere else to point at."""
    demo = make_demo_dataset(tmp_path / "demo", images=4, seed=2, size=96)
    photos = tmp_path / "photos"
    photos.mkdir()
    for image in demo.glob("*.jpg"):
        (photos / image.name).write_bytes(image.read_bytes())
    assert main(["detect", str(demo), *DETECT, "--out", str(tmp_path / "demo-detections")]) == 0
    assert main(["detect", str(photos), *DETECT, "--out", str(photos / "found")]) == 0
    capsys.readouterr()
    assert main(["split", str(photos), "--valid", "0.2"]) == 2
    err = capsys.readouterr().err
    assert "no labeled images to split" in err
    assert "detections" not in err and "found" not in err and "--labels" not in err
    assert main(["stats", str(photos), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["layout"].startswith("beside") and stats["problems"] == []
