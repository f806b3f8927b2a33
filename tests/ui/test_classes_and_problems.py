"""Class list edits rewrite files; a corrupt image shows a message and the session goes on."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.ui.conftest import wait_idle
from workbench.data.folder import open_dataset


def test_class_rename_from_the_panel_rewrites_voc_files(open_window, demo, qtbot):
    w = open_window(demo)
    w.set_formats(("voc",))
    w.session.save_all()
    for row in range(len(w.session)):       # give every image a VOC file too
        w.session.save(row)
    w.classes.rename_class(0, "ring")
    wait_idle(qtbot)
    assert (demo / "classes.txt").read_text().splitlines()[0] == "ring"
    reread = open_dataset(demo, label_format="voc")
    names = {reread.classes[b.class_id] for r in reread.images for b in r.boxes}
    assert "ring" in names and "circle" not in names
    assert w.canvas.boxes[0].label._text in set(reread.classes.names) | {
        n + " (difficult)" for n in reread.classes.names}


def test_class_merge_renumbers_yolo_files_and_clears_history(open_window, demo, qtbot):
    w = open_window(demo)
    before = open_dataset(demo)
    w.session.add_box((1, 1, 30, 30), class_id=3)
    w.classes.merge_classes([1], 0)                      # square -> circle; 2,3 move up
    wait_idle(qtbot)
    after = open_dataset(demo)
    assert after.classes.names == ["circle", "triangle", "star"]
    expected = {0: 0, 1: 0, 2: 1, 3: 2}
    for old, new in zip(before.images, after.images, strict=True):
        assert [expected[b.class_id] for b in old.boxes] == \
               [b.class_id for b in new.boxes][:len(old.boxes)]
    assert after.images[0].boxes[-1].class_id == 2       # the unsaved edit was saved first
    assert not w.session.undo_group.canUndo()
    assert w.classes.list.count() == 3


def test_adding_a_class_never_moves_indices(open_window, demo, qtbot):
    w = open_window(demo)
    w.classes.add_class("hexagon")
    assert (demo / "classes.txt").read_text().split() == ["circle", "square", "triangle",
                                                          "star", "hexagon"]
    assert w.images.class_combo.count() == 6


def test_corrupt_image_shows_a_message_and_the_session_goes_on(open_window, demo, qtbot):
    data = (demo / "img_00001.jpg").read_bytes()
    (demo / "img_00001.jpg").write_bytes(data[: len(data) // 3])   # truncated JPEG
    w = open_window(demo)
    qtbot.keyClick(w.canvas, Qt.Key.Key_D)
    qtbot.waitUntil(lambda: "img_00001.jpg" in w.canvas._message.text(), timeout=5000)
    assert w.canvas._message.isVisible()
    assert w.session.record.problems
    qtbot.keyClick(w.canvas, Qt.Key.Key_D)
    assert w.session.index == 2
    qtbot.waitUntil(lambda: w.canvas.decoded is not None, timeout=5000)
    assert not w.canvas._message.isVisible()
    wait_idle(qtbot)


def test_a_class_rewrite_blocks_the_window_from_its_first_moment(open_window, demo, qtbot):
    w = open_window(demo)
    w.classes.merge_classes([1], 0)
    dialog = w.classes._progress
    assert dialog is not None and dialog.isVisible()
    assert dialog.windowModality() == Qt.WindowModality.WindowModal
    wait_idle(qtbot)
    qtbot.waitUntil(lambda: w.classes._progress is None, timeout=5_000)
