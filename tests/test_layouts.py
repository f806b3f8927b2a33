"""Data sets as they come: each layout opens in place, and labels written back land in the
same layout and read back equal. The VOC devkit is a few real BCCD files
(tests/data/bccd_mini, MIT); the other layouts are built from them in tmp_path."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from workbench.cli import main
from workbench.data.folder import open_dataset, save_classes, save_labels
from workbench.data.layouts import detect_layout
from workbench.labels.dataset import Box

BCCD_MINI = Path(__file__).parent / "data" / "bccd_mini"
STEMS = ["BloodImage_00000", "BloodImage_00001", "BloodImage_00002", "BloodImage_00003",
         "BloodImage_00007", "BloodImage_00011"]


def reference_boxes(xml: Path) -> list[tuple[str, float, float, float, float]]:
    """The objects of a VOC file read with the standard library, in our pixel-edge
    convention (1-based inclusive pixels: x1 = xmin - 1, x2 = xmax)."""
    found = []
    for obj in ET.parse(xml).getroot().iter("object"):
        bb = obj.find("bndbox")
        xmin, ymin, xmax, ymax = (float(bb.find(t).text) for t in ("xmin", "ymin", "xmax",
                                                                    "ymax"))
        found.append((obj.find("name").text, xmin - 1, ymin - 1, xmax, ymax))
    return found


def named_boxes(dataset) -> dict[str, list[tuple]]:
    """stem -> sorted (class name, x1, y1, x2, y2) rounded to 1e-3 px (YOLO keeps 6 digits)."""
    names = dataset.classes.names
    return {r.path.stem: sorted((names[b.class_id], *(round(v, 3) for v in b.xyxy()))
                                for b in r.boxes)
            for r in dataset.images if r.labeled}


@pytest.fixture
def devkit(tmp_path: Path) -> Path:
    root = tmp_path / "bccd"
    shutil.copytree(BCCD_MINI, root)
    return root


def sibling_layout(devkit: Path, root: Path, images="images", labels="annotations") -> Path:
    """keras-yolo3 / TF object detection: images/ and annotations/ side by side."""
    (root / images).mkdir(parents=True)
    (root / labels).mkdir(parents=True)
    for stem in STEMS:
        shutil.copy(devkit / "JPEGImages" / f"{stem}.jpg", root / images)
        shutil.copy(devkit / "Annotations" / f"{stem}.xml", root / labels)
    return root


def roboflow_layout(devkit: Path, root: Path) -> Path:
    """Roboflow's YOLO export: <split>/images + <split>/labels and a data.yaml whose paths
    start with ../ (which Ultralytics resolves from the dataset folder)."""
    dataset = open_dataset(devkit)
    from workbench.formats.yolo import write_yolo

    for part, folder in (("train", "train"), ("valid", "valid"), ("test", "test")):
        (root / folder / "images").mkdir(parents=True)
        (root / folder / "labels").mkdir(parents=True)
        for record in dataset.split[part]:
            shutil.copy(record.path, root / folder / "images")
            write_yolo(root / folder / "labels" / f"{record.stem}.txt", record.boxes,
                       record.width, record.height)
    (root / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n"
        f"nc: 3\nnames: {dataset.classes.names}\n\n"
        "roboflow:\n  workspace: cells\n  version: 2\n")
    return root


# ---------------------------------------------------------------------- VOC devkit

def test_devkit_opens_in_place_with_its_split_and_a_sorted_class_list(devkit):
    dataset = open_dataset(devkit)
    assert dataset.layout.kind == "voc-devkit"
    assert not dataset.problems
    assert [r.path.stem for r in dataset.images] == STEMS
    assert all(r.labeled for r in dataset.images)
    # no classes.txt: the names come from the XMLs, sorted (the first XML lists WBC first)
    assert dataset.classes.names == ["Platelets", "RBC", "WBC"]
    assert reference_boxes(devkit / "Annotations" / "BloodImage_00000.xml")[0][0] == "WBC"
    expected = {stem: sorted(reference_boxes(devkit / "Annotations" / f"{stem}.xml"))
                for stem in STEMS}
    assert named_boxes(dataset) == expected
    split = {part: [r.path.stem for r in records] for part, records in dataset.split.items()}
    assert split == {"train": ["BloodImage_00001", "BloodImage_00003"],
                     "valid": ["BloodImage_00000", "BloodImage_00002"],
                     "trainval": STEMS[:4],
                     "test": ["BloodImage_00007", "BloodImage_00011"]}


def test_devkit_writes_back_into_annotations(devkit):
    dataset = open_dataset(devkit)
    first, second = dataset.images[0], dataset.images[1]
    removed = first.boxes.pop()
    second.boxes.append(Box(10, 20, 110, 120, dataset.classes.index("WBC")))
    for record in (first, second):
        written = save_labels(dataset, record, formats=("voc",))
        assert devkit / "Annotations" / f"{record.stem}.xml" in written
    assert not list((devkit / "JPEGImages").glob("*.xml"))  # nothing beside the images
    again = open_dataset(devkit)
    assert named_boxes(again) == named_boxes(dataset)
    names = dataset.classes.names
    gone = (names[removed.class_id], *removed.xyxy())
    assert named_boxes(again)[first.stem].count(gone) == \
        named_boxes(open_dataset(BCCD_MINI))[first.stem].count(gone) - 1
    assert ("WBC", 10, 20, 110, 120) in named_boxes(again)[second.stem]


# ---------------------------------------------------------------------- label folder

def test_sibling_images_and_annotations_open_in_place(devkit, tmp_path):
    root = sibling_layout(devkit, tmp_path / "cells")
    dataset = open_dataset(root)
    assert dataset.layout.kind == "label-folder"
    assert dataset.layout.label_root == root / "annotations"
    assert dataset.classes.names == ["Platelets", "RBC", "WBC"]
    assert named_boxes(dataset) == named_boxes(open_dataset(devkit))
    record = dataset.images[2]
    record.boxes = record.boxes[:1]
    save_labels(dataset, record, formats=("voc",))
    assert not list((root / "images").glob("*.xml"))
    assert named_boxes(open_dataset(root)) == named_boxes(dataset)


def test_opening_the_images_folder_says_where_the_labels_are(devkit, tmp_path, capsys):
    root = sibling_layout(devkit, tmp_path / "cells")
    dataset = open_dataset(root / "images")
    assert not any(r.labeled for r in dataset.images)
    [problem] = [str(p) for p in dataset.problems]
    assert "6 VOC files in ../annotations/ not beside the images" in problem
    assert "--labels ../annotations" in problem
    assert main(["stats", str(root / "images")]) == 0
    out = capsys.readouterr().out
    assert "problems    1" in out and "not beside the images" in out
    # the hint works
    labeled = open_dataset(root / "images", labels=root / "annotations")
    assert named_boxes(labeled) == named_boxes(open_dataset(devkit))
    # and convert no longer copies the images without their labels
    assert main(["convert", str(root / "images"), "--to", "yolo",
                 "--out", str(tmp_path / "out")]) == 2
    assert "nothing converted" in capsys.readouterr().err


def test_label_files_named_like_no_image_are_reported(devkit, tmp_path):
    root = sibling_layout(devkit, tmp_path / "alone" / "cells")
    for xml in (root / "annotations").glob("*.xml"):
        xml.rename(xml.with_name("x_" + xml.name))
    dataset = open_dataset(root)
    assert not any(r.labeled for r in dataset.images)
    assert any("6 VOC files in annotations/, but none is named like an image" in str(p)
               for p in dataset.problems)


def test_labelimg_save_dir_with_yolo_labels_and_its_classes_txt(devkit, tmp_path):
    """labelImg's "Change Save Dir": YOLO labels and classes.txt in a folder of their own,
    here outside the image folder, given with --labels."""
    source = open_dataset(devkit)
    images, saved = tmp_path / "photos", tmp_path / "elsewhere" / "saved"
    images.mkdir()
    saved.mkdir(parents=True)
    from workbench.formats.yolo import write_classes, write_yolo

    for record in source.images:
        shutil.copy(record.path, images)
        write_yolo(saved / f"{record.stem}.txt", record.boxes, record.width, record.height)
    write_classes(saved / "classes.txt", ["Platelets", "RBC", "WBC"])
    dataset = open_dataset(images, labels=saved)
    assert dataset.layout.kind == "label-folder" and not dataset.problems
    assert named_boxes(dataset) == named_boxes(source)
    record = dataset.images[0]
    record.boxes.append(Box(1, 2, 30, 40, 0))
    save_labels(dataset, record, formats=("yolo",))
    assert not list(images.glob("*.txt")) and not (images / "classes.txt").exists()
    assert named_boxes(open_dataset(images, labels=saved)) == named_boxes(dataset)
    assert main(["stats", str(images), "--labels", str(saved)]) == 0


# ---------------------------------------------------------------------- Ultralytics

def test_convert_to_ultralytics_and_read_it_back(devkit, tmp_path):
    out = tmp_path / "ul"
    assert main(["convert", str(devkit), "--to", "ultralytics", "--out", str(out)]) == 0
    doc = yaml.safe_load((out / "data.yaml").read_text())
    assert doc["names"] == {0: "Platelets", 1: "RBC", 2: "WBC"} and doc["nc"] == 3
    assert (doc["train"], doc["val"], doc["test"]) == ("images/train", "images/val",
                                                       "images/test")
    assert sorted(p.name for p in (out / "labels" / "val").iterdir()) == [
        "BloodImage_00000.txt", "BloodImage_00002.txt"]
    dataset = open_dataset(out)
    assert dataset.layout.kind == "ultralytics" and not dataset.problems
    assert named_boxes(dataset) == named_boxes(open_dataset(devkit))
    split = {part: [r.path.stem for r in records] for part, records in dataset.split.items()}
    assert split == {"train": ["BloodImage_00001", "BloodImage_00003"],
                     "valid": ["BloodImage_00000", "BloodImage_00002"],
                     "test": ["BloodImage_00007", "BloodImage_00011"]}


def test_roboflow_export_opens_and_writes_back_in_place(devkit, tmp_path):
    root = roboflow_layout(devkit, tmp_path / "rf")
    dataset = open_dataset(root)
    assert dataset.layout.kind == "ultralytics" and not dataset.problems
    assert {p: len(r) for p, r in dataset.split.items()} == {"train": 2, "valid": 2, "test": 2}
    assert named_boxes(dataset) == named_boxes(open_dataset(devkit))
    record = dataset.split["test"][0]
    record.boxes = record.boxes[1:]
    [written] = save_labels(dataset, record, formats=("yolo",))
    assert written == root / "test" / "labels" / f"{record.stem}.txt"
    assert named_boxes(open_dataset(root)) == named_boxes(dataset)
    # a renamed class goes into data.yaml's names; Roboflow's own keys stay
    dataset.classes.rename(0, "PLT")
    save_classes(dataset)
    doc = yaml.safe_load((root / "data.yaml").read_text())
    assert doc["names"] == {0: "PLT", 1: "RBC", 2: "WBC"}
    assert doc["roboflow"] == {"workspace": "cells", "version": 2}
    assert open_dataset(root).classes.names == ["PLT", "RBC", "WBC"]


def test_images_and_labels_folders_without_a_data_yaml(devkit, tmp_path):
    out = tmp_path / "ul"
    main(["convert", str(devkit), "--to", "ultralytics", "--out", str(out)])
    (out / "data.yaml").unlink()
    (out / "classes.txt").write_text("Platelets\nRBC\nWBC\n")
    dataset = open_dataset(out)
    assert dataset.layout.kind == "ultralytics"
    assert named_boxes(dataset) == named_boxes(open_dataset(devkit))
    assert {p: len(r) for p, r in dataset.split.items()} == {"train": 2, "valid": 2, "test": 2}


def test_a_broken_data_yaml_is_a_problem_not_a_crash(devkit, tmp_path):
    out = tmp_path / "ul"
    main(["convert", str(devkit), "--to", "ultralytics", "--out", str(out)])
    (out / "data.yaml").write_text("names: [a, b\ntrain: images/train\n")
    dataset = open_dataset(out)
    assert any("data.yaml" in str(p) and "malformed YAML" in str(p) for p in dataset.problems)
    assert len(dataset.images) == 6  # the files are still found by Ultralytics' folder rule


# ---------------------------------------------------------------------- detection order

def test_labels_beside_the_images_stay_the_default(devkit, tmp_path):
    """Today's layout is untouched: an annotations/ folder does not win over labels beside
    the images."""
    root = sibling_layout(devkit, tmp_path / "cells")
    for stem in STEMS[:2]:
        shutil.copy(root / "annotations" / f"{stem}.xml", root / "images")
    assert detect_layout(root).kind == "beside"


def test_a_folder_of_voc_devkits_says_which_to_open(devkit, tmp_path):
    """VOCdevkit/VOC2007/...: opening VOCdevkit (or JPEGImages) names the devkit to open
    instead of reading Annotations/ as a label folder of JPEGImages' parent."""
    outer = tmp_path / "VOCdevkit"
    shutil.copytree(devkit, outer / "VOC2007")
    for folder in (outer, outer / "VOC2007" / "JPEGImages"):
        dataset = open_dataset(folder)
        assert not any(r.labeled for r in dataset.images)
        [problem] = [str(p) for p in dataset.problems]
        assert "is a VOC devkit; open that folder" in problem
        assert str(outer / "VOC2007") in problem or "VOC2007/ is a VOC devkit" in problem


