"""The annotator's bugs of issue 13 (bugs 3-8 and 10), each driven through the real window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from tests.ui.conftest import wait_idle


def click_row(view, row: int, qtbot) -> None:
    index = view.model().index(row, 0)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.visualRect(index).center())


# --- bug 5: the first (or only) filtered result ignored a click -----------------------------
def test_clicking_the_only_filtered_result_opens_it(open_window, demo, qtbot):
    w = open_window(demo)
    assert w.session.index == 0
    qtbot.keyClicks(w.images.name_edit, "img_00003")
    assert w.images.filter.rowCount() == 1
    click_row(w.images.list, 0, qtbot)
    wait_idle(qtbot)
    assert w.session.record.name == "img_00003.jpg"
    # and the first of several results too
    w.images.name_edit.clear()
    qtbot.keyClicks(w.images.name_edit, "img_0000")
    w.go_to(5)
    w.images.name_edit.clear()
    qtbot.keyClicks(w.images.name_edit, "img_0000")   # image 5 is shown, typed again: refilter
    click_row(w.images.list, 0, qtbot)
    wait_idle(qtbot)
    assert w.session.index == 0


# --- bug 6: the image list sorted lexicographically (raccoon-3 was item 124) ---------------
def test_image_list_is_in_natural_order(open_window, tmp_path, qtbot):
    from PIL import Image

    folder = tmp_path / "raccoons"
    folder.mkdir()
    for n in (1, 2, 3, 10, 11, 20, 100):
        Image.new("RGB", (32, 24), "white").save(folder / f"raccoon-{n}.jpg")
    Image.new("RGB", (32, 24), "white").save(folder / "Raccoon-7.jpg")  # case does not split
    w = open_window(folder)
    model = w.images.list.model()
    shown = [model.index(r, 0).data().split(". ", 1)[1] for r in range(model.rowCount())]
    assert shown == [f"{'R' if n == 7 else 'r'}accoon-{n}.jpg"
                     for n in (1, 2, 3, 7, 10, 11, 20, 100)]


def reopen(open_window, folder: Path, old) -> object:
    old.close()
    return open_window(folder)


# --- bug 7: "verified" was lost on reopen in YOLO-only data sets ----------------------------
def test_verified_survives_reopening_a_yolo_data_set(open_window, demo, qtbot):
    w = open_window(demo)
    assert w.session.formats == ("yolo",)
    w.go_to(2)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Space)
    assert w.session.record.verified and not w.session.is_dirty()
    assert (demo / "verified.txt").read_text() == "img_00002.jpg\n"
    w = reopen(open_window, demo, w)
    assert [r.verified for r in w.session.dataset.images] == [i == 2 for i in range(6)]
    assert w.images.model.index(2).data(Qt.ItemDataRole.UserRole + 1) == "verified"
    w.go_to(2)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Space)   # Space again: not verified, on disk too
    w = reopen(open_window, demo, w)
    assert not any(r.verified for r in w.session.dataset.images)
    assert (demo / "verified.txt").read_text() == ""


# --- bug 8: VOC depth rewritten as 3; classes.txt written in VOC-only mode ------------------
def test_saving_voc_keeps_depth_and_writes_no_class_list(open_window, tmp_path, qtbot):
    from PIL import Image

    from workbench.formats.voc import read_voc, write_voc
    from workbench.labels.dataset import Box

    folder = tmp_path / "gray"
    folder.mkdir()
    Image.new("L", (120, 80), 128).save(folder / "scan.png")
    write_voc(folder / "scan.xml", [Box(10, 10, 50, 40, 0)], ["crack"], folder / "scan.png",
              120, 80, depth=1)
    Image.new("L", (60, 40), 50).save(folder / "new.png")   # no label yet
    w = open_window(folder)
    assert w.session.formats == ("voc",)
    w.go_to(w.session.dataset.images.index(w.session.dataset.find("scan.png")))
    w.canvas.select([0])
    qtbot.keyClick(w.canvas, Qt.Key.Key_Right)   # nudge the box: an edit to save
    assert w.session.is_dirty()
    qtbot.keyClick(w.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not w.session.is_dirty()
    assert read_voc(folder / "scan.xml").depth == 1
    assert read_voc(folder / "scan.xml").objects[0].name == "crack"
    # a new file of a grayscale image says what the image is
    w.go_to(w.session.dataset.images.index(w.session.dataset.find("new.png")))
    w.session.add_box((5, 5, 30, 30), 0)
    w.save_current()
    assert read_voc(folder / "new.xml").depth == 1
    assert not (folder / "classes.txt").exists() and not (folder / "obj.names").exists()


def propose_here(w, qtbot) -> list:
    qtbot.keyClick(w.canvas, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, 60_000)
    return w.session.current_proposals()


def same_object_pairs(boxes, names, iou: float = 0.5) -> int:
    from workbench.geometry.boxes import iou_matrix

    overlap = iou_matrix([b.xyxy() for b in boxes], [b.xyxy() for b in boxes])
    return sum(1 for i in range(len(boxes)) for j in range(i + 1, len(boxes))
               if overlap[i, j] >= iou and names[boxes[i].class_id] == names[boxes[j].class_id])


# --- bug 3: Propose + Enter on a labeled image duplicated every box -------------------------
def test_proposals_never_duplicate_existing_labels(open_window, tmp_path, qtbot):
    from ui.session import Proposal
    from workbench.data.synth import make_demo_dataset

    root = make_demo_dataset(tmp_path / "d", images=3, seed=5, size=192)
    w = open_window(root)
    record = w.session.record
    labels = [b.xyxy() for b in record.boxes]
    names = w.session.dataset.classes.names
    assert labels and same_object_pairs(record.boxes, names) == 0
    proposals = propose_here(w, qtbot)
    # the demo model finds the labeled shapes again: none of those may be proposed
    from workbench.geometry.boxes import iou_matrix
    for p in proposals:
        same = [j for j, b in enumerate(record.boxes) if names[b.class_id] == p.name]
        assert not same or iou_matrix([p.box.xyxy()], [record.boxes[j].xyxy()
                                                      for j in same]).max() < 0.5
    n = len(record.boxes)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)
    assert len(record.boxes) == n + len(proposals)
    assert same_object_pairs(record.boxes, names) == 0
    # proposals made before the labels existed are skipped on accept
    w.session.set_proposals(w.session.index, [
        Proposal(replace_box(b), 0.9, names[b.class_id]) for b in record.boxes])
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)
    assert len(record.boxes) == n + len(proposals)
    assert w.session.skipped_duplicates == n + len(proposals)


def replace_box(box):
    from dataclasses import replace

    return replace(box, x1=box.x1 + 1)


# --- bug 4: model classes silently added; undo kept them; no way to delete a class ----------
def test_model_classes_map_by_name_ask_and_undo(open_window, tmp_path, qtbot):
    from workbench.data.synth import make_demo_dataset

    root = make_demo_dataset(tmp_path / "d", images=3, seed=6, size=192)
    for label in root.glob("img_*.txt"):
        label.unlink()
    (root / "classes.txt").write_text("blob\ncircle\n")
    w = open_window(root)
    asked = []
    answers = iter(["cancel", "add"])
    w.ask_add_classes = lambda names: asked.append(names) or next(answers)
    proposals = propose_here(w, qtbot)
    new = sorted({p.name for p in proposals} - {"blob", "circle"})
    assert new and "circle" in {p.name for p in proposals}
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)      # asked, cancelled: nothing changes
    assert sorted(asked[0]) == new and not w.session.record.boxes
    assert w.session.dataset.classes.names == ["blob", "circle"]
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)      # asked again, added
    classes = w.session.dataset.classes
    assert classes.names[:2] == ["blob", "circle"] and sorted(classes.names[2:]) == new
    assert (root / "classes.txt").read_text().split() == classes.names
    boxes = w.session.record.boxes
    assert sorted(classes[b.class_id] for b in boxes) == sorted(p.name for p in proposals)
    w.session.undo_group.undo()                      # one undo: boxes and classes go
    assert not w.session.record.boxes and classes is w.session.dataset.classes
    assert w.session.dataset.classes.names == ["blob", "circle"]
    assert (root / "classes.txt").read_text().split() == ["blob", "circle"]
    w.session.undo_group.redo()
    assert sorted(w.session.dataset.classes.names[2:]) == new
    w.session.undo_group.undo()
    # "skip": only the boxes of classes the data set has
    w.ask_add_classes = lambda names: "skip"
    propose_here(w, qtbot)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Return)
    assert {w.session.dataset.classes[b.class_id] for b in w.session.record.boxes} == {"circle"}
    assert w.session.dataset.classes.names == ["blob", "circle"]
    assert all(b.class_id == 1 for b in w.session.record.boxes)   # "circle" by name, not id


def test_delete_class_refused_while_used_then_renumbers(open_window, demo, qtbot):
    names = (demo / "classes.txt").read_text().split()
    original = {p.name: p.read_text() for p in demo.glob("img_*.txt")}
    # an unused class in the middle: "extra" at index 1, the files numbered to match
    (demo / "classes.txt").write_text("\n".join([names[0], "extra", *names[1:]]) + "\n")
    for name, text in original.items():
        lines = [line.split() for line in text.splitlines() if line.strip()]
        (demo / name).write_text("".join(
            f"{int(c) + (int(c) >= 1)} {' '.join(rest)}\n" for c, *rest in lines))
    w = open_window(demo)
    panel = w.classes
    used = sum(b.class_id == 0 for r in w.session.dataset.images for b in r.boxes)
    assert used
    panel.list.setCurrentRow(0)
    with qtbot.waitSignal(panel.edit_failed) as refused:
        qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    assert f"used by {used} box(es)" in refused.args[0]
    assert w.session.dataset.classes.names == [names[0], "extra", *names[1:]]
    panel._confirm_renumber = lambda what: True
    panel.list.setCurrentRow(1)
    qtbot.mouseClick(panel.delete_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot)
    assert w.session.dataset.classes.names == names
    assert (demo / "classes.txt").read_text().split() == names
    assert {p.name: p.read_text() for p in demo.glob("img_*.txt")} == original


# --- bug 10: Inspect squeezed under Statistics; columns scrolled; Soft-NMS ticked; 0.00 ------
def show_inspect(open_window, demo, qtbot):
    w = open_window(demo)
    w.resize(1280, 800)
    qtbot.keyClick(w.canvas, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    wait_idle(qtbot, 30_000)
    panel = w.inspector
    qtbot.waitUntil(lambda: panel.trace is not None, timeout=5_000)
    panel.conf_slider.setValue(panel.conf_slider.minimum())   # every candidate, low ones too
    qtbot.wait(50)
    return w, panel


def test_inspect_dock_has_room_for_rows_columns_and_counts(open_window, demo, qtbot):
    w, panel = show_inspect(open_window, demo, qtbot)
    table = panel.table
    assert w.docks["inspect"].height() >= 0.6 * w.height()
    assert table.viewport().height() // table.rowHeight(0) >= 8   # rows to read, not one
    header = table.horizontalHeader()
    assert header.length() <= table.viewport().width()        # every column without scrolling
    for column in range(header.count()):
        assert header.sectionSize(column) >= header.sectionSizeHint(column)
        assert header.sectionSize(column) >= table.sizeHintForColumn(column) - 1
    assert "TP" in panel.info.text()
    assert panel.info.visibleRegion().boundingRect() == panel.info.rect()
    assert panel.info.height() >= panel.info.heightForWidth(panel.info.width())


def test_soft_nms_unticks_per_class_and_gives_it_back(open_window, demo, qtbot):
    _, panel = show_inspect(open_window, demo, qtbot)
    assert panel.per_class.isChecked()
    panel.method.setCurrentIndex(panel.method.findData("soft-gaussian"))
    # Soft-NMS crosses classes here: the box must not claim otherwise
    assert not panel.per_class.isChecked() and not panel.per_class.isEnabled()
    assert not panel.class_aware()
    panel.method.setCurrentIndex(panel.method.findData("greedy"))
    assert panel.per_class.isChecked() and panel.per_class.isEnabled()


def test_low_scores_are_not_shown_as_zero_on_the_canvas(open_window, demo, qtbot):
    w, panel = show_inspect(open_window, demo, qtbot)
    scores = [float(panel.trace.scores[i]) for i in panel.trace.kept.tolist()]
    assert min(scores) < 0.005
    tags = w.canvas.overlay.kept
    assert len(tags) == len(scores)
    for (_, _, text), score in zip(tags, scores, strict=True):
        shown = float(text.rsplit(" ", 1)[1])
        assert shown > 0 and abs(shown - score) <= 0.1 * score + 0.005
