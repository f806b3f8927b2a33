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