def test_data_yaml_naming_missing_or_outside_folders_is_reported(devkit, tmp_path):
    out = tmp_path / "ul"
    main(["convert", str(devkit), "--to", "ultralytics", "--out", str(out)])
    elsewhere = tmp_path / "elsewhere" / "images"
    shutil.copytree(out / "images" / "test", elsewhere)
    text = (out / "data.yaml").read_text().replace("test: images/test", f"test: {elsewhere}")
    (out / "data.yaml").write_text(text.replace("val: images/val", "val: images/gone"))
    dataset = open_dataset(out)
    problems = [str(p) for p in dataset.problems]
    assert any("images/gone" in p and "not found" in p for p in problems)
    assert any("2 image(s) named by it lie outside the dataset folder" in p for p in problems)
    assert [r.path.stem for r in dataset.images] == ["BloodImage_00001", "BloodImage_00003"]


def test_a_fresh_folder_of_images_beside_unrelated_text_files_has_no_problem(devkit, tmp_path):
    """Labeling starts from unlabeled photos: notes in a sibling folder or inside are not
    reported as stray labels."""
    photos = tmp_path / "project" / "photos"
    photos.mkdir(parents=True)
    for jpg in (devkit / "JPEGImages").iterdir():
        shutil.copy(jpg, photos)
    for folder in (tmp_path / "project" / "docs", photos / "notes"):
        folder.mkdir()
        (folder / "meeting.txt").write_text("nothing to do with labels\n")
    dataset = open_dataset(photos)
    assert not dataset.problems and not any(r.labeled for r in dataset.images)


