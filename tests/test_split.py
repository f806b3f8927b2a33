"""`workbench split`: stratified by class, deterministic, written in the layout's own files;
`stats` shows it, `anchors`, `eval` and `detect` take --split."""

from __future__ import annotations

import random
import shutil
from collections import Counter
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data.folder import open_dataset
from workbench.data.splits import make_split
from workbench.data.synth import make_demo_dataset
from workbench.labels.dataset import Box, ImageRecord

BCCD_MINI = Path(__file__).parent / "data" / "bccd_mini"


def records_with_classes(counts: dict[int, int], seed: int = 0) -> list[ImageRecord]:
    """``counts[c]`` images holding class c (one box each), plus some common class 0 boxes
    sprinkled in so images hold several classes."""
    rng = random.Random(seed)
    records = []
    for class_id, n in counts.items():
        for i in range(n):
            boxes = [Box(0, 0, 10, 10, class_id)]
            if class_id and rng.random() < 0.5:
                boxes.append(Box(5, 5, 20, 20, 0))
            records.append(ImageRecord(Path(f"/d/c{class_id}_{i:03d}.jpg"), 64, 64, boxes,
                                       labeled=True))
    return records


def stems(records):
    return [r.path.stem for r in records]


def test_split_is_stratified_by_class_and_exact_in_total():
    counts = {0: 120, 1: 40, 2: 15, 3: 5}
    records = records_with_classes(counts)
    split = make_split(records, valid=0.2, test=0.1, seed=7)
    n = len(records)
    assert {p: len(r) for p, r in split.items()} == {
        "train": n - round(n * 0.2) - round(n * 0.1), "valid": round(n * 0.2),
        "test": round(n * 0.1)}
    assert sorted(stems(split["train"] + split["valid"] + split["test"])) == sorted(
        stems(records))
    for class_id, total in counts.items():
        # each image counts for its rarest class: the class named in its file name
        in_valid = sum(r.path.stem.startswith(f"c{class_id}_") for r in split["valid"])
        in_test = sum(r.path.stem.startswith(f"c{class_id}_") for r in split["test"])
        assert abs(in_valid - total * 0.2) <= 1, (class_id, in_valid)
        assert abs(in_test - total * 0.1) <= 1, (class_id, in_test)


def test_split_is_deterministic_and_depends_on_the_seed_not_the_order():
    records = records_with_classes({0: 50, 1: 20, 2: 10})
    shuffled = records[:]
    random.Random(3).shuffle(shuffled)
    a = make_split(records, 0.25, seed=1)
    b = make_split(shuffled, 0.25, seed=1)
    assert {p: stems(r) for p, r in a.items()} == {p: stems(r) for p, r in b.items()}
    assert stems(make_split(records, 0.25, seed=2)["valid"]) != stems(a["valid"])
    assert "test" not in a


def test_a_rare_class_lands_in_valid_unlike_a_plain_random_split():
    """3 of 100 images hold the rare class: stratification puts one of them in valid for
    every seed."""
    records = records_with_classes({0: 97, 1: 3})
    for seed in range(20):
        valid = make_split(records, 0.3, seed=seed)["valid"]
        assert sum(r.path.stem.startswith("c1_") for r in valid) == 1


@pytest.mark.parametrize("valid,test", [(1.0, 0.0), (0.6, 0.5), (-0.1, 0.0)])
def test_fractions_that_leave_nothing_to_train_are_refused(valid, test, capsys, tmp_path):
    root = make_demo_dataset(tmp_path / "demo", images=6, seed=1, size=96)
    assert main(["split", str(root), "--valid", str(valid), "--test", str(test)]) == 2
    assert "workbench split: error:" in capsys.readouterr().err


def test_split_writes_the_devkit_image_sets_and_stats_shows_them(tmp_path, capsys):
    root = tmp_path / "bccd"
    shutil.copytree(BCCD_MINI, root)
    assert main(["split", str(root), "--valid", "0.34", "--test", "0.17", "--seed", "4"]) == 0
    main_dir = root / "ImageSets" / "Main"
    lists = {name: (main_dir / f"{name}.txt").read_text().split()
             for name in ("train", "val", "trainval", "test")}
    assert (len(lists["train"]), len(lists["val"]), len(lists["test"])) == (3, 2, 1)
    assert sorted(lists["trainval"]) == sorted(lists["train"] + lists["val"])
    assert all(line.startswith("BloodImage_") for line in lists["train"])  # stems, VOC-style
    capsys.readouterr()
    assert main(["stats", str(root)]) == 0
    out = capsys.readouterr().out
    assert "layout      voc-devkit" in out
    assert "split       train 3 / valid 2 / test 1 / trainval 5" in out
    dataset = open_dataset(root)
    assert stems(dataset.split["valid"]) == lists["val"]
    # the same seed writes the same files again
    before = {name: (main_dir / f"{name}.txt").read_bytes() for name in lists}
    main(["split", str(root), "--valid", "0.34", "--test", "0.17", "--seed", "4"])
    assert before == {name: (main_dir / f"{name}.txt").read_bytes() for name in lists}


