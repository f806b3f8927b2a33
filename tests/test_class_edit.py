"""Rename, merge and re-order classes: label files rewritten to match, read back for real."""

from __future__ import annotations

import pytest

from workbench.data import class_edit, folder
from workbench.data.synth import make_demo_dataset


@pytest.fixture
def both(tmp_path):
    """A demo dataset labeled in YOLO and VOC, one image with an unreadable label file."""
    root = make_demo_dataset(tmp_path / "d", images=5, seed=1, size=96)
    dataset = folder.open_dataset(root)
    for record in dataset.images:
        folder.save_labels(dataset, record, formats=("yolo", "voc"))
    return root


def _classes_of(dataset):
    return [[dataset.classes[b.class_id] for b in r.boxes] for r in dataset.images]


def test_rename_rewrites_only_voc_files_naming_the_class(both):
    dataset = folder.open_dataset(both)
    yolo_before = {p: p.read_bytes() for p in both.glob("*.txt") if p.name != "classes.txt"}
    uses = [r for r in dataset.images if any(b.class_id == 0 for b in r.boxes)]
    calls = []
    result = class_edit.rename_class(dataset, 0, "ring", progress=lambda d, t: calls.append(d))
    assert sorted(result.rewritten) == sorted(r.path.with_suffix(".xml") for r in uses)
    assert calls == list(range(1, len(uses) + 1))
    assert {p: p.read_bytes() for p in yolo_before} == yolo_before   # indices did not move
    for fmt in ("yolo", "voc"):
        again = folder.open_dataset(both, label_format=fmt)
        assert again.classes.names[0] == "ring"
        assert any("ring" in names for names in _classes_of(again))


def test_merge_renumbers_every_affected_file(both):
    dataset = folder.open_dataset(both)
    before = _classes_of(dataset)
    class_edit.merge_classes(dataset, [1], 3)        # square -> star
    merged = {"square": "star"}
    for fmt in ("yolo", "voc"):
        again = folder.open_dataset(both, label_format=fmt)
        assert again.classes.names == ["circle", "triangle", "star"]
        assert _classes_of(again) == [[merged.get(n, n) for n in names] for names in before]


def test_reorder_with_an_explicit_order(both):
    dataset = folder.open_dataset(both)
    before = _classes_of(dataset)
    class_edit.reorder_classes(dataset, [3, 2, 1, 0])
    again = folder.open_dataset(both)
    assert again.classes.names == ["star", "triangle", "square", "circle"]
    assert _classes_of(again) == before                # same names, new indices
    with pytest.raises(ValueError, match="each of the 4"):
        class_edit.reorder_classes(dataset, [0, 0, 1, 2])


def test_images_whose_labels_did_not_load_are_left_alone(both):
    bad = both / "img_00002.txt"
    bad.write_text("0 0.5 0.5 0.2\n")                  # a malformed line
    (both / "img_00002.xml").unlink()
    dataset = folder.open_dataset(both)
    assert dataset.images[2].problems
    dataset.images[2].boxes.append(type(dataset.images[0].boxes[0])(1, 1, 5, 5, 0))
    result = class_edit.reorder_classes(dataset, [1, 0, 2, 3])
    assert bad.read_text() == "0 0.5 0.5 0.2\n" and result.skipped == [dataset.images[2].path]


def test_bad_requests_change_nothing(both):
    dataset = folder.open_dataset(both)
    snapshot = {p: p.read_bytes() for p in both.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="merge instead"):
        class_edit.rename_class(dataset, 0, "square")
    with pytest.raises(ValueError):
        class_edit.merge_classes(dataset, [7], 0)
    with pytest.raises(ValueError):
        class_edit.remap_classes(dataset, ["a", "b"], {0: 0, 1: 1})
    assert {p: p.read_bytes() for p in both.iterdir() if p.is_file()} == snapshot


def test_add_class_appends_and_saves(both):
    dataset = folder.open_dataset(both)
    assert class_edit.add_class(dataset, "hexagon") == 4
    assert folder.open_dataset(both).classes.names[-1] == "hexagon"


def test_an_image_with_only_a_warning_is_renumbered_like_the_others(both):
    clipped = both / "img_00001.txt"
    lines = clipped.read_text().splitlines()
    k, cx, cy, w, h = lines[0].split()
    lines[0] = f"{k} 0.990000 {cy} 0.200000 {h}"      # sticks out on the right: clipped
    clipped.write_text("\n".join(lines) + "\n")
    dataset = folder.open_dataset(both, "yolo")
    assert dataset.images[1].problems and not dataset.damaged_labels
    before = [b.class_id for b in dataset.images[1].boxes]
    result = class_edit.reorder_classes(dataset, [1, 0, 2, 3])
    assert result.skipped == []
    swap = {0: 1, 1: 0, 2: 2, 3: 3}
    again = folder.open_dataset(both, "yolo")
    assert [b.class_id for b in again.images[1].boxes] == [swap[c] for c in before]


def test_drop_last_forgets_the_names():
    from workbench.labels.dataset import ClassList

    classes = ClassList(["a", "b", "c"])
    assert classes.drop_last(2) == ["b", "c"]
    assert classes.names == ["a"] and classes.index("b") is None
    assert classes.append("c") == 1 and classes.names == ["a", "c"]