def test_training_reads_images_and_annotations_folders_with_their_split(devkit, tmp_path):
    """The issue's case: labelImg VOC in images/ + annotations/, no classes.txt. Training
    gets the classes from the XMLs and the split `workbench split` wrote."""
    from workbench.train.loop import TrainSettings, preflight
    from workbench.train.loop import _load_records as load_records

    root = sibling_layout(devkit, tmp_path / "cells")
    assert main(["split", str(root), "--valid", "0.34", "--seed", "0"]) == 0
    names, train, valid = load_records(TrainSettings(dataset=root))
    assert names == ["Platelets", "RBC", "WBC"]
    assert (len(train), len(valid)) == (4, 2)
    valid_listed = (root / "valid.txt").read_text().split()
    assert sorted(f"images/{r.path.name}" for r in valid) == sorted(valid_listed)
    preflight(TrainSettings(dataset=root / "images", labels=root / "annotations",
                            out=tmp_path / "run"))


def test_labelimg_save_dir_is_flat_when_the_images_are_in_sub_folders(devkit, tmp_path):
    """labelImg opens a folder recursively but saves every label straight into its save dir
    by the image's name."""
    photos, saved = tmp_path / "photos", tmp_path / "saved"
    saved.mkdir()
    for i, stem in enumerate(STEMS):
        day = photos / f"day{i % 2}"
        day.mkdir(parents=True, exist_ok=True)
        shutil.copy(devkit / "JPEGImages" / f"{stem}.jpg", day)
        shutil.copy(devkit / "Annotations" / f"{stem}.xml", saved)
    dataset = open_dataset(photos, labels=saved)
    assert dataset.layout.flat and not dataset.problems
    assert named_boxes(dataset) == named_boxes(open_dataset(devkit))
    record = dataset.images[-1]
    record.boxes = record.boxes[:2]
    [written] = save_labels(dataset, record, formats=("voc",))
    assert written == saved / f"{record.stem}.xml"
    assert named_boxes(open_dataset(photos, labels=saved)) == named_boxes(dataset)
