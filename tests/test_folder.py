"""Opening dataset folders, saving labels and classes, EXIF orientation in every format."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from workbench.data.folder import open_dataset, save_classes, save_labels
from workbench.data.images import load_bgr
from workbench.errors import FormatError, ImageError, WorkbenchError
from workbench.formats.coco import read_coco, write_coco
from workbench.formats.voc import read_voc
from workbench.formats.yolo import read_yolo
from workbench.labels.dataset import Box, ClassList, Dataset


def _image(path, size=(64, 48), orientation=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, (200, 40, 40))
    if orientation is None:
        img.save(path)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.save(path, exif=exif.tobytes())
    return path


def _yolo_set(root, n=3):
    for i in range(n):
        _image(root / f"img{i}.jpg")
        (root / f"img{i}.txt").write_text(f"{i % 2} 0.500000 0.500000 0.250000 0.500000\n")
    (root / "classes.txt").write_text("cat\ndog\n")
    return root


def test_yolo_folder_opens_with_classes_sizes_and_boxes(tmp_path):
    dataset = open_dataset(_yolo_set(tmp_path))
    assert isinstance(dataset, Dataset)
    assert dataset.root == tmp_path.resolve() and dataset.label_format == "yolo"
    assert dataset.classes.names == ["cat", "dog"] and dataset.problems == []
    assert [r.name for r in dataset.images] == ["img0.jpg", "img1.jpg", "img2.jpg"]
    record = dataset.images[1]
    assert (record.width, record.height, record.labeled) == (64, 48, True)
    assert record.boxes == [Box(24.0, 12.0, 40.0, 36.0, 1)]


def test_missing_label_is_not_labeled_and_empty_label_is_labeled_with_nothing(tmp_path):
    _yolo_set(tmp_path, 1)
    _image(tmp_path / "sub" / "new.png")
    _image(tmp_path / "sub" / "empty.png")
    (tmp_path / "sub" / "empty.txt").write_text("")
    records = {r.name: r for r in open_dataset(tmp_path).images}
    assert (records["new.png"].labeled, records["new.png"].boxes) == (False, [])
    assert (records["empty.png"].labeled, records["empty.png"].boxes) == (True, [])


def test_folder_with_bad_files_loads_the_good_ones_and_lists_the_bad(tmp_path):
    _yolo_set(tmp_path, 4)
    (tmp_path / "img1.txt").write_text("0 0.5 0.5 nan 0.1\n1 0.5 0.5 0.1 0.1\n")
    (tmp_path / "img2.txt").write_text("7 0.5 0.5 0.1 0.1\n")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "broken.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    dataset = open_dataset(tmp_path)
    records = {r.name: r for r in dataset.images}
    assert len(records) == 5
    assert records["img0.jpg"].problems == [] and len(records["img0.jpg"].boxes) == 1
    assert len(records["img3.jpg"].boxes) == 1
    assert [b.class_id for b in records["img1.jpg"].boxes] == [1]  # the good line survives
    assert records["img2.jpg"].boxes == []
    assert all(isinstance(p, FormatError) for p in dataset.problems)
    where = sorted((p.path.name, p.line) for p in dataset.problems)
    assert ("img1.txt", 1) in where and ("img2.txt", 1) in where
    assert any(isinstance(p, ImageError) and p.path.name == "broken.jpg"
               for p in dataset.problems)
    assert "out of range" in records["img2.jpg"].problems[0]
    assert records["broken.jpg"].problems


def test_classes_are_never_rewritten_when_opening_and_saving(tmp_path):
    _yolo_set(tmp_path, 2)
    (tmp_path / "classes.txt").write_bytes(b"cat\r\ndog\r\n")
    dataset = open_dataset(tmp_path)
    record = dataset.images[0]
    record.boxes.append(Box(1, 1, 10, 10, 1))
    save_labels(dataset, record)
    assert (tmp_path / "classes.txt").read_bytes() == b"cat\r\ndog\r\n"  # untouched
    dataset.classes.append("bird")
    record.boxes.append(Box(2, 2, 9, 9, 2))
    save_labels(dataset, record)
    assert (tmp_path / "classes.txt").read_text() == "cat\ndog\nbird\n"  # appended only
    assert open_dataset(tmp_path).images[0].boxes[-1].class_id == 2


def test_save_refuses_when_classes_txt_changed_differently_on_disk(tmp_path):
    _yolo_set(tmp_path, 1)
    dataset = open_dataset(tmp_path)
    (tmp_path / "classes.txt").write_text("dog\ncat\n")  # someone re-ordered it
    dataset.classes.append("bird")
    with pytest.raises(WorkbenchError, match="save the class list first"):
        save_labels(dataset, dataset.images[0])
    assert (tmp_path / "classes.txt").read_text() == "dog\ncat\n"
    save_classes(dataset)
    assert (tmp_path / "classes.txt").read_text() == "cat\ndog\nbird\n"


def test_rename_is_saved_with_save_classes(tmp_path):
    _yolo_set(tmp_path, 1)
    dataset = open_dataset(tmp_path)
    dataset.classes.rename(0, "kitten")
    assert save_classes(dataset) == tmp_path.resolve() / "classes.txt"
    assert open_dataset(tmp_path).classes.names == ["kitten", "dog"]


def test_saving_over_a_damaged_label_file_keeps_a_backup(tmp_path):
    _yolo_set(tmp_path, 1)
    bad = b"0 0.5 0.5 0.1 0.1\nthis line is not yolo\n"
    (tmp_path / "img0.txt").write_bytes(bad)
    dataset = open_dataset(tmp_path)
    save_labels(dataset, dataset.images[0])
    assert (tmp_path / "img0.txt.bak").read_bytes() == bad
    assert (tmp_path / "img0.txt").read_text() == "0 0.500000 0.500000 0.100000 0.100000\n"
    save_labels(dataset, dataset.images[0])  # a clean file now: no second backup
    assert not (tmp_path / "img0.txt.bak1").exists()


def test_a_failed_backup_is_tried_again_on_the_next_save(tmp_path, monkeypatch):
    import workbench.data.folder as folder_module

    _yolo_set(tmp_path, 1)
    bad = b"0 0.5 0.5 0.1 0.1\nthis line is not yolo\n"
    (tmp_path / "img0.txt").write_bytes(bad)
    dataset = open_dataset(tmp_path)
    real = folder_module.atomic_write_bytes

    def disk_full(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder_module, "atomic_write_bytes", disk_full)
    with pytest.raises(OSError):
        save_labels(dataset, dataset.images[0])
    assert (tmp_path / "img0.txt").read_bytes() == bad
    monkeypatch.setattr(folder_module, "atomic_write_bytes", real)
    save_labels(dataset, dataset.images[0])  # the retry still keeps the damaged bytes
    assert (tmp_path / "img0.txt.bak").read_bytes() == bad


def test_first_save_in_an_unlabeled_folder_writes_classes_and_labels(tmp_path):
    _image(tmp_path / "a.jpg")
    dataset = open_dataset(tmp_path)
    assert dataset.label_format == "none" and not dataset.images[0].labeled
    dataset.classes.append("thing")
    record = dataset.images[0]
    record.boxes = [Box(0, 0, 32, 24, 0)]
    save_labels(dataset, record)
    assert dataset.label_format == "yolo" and record.labeled
    assert (tmp_path / "classes.txt").read_text() == "thing\n"
    assert (tmp_path / "a.txt").read_text() == "0 0.250000 0.250000 0.500000 0.500000\n"


def test_save_rejects_records_outside_the_dataset_and_bad_class_ids(tmp_path):
    _yolo_set(tmp_path / "data", 1)
    dataset = open_dataset(tmp_path / "data")
    from workbench.labels.dataset import ImageRecord

    stray = ImageRecord(path=_image(tmp_path / "elsewhere.jpg"), width=64, height=48)
    with pytest.raises(WorkbenchError, match="not inside the dataset"):
        save_labels(dataset, stray)
    assert not (tmp_path / "elsewhere.txt").exists()
    record = dataset.images[0]
    record.boxes.append(Box(0, 0, 5, 5, 9))
    with pytest.raises(WorkbenchError, match="class id 9"):
        save_labels(dataset, record)


def test_voc_folder_without_a_class_list_builds_one_sorted(tmp_path):
    for name, cls in (("a", "zebra"), ("b", "ant")):
        _image(tmp_path / f"{name}.jpg")
        (tmp_path / f"{name}.xml").write_text(
            f"<annotation><object><name>{cls}</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
            "<xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>")
    dataset = open_dataset(tmp_path)
    assert dataset.label_format == "voc" and dataset.classes.names == ["ant", "zebra"]
    assert [r.boxes[0].class_id for r in dataset.images] == [1, 0]


def test_voc_unknown_classes_reported_then_adopted_on_request(tmp_path):
    _image(tmp_path / "a.jpg")
    (tmp_path / "classes.txt").write_text("cat\n")
    (tmp_path / "a.xml").write_text(
        "<annotation><object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>4</xmax>"
        "<ymax>4</ymax></bndbox></object><object><name>owl</name><bndbox><xmin>1</xmin>"
        "<ymin>1</ymin><xmax>4</xmax><ymax>4</ymax></bndbox></object></annotation>")
    dataset = open_dataset(tmp_path)
    assert dataset.classes.names == ["cat"] and dataset.classes.unknown == ["owl"]
    assert len(dataset.images[0].boxes) == 1
    assert any("owl" in str(p) and p.element == "object[2]/name" for p in dataset.problems)
    adopted = open_dataset(tmp_path, adopt_unknown_classes=True)
    assert adopted.classes.names == ["cat", "owl"] and adopted.problems == []
    assert [b.class_id for b in adopted.images[0].boxes] == [0, 1]
    assert (tmp_path / "classes.txt").read_text() == "cat\n"  # nothing written by opening


def test_auto_detection_picks_the_format_with_more_files(tmp_path):
    _yolo_set(tmp_path, 2)
    save_labels(open_dataset(tmp_path), open_dataset(tmp_path).images[0], ("voc",))
    assert open_dataset(tmp_path).label_format == "yolo"
    assert open_dataset(tmp_path, "voc").label_format == "voc"
    assert open_dataset(tmp_path, "none").images[0].labeled is False


def test_verified_flag_round_trips_through_voc(tmp_path):
    _yolo_set(tmp_path, 1)
    dataset = open_dataset(tmp_path)
    dataset.images[0].verified = True
    save_labels(dataset, dataset.images[0], ("voc",))
    assert open_dataset(tmp_path, "voc").images[0].verified is True


def test_split_files_map_to_records_and_bad_entries_are_listed(tmp_path):
    _yolo_set(tmp_path, 3)
    (tmp_path / "train.txt").write_text(f"img0.jpg\r\n./img1.jpg\n{tmp_path / 'img2.jpg'}\n")
    (tmp_path / "valid.txt").write_text("data/obj/img2.jpg\nghost.jpg\n")
    dataset = open_dataset(tmp_path)
    assert [r.name for r in dataset.split["train"]] == ["img0.jpg", "img1.jpg", "img2.jpg"]
    assert [r.name for r in dataset.split["valid"]] == ["img2.jpg"]
    (problem,) = dataset.problems
    assert problem.path.name == "valid.txt" and problem.line == 2


def test_utf8_file_names_and_hidden_temp_files(tmp_path):
    _image(tmp_path / "été" / "chat noir 猫.jpg")
    (tmp_path / "été" / "chat noir 猫.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (tmp_path / "été" / ".chat noir 猫.txt.abc123.tmp").write_text("garbage")
    (tmp_path / "classes.txt").write_text("chat\n")
    dataset = open_dataset(tmp_path)
    (record,) = dataset.images
    assert record.name == "chat noir 猫.jpg" and len(record.boxes) == 1
    assert dataset.problems == []


def test_yolo_without_classes_file_names_classes_by_number(tmp_path):
    _image(tmp_path / "a.jpg")
    (tmp_path / "a.txt").write_text("2 0.5 0.5 0.1 0.1\n")
    dataset = open_dataset(tmp_path)
    assert dataset.classes.names == ["0", "1", "2"]
    assert "no class list file" in str(dataset.problems[0])


def test_darknet_obj_names_is_the_class_list_when_there_is_no_classes_txt(tmp_path):
    _yolo_set(tmp_path, 1)
    (tmp_path / "classes.txt").rename(tmp_path / "obj.names")
    dataset = open_dataset(tmp_path)
    assert dataset.classes.names == ["cat", "dog"]
    dataset.classes.append("bird")
    save_classes(dataset)
    assert (tmp_path / "obj.names").read_text() == "cat\ndog\nbird\n"
    assert not (tmp_path / "classes.txt").exists()


def test_not_a_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        open_dataset(tmp_path / "nowhere")


def test_progress_is_reported(tmp_path):
    seen = []
    open_dataset(_yolo_set(tmp_path, 3), progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


# --- EXIF orientation 6: the image is shown turned 90 degrees clockwise -----------------------

def test_exif_rotated_image_has_size_and_boxes_in_the_rotated_frame_in_every_format(tmp_path):
    # stored 80 wide x 40 high; orientation 6 shows it 40 wide x 80 high
    path = _image(tmp_path / "phone.jpg", size=(80, 40), orientation=6)
    assert load_bgr(path).shape[:2] == (80, 40)
    (tmp_path / "classes.txt").write_text("thing\n")
    dataset = open_dataset(tmp_path)
    (record,) = dataset.images
    assert (record.width, record.height) == (40, 80)
    box = Box(4.0, 60.0, 36.0, 76.0, 0)  # low in the shown image: only fits when 80 high
    record.boxes = [box]
    save_labels(dataset, record, ("yolo", "voc"))
    # YOLO: normalized by the shown size
    assert read_yolo(tmp_path / "phone.txt", 40, 80, 1) == [box]
    assert (tmp_path / "phone.txt").read_text() == "0 0.500000 0.850000 0.800000 0.200000\n"
    # VOC: <size> is the shown size, corners in the shown frame
    ann = read_voc(tmp_path / "phone.xml")
    assert (ann.width, ann.height) == (40, 80)
    assert (ann.objects[0].x1, ann.objects[0].y2) == (4, 76)
    # COCO: width/height and bbox in the shown frame
    write_coco(dataset, tmp_path / "coco.json")
    doc = json.loads((tmp_path / "coco.json").read_text())
    assert (doc["images"][0]["width"], doc["images"][0]["height"]) == (40, 80)
    assert doc["annotations"][0]["bbox"] == [4, 60, 32, 16]
    _, records = read_coco(tmp_path / "coco.json")
    assert records["phone.jpg"].boxes == [box]
    # and each reopens to the same box, no clipping warnings
    for fmt in ("yolo", "voc"):
        reopened = open_dataset(tmp_path, fmt)
        assert reopened.images[0].boxes == [box] and reopened.images[0].problems == []


def test_classes_are_independent_objects_per_dataset(tmp_path):
    a = open_dataset(_yolo_set(tmp_path / "a", 1))
    b = open_dataset(_yolo_set(tmp_path / "b", 1))
    a.classes.append("x")
    assert b.classes == ClassList(["cat", "dog"])
