"""``workbench convert``: every format pair through the real CLI, the source left untouched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data.folder import open_dataset
from workbench.data.synth import make_demo_dataset


def _tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "shapes", images=6, seed=2,
                             size=96, valid_fraction=0.34)


def _boxes(root: Path, fmt: str = "auto") -> dict[str, list]:
    dataset = open_dataset(root, fmt)
    assert dataset.problems == []
    return {r.path.relative_to(dataset.root).as_posix(): r.boxes for r in dataset.images}


def _close(a: dict, b: dict, tol: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert len(a[name]) == len(b[name]), name
        for p, q in zip(a[name], b[name], strict=True):
            assert p.class_id == q.class_id
            assert max(abs(u - v) for u, v in zip(p.xyxy(), q.xyxy(), strict=True)) <= tol


def test_yolo_to_voc_to_coco_to_yolo_keeps_boxes_and_never_touches_the_source(
        demo, tmp_path, capsys):
    before = _tree(demo)
    original = _boxes(demo)
    assert main(["convert", str(demo), "--to", "voc", "--out", str(tmp_path / "voc")]) == 0
    assert "wrote 6 images" in capsys.readouterr().out
    assert open_dataset(tmp_path / "voc").label_format == "voc"
    _close(original, _boxes(tmp_path / "voc"), 1.0)  # VOC: integer pixels
    assert main(["convert", str(tmp_path / "voc"), "--to", "coco", "--out",
                 str(tmp_path / "coco")]) == 0
    assert (tmp_path / "coco" / "annotations.json").is_file()
    coco = _boxes(tmp_path / "coco")
    _close(_boxes(tmp_path / "voc"), coco, 1e-9)  # COCO: exact
    assert main(["convert", str(tmp_path / "coco"), "--from", "coco", "--to", "yolo", "--out",
                 str(tmp_path / "yolo")]) == 0
    _close(coco, _boxes(tmp_path / "yolo"), 1e-6 * 96)  # YOLO: six decimals
    again = open_dataset(tmp_path / "yolo")
    assert again.classes == open_dataset(demo).classes
    assert {k: len(v) for k, v in again.split.items()} == {
        k: len(v) for k, v in open_dataset(demo).split.items()}
    assert _tree(demo) == before


def test_yolo_to_yolo_is_byte_identical_for_labels(demo, tmp_path):
    assert main(["convert", str(demo), "--to", "yolo", "--out", str(tmp_path / "y")]) == 0
    for txt in demo.glob("img_*.txt"):
        assert (tmp_path / "y" / txt.name).read_bytes() == txt.read_bytes()


def test_to_darknet_layout(demo, tmp_path):
    assert main(["convert", str(demo), "--to", "darknet", "--out", str(tmp_path / "d"),
                 "--seed", "3"]) == 0
    data = (tmp_path / "d" / "obj.data").read_text()
    assert "classes = 4" in data
    listed = ((tmp_path / "d" / "train.txt").read_text().split()
              + (tmp_path / "d" / "valid.txt").read_text().split())
    assert len(listed) == 6 and all(Path(p).with_suffix(".txt").is_file() for p in listed)


def test_coco_json_file_as_source_with_images_folder(demo, tmp_path):
    assert main(["convert", str(demo), "--to", "coco", "--out", str(tmp_path / "c")]) == 0
    json_file = tmp_path / "instances_val.json"
    json_file.write_text((tmp_path / "c" / "annotations.json").read_text())
    assert main(["convert", str(json_file), "--images", str(demo), "--to", "voc", "--out",
                 str(tmp_path / "v")]) == 0
    _close(_boxes(demo), _boxes(tmp_path / "v"), 1.0)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


def test_refuses_a_non_empty_output_folder(demo, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    assert main(["convert", str(demo), "--to", "voc", "--out", str(tmp_path / "out")]) == 2
    assert _error_line(capsys).startswith("workbench convert: error: ")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["keep.txt"]


def test_refuses_an_output_folder_inside_the_source(demo, capsys):
    before = _tree(demo)
    assert main(["convert", str(demo), "--to", "voc", "--out", str(demo / "voc")]) == 2
    assert "inside the source" in _error_line(capsys)
    assert _tree(demo) == before


def test_missing_source_is_a_one_line_error(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope"), "--to", "voc", "--out",
                 str(tmp_path / "o")]) == 2
    assert "no such dataset" in _error_line(capsys)


def test_unknown_target_is_an_argparse_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["convert", str(tmp_path), "--to", "pascal", "--out", str(tmp_path / "o")])
    assert info.value.code == 2
    assert "invalid choice" in _error_line(capsys)


def test_bad_source_files_are_listed_and_strict_stops(demo, tmp_path, capsys):
    src = tmp_path / "src"
    assert main(["convert", str(demo), "--to", "yolo", "--out", str(src)]) == 0
    (src / "img_00001.txt").write_text("0 0.5 0.5 nan 0.1\n")
    capsys.readouterr()
    assert main(["convert", str(src), "--to", "coco", "--out", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "img_00001.txt:1:" in err
    doc = json.loads((tmp_path / "c" / "annotations.json").read_text())
    assert len(doc["images"]) == 6
    assert main(["convert", str(src), "--strict", "--to", "coco", "--out",
                 str(tmp_path / "c2")]) == 2
    assert "img_00001.txt:1:" in _error_line(capsys)


def test_help_runs_as_a_command():
    result = subprocess.run([sys.executable, "-m", "workbench", "convert", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--format" in result.stdout and "--from" in result.stdout


def test_the_verbs_choices_are_the_engines():
    """commands/convert.py spells the choices out (importing the engine would slow
    `workbench --help`); they must stay the engine's."""
    from workbench.commands import convert as verb
    from workbench.data import convert as engine

    assert (verb.TARGETS, verb.SOURCES) == (engine.TARGETS, engine.SOURCES)
