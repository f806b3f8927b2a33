"""COCO detection JSON import/export and results files, checked against pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
import random

import pytest
from PIL import Image

from workbench.data.folder import open_dataset
from workbench.errors import FormatError
from workbench.formats import ProblemLog
from workbench.formats.coco import (
    parse_coco,
    parse_coco_results,
    read_coco,
    read_coco_results,
    write_coco,
    write_coco_results,
)
from workbench.labels.dataset import Box, ClassList, Dataset, ImageRecord


def _dataset(root, n=6, seed=0):
    rng = random.Random(seed)
    images = []
    for i in range(n):
        w, h = rng.randint(50, 900), rng.randint(50, 900)
        boxes = []
        for _ in range(rng.randint(0, 5)):
            x1, x2 = sorted(rng.uniform(0, w) for _ in range(2))
            y1, y2 = sorted(rng.uniform(0, h) for _ in range(2))
            boxes.append(Box(x1, y1, x2, y2, rng.randrange(3), rng.random() < 0.2))
        images.append(ImageRecord(path=root / "sub" / f"im{i}.jpg", width=w, height=h,
                                  boxes=boxes, labeled=True))
    images.append(ImageRecord(path=root / "todo.jpg", width=10, height=10))  # not labeled
    return Dataset(root=root, classes=ClassList(["car", "bus", "bike"]), images=images)


def test_export_loads_in_pycocotools_with_the_same_boxes(tmp_path):
    from pycocotools.coco import COCO

    dataset = _dataset(tmp_path)
    write_coco(dataset, tmp_path / "annotations.json")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["car", "bus", "bike"]
    assert len(coco.getImgIds()) == 6  # the unlabeled image is not exported
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        record = next(r for r in dataset.images
                      if r.path.relative_to(tmp_path).as_posix() == info["file_name"])
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
        assert len(anns) == len(record.boxes)
        for ann, box in zip(anns, record.boxes, strict=True):
            x, y, w, h = ann["bbox"]
            assert (x, y, x + w, y + h) == pytest.approx(box.xyxy(), abs=1e-8)
            assert ann["category_id"] - 1 == box.class_id
            assert ann["area"] == pytest.approx(w * h)


def test_round_trip_is_exact(tmp_path):
    dataset = _dataset(tmp_path, n=20, seed=4)
    write_coco(dataset, tmp_path / "a.json")
    classes, records = read_coco(tmp_path / "a.json")
    assert classes == dataset.classes
    again = Dataset(root=tmp_path, classes=classes,
                    images=[ImageRecord(path=tmp_path / name, width=r.width, height=r.height,
                                        boxes=r.boxes, labeled=True)
                            for name, r in records.items()])
    write_coco(again, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    _, records_b = read_coco(tmp_path / "b.json")
    for name, record in records.items():
        assert records_b[name].boxes == record.boxes  # exactly equal floats
    original = {r.path.relative_to(tmp_path).as_posix(): r for r in dataset.images if r.labeled}
    for name, record in records.items():
        for a, b in zip(original[name].boxes, record.boxes, strict=True):
            assert b.xyxy() == pytest.approx(a.xyxy(), abs=2e-9)
            assert (a.class_id, a.difficult) == (b.class_id, b.difficult)


FOREIGN = {
    "images": [{"id": 17, "file_name": "x/a.jpg", "width": 100, "height": 50},
               {"id": 3, "file_name": "b.jpg", "width": 20, "height": 20}],
    "annotations": [
        {"id": 1, "image_id": 17, "category_id": 7, "bbox": [10, 5, 20.5, 10], "iscrowd": 0},
        {"id": 2, "image_id": 17, "category_id": 1, "bbox": [0, 0, 100, 50], "iscrowd": 1},
    ],
    "categories": [{"id": 1, "name": "person"}, {"id": 7, "name": "train"}],
}


def test_foreign_file_with_gapped_ids_and_crowd_regions():
    classes, records = parse_coco(json.dumps(FOREIGN).encode(), "f.json")
    assert classes.names == ["person", "train"]
    a, b = records["x/a.jpg"], records["b.jpg"]
    assert a.boxes == [Box(10, 5, 30.5, 15, 1), Box(0, 0, 100, 50, 0, difficult=True)]
    assert (b.labeled, b.boxes, b.width) == (True, [], 20)


@pytest.mark.parametrize("change, element", [
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "annotations[0].bbox"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "annotations[0].bbox"),
    (lambda d: d["annotations"][1].update(image_id=99), "annotations[1].image_id"),
    (lambda d: d["annotations"][0].update(category_id=2), "annotations[0].category_id"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, "3", 4]), "annotations[0].bbox"),
    (lambda d: d["images"][1].pop("width"), "images[1]"),
    (lambda d: d["images"][1].update(height=0), "images[1]"),
    (lambda d: d["images"].append(dict(d["images"][0])), "images[2]"),
    (lambda d: d["categories"].append({"id": 9, "name": "train"}), "categories[2]"),
    (lambda d: d.update(images={}), "images"),
])
def test_bad_entries_are_format_errors_naming_the_element(change, element):
    doc = json.loads(json.dumps(FOREIGN))
    change(doc)
    with pytest.raises(FormatError) as info:
        parse_coco(json.dumps(doc).encode(), "f.json")
    assert info.value.element == element
    assert str(info.value).startswith(f"f.json: <{element}>")


def test_malformed_json_names_the_line():
    with pytest.raises(FormatError) as info:
        parse_coco(b'{"images": [],\n "annotations": [,]}', "f.json")
    assert info.value.line == 2


def test_not_coco_and_nan_are_errors():
    with pytest.raises(FormatError, match="no 'annotations'"):
        parse_coco(b'{"images": [], "categories": []}', "f.json")
    with pytest.raises(FormatError, match="NaN"):
        parse_coco(b'{"images": [], "categories": [], "annotations": [NaN]}', "f.json")


def test_lenient_reading_skips_only_the_bad_annotation():
    doc = json.loads(json.dumps(FOREIGN))
    doc["annotations"][0]["bbox"] = [1, 2]
    log = ProblemLog(strict=False)
    _, records = parse_coco(json.dumps(doc).encode(), "f.json", log)
    assert len(records["x/a.jpg"].boxes) == 1 and log.errors[0].element == "annotations[0].bbox"


def test_coco_folder_opens_as_a_dataset(tmp_path):
    (tmp_path / "x").mkdir()
    Image.new("RGB", (100, 50)).save(tmp_path / "x" / "a.jpg")
    Image.new("RGB", (20, 20)).save(tmp_path / "b.jpg")
    Image.new("RGB", (20, 20)).save(tmp_path / "c.jpg")
    (tmp_path / "annotations.json").write_text(json.dumps(FOREIGN))
    dataset = open_dataset(tmp_path)
    assert dataset.label_format == "coco" and dataset.classes.names == ["person", "train"]
    records = {r.path.relative_to(tmp_path.resolve()).as_posix(): r for r in dataset.images}
    assert len(records["x/a.jpg"].boxes) == 2 and records["b.jpg"].labeled
    assert not records["c.jpg"].labeled and dataset.problems == []


def test_results_file_reads_and_pycocotools_accepts_what_we_write(tmp_path):
    from pycocotools.coco import COCO

    dataset = _dataset(tmp_path, n=3, seed=2)
    write_coco(dataset, tmp_path / "gt.json")
    rows = [{"image_id": 1, "category_id": 2, "bbox": [1.5, 2, 10, 20], "score": 0.9},
            {"image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.25}]
    write_coco_results(tmp_path / "res.json", rows)
    assert read_coco_results(tmp_path / "res.json") == [
        {**r, "bbox": [float(v) for v in r["bbox"]]} for r in rows]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "gt.json"))
        res = gt.loadRes(str(tmp_path / "res.json"))
    assert len(res.getAnnIds()) == 2


@pytest.mark.parametrize("data, element", [
    (b'{"a": 1}', "results"),
    (b'[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}]', "[0]"),
    (b'[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 1}]', "[0].bbox"),
    (b'[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "hi"}]',
     "[0].score"),
    (b'[{"image_id": 1, "category_id": true, "bbox": [0, 0, 1, 1], "score": 1}]',
     "[0].category_id"),
])
def test_bad_results_files_are_format_errors(data, element):
    with pytest.raises(FormatError) as info:
        parse_coco_results(data, "res.json")
    assert info.value.element == element