def test_split_beside_writes_root_lists_that_training_reads(tmp_path):
    root = make_demo_dataset(tmp_path / "demo", images=20, seed=2, size=96)
    for name in ("train.txt", "valid.txt"):
        (root / name).unlink(missing_ok=True)
    assert main(["split", str(root), "--valid", "0.2", "--seed", "0"]) == 0
    lines = (root / "valid.txt").read_text().split()
    assert len(lines) == 4 and not (root / "test.txt").exists()
    dataset = open_dataset(root)
    from workbench.train.data import split_records

    train, valid = split_records(dataset)
    assert sorted(dataset.relative_path(r).as_posix() for r in valid) == sorted(lines)
    assert len(train) == 16


def test_split_in_the_ultralytics_layout_points_data_yaml_at_list_files(tmp_path):
    import yaml

    out = tmp_path / "ul"
    main(["convert", str(BCCD_MINI), "--to", "ultralytics", "--out", str(out)])
    # --test 0: convert wrote a test split; this test is about train/val lists only
    assert main(["split", str(out), "--valid", "0.5", "--seed", "3", "--test", "0"]) == 0
    doc = yaml.safe_load((out / "data.yaml").read_text())
    assert (doc["train"], doc["val"]) == ("train.txt", "val.txt") and "test" not in doc
    listed = (out / "val.txt").read_text().split()
    assert len(listed) == 3 and all(line.startswith("./images/") for line in listed)
    dataset = open_dataset(out)
    assert sorted(f"./{dataset.relative_path(r).as_posix()}" for r in dataset.split["valid"]) \
        == sorted(listed)
    assert len(dataset.split["train"]) == 3 and "test" not in dataset.split


def test_anchors_and_eval_use_one_split(tmp_path, capsys):
    root = tmp_path / "bccd"
    shutil.copytree(BCCD_MINI, root)
    dataset = open_dataset(root)
    train_boxes = sum(len(r.boxes) for r in dataset.split["train"])
    assert train_boxes < sum(len(r.boxes) for r in dataset.images)
    assert main(["anchors", str(root), "-n", "3", "--split", "train"]) == 0
    assert f"over {train_boxes} boxes" in capsys.readouterr().out
    # eval --split test: predictions equal to the truth of the test images give AP 1
    from workbench.formats.yolo import write_yolo

    pred = tmp_path / "pred"
    for record in dataset.split["test"]:
        target = pred / dataset.relative_path(record).with_suffix(".txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        write_yolo(target, record.boxes, record.width, record.height)
        text = target.read_text().splitlines()
        target.write_text("".join(f"{line} 0.9\n" for line in text))
    assert main(["eval", "--gt", str(root), "--pred", str(pred), "--split", "test",
                 "--json"]) == 0
    import json

    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 2 and result["map"] == pytest.approx(1.0)
    assert main(["anchors", str(root), "--split", "test", "--labels", str(root / "nope")]) == 2


def test_detect_split_runs_only_that_split(tmp_path):
    root = tmp_path / "bccd"
    shutil.copytree(BCCD_MINI, root)
    out = tmp_path / "det"
    assert main(["detect", str(root), "--split", "test", "--model", "demo",
                 "--out", str(out)]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("Blood*.txt"))
    assert written == ["JPEGImages/BloodImage_00007.txt", "JPEGImages/BloodImage_00011.txt"]


def test_a_missing_split_names_the_ones_there(tmp_path, capsys):
    root = make_demo_dataset(tmp_path / "demo", images=6, seed=1, size=96)
    for name in ("train.txt", "valid.txt"):
        (root / name).unlink(missing_ok=True)
    assert main(["anchors", str(root), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "no test split (splits found: none)" in err and "workbench split" in err


def test_stratified_counts_helper_sanity():
    """The per-class counting the other tests rely on sees every class."""
    records = records_with_classes({0: 4, 1: 2})
    assert Counter(b.class_id for r in records for b in r.boxes)[1] == 2
