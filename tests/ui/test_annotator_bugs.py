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

    from workbench.dataset import Box
    from workbench.formats.voc import read_voc, write_voc

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
