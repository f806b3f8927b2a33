"""Drawing, selecting, moving, resizing and nudging boxes with real mouse and key events."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import drag, mouse
from workbench.data.folder import open_dataset


def _close(a, b, tol=1.0):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_draw_box_with_mouse_and_save_writes_the_label_file(open_window, demo, qtbot):
    w = open_window(demo)
    record = w.session.record
    before = len(record.boxes)
    qtbot.keyClick(w.canvas, Qt.Key.Key_W)
    assert w.canvas.mode == "draw"
    drag(w.canvas, (20, 30), (80, 100))
    assert len(record.boxes) == before + 1
    assert _close(record.boxes[-1].xyxy(), (20, 30, 80, 100))
    assert w.canvas.mode == "edit" and w.canvas.selected() == [before]
    assert w.isWindowModified()
    qtbot.keyClick(w.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert not w.isWindowModified()
    reread = open_dataset(demo).images[0]
    assert len(reread.boxes) == before + 1
    assert _close(reread.boxes[-1].xyxy(), (20, 30, 80, 100))


def test_box_drawn_past_the_edge_is_clipped_to_the_image(open_window, demo, qtbot):
    w = open_window(demo)
    w.start_drawing()
    mouse(w.canvas, "press", 100, 100)
    mouse(w.canvas, "move", 400, 400)   # far outside the 160 px image
    mouse(w.canvas, "release", 400, 400)
    assert _close(w.session.record.boxes[-1].xyxy(), (100, 100, 160, 160))


def test_resize_by_handle_and_move_by_drag_then_undo_redo(open_window, demo, qtbot):
    w = open_window(demo)
    box = w.session.record.boxes[0]
    original = box.xyxy()
    cx, cy = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
    mouse(w.canvas, "press", cx, cy)
    mouse(w.canvas, "release", cx, cy)
    assert w.canvas.selected() == [0]
    drag(w.canvas, (box.x2, box.y2), (box.x2 + 12, box.y2 + 8))   # bottom-right handle
    resized = box.xyxy()
    assert _close(resized, (original[0], original[1], original[2] + 12, original[3] + 8))
    drag(w.canvas, (cx, cy), (cx - 5, cy + 6))                      # the body
    assert _close(box.xyxy(), (resized[0] - 5, resized[1] + 6, resized[2] - 5, resized[3] + 6))
    qtbot.keyClick(w.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert _close(box.xyxy(), resized, 1e-9)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert box.xyxy() == original
    assert not w.isWindowModified()  # back at what is on disk
    qtbot.keyClick(w.canvas, Qt.Key.Key_Z,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert _close(box.xyxy(), resized, 1e-9)


def test_arrow_keys_nudge_and_consecutive_nudges_undo_as_one(open_window, demo, qtbot):
    w = open_window(demo)
    box = w.session.record.boxes[0]
    original = box.xyxy()
    w.canvas.select([0])
    qtbot.keyClick(w.canvas, Qt.Key.Key_Left)
    qtbot.keyClick(w.canvas, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert box.xyxy() == pytest.approx((original[0] - 1, original[1] + 10,
                                        original[2] - 1, original[3] + 10))
    w.session.undo_group.undo()
    assert box.xyxy() == original


def test_duplicate_class_keys_difficult_delete(open_window, demo, qtbot):
    w = open_window(demo)
    record = w.session.record
    n = len(record.boxes)
    w.canvas.select([0])
    qtbot.keyClick(w.canvas, Qt.Key.Key_D, Qt.KeyboardModifier.ControlModifier)
    assert len(record.boxes) == n + 1 and w.canvas.selected() == [n]
    assert record.boxes[n].x1 == pytest.approx(min(record.boxes[0].x1 + 10,
                                                   160 - record.boxes[0].width))
    qtbot.keyClick(w.canvas, Qt.Key.Key_3)
    assert record.boxes[n].class_id == 2 and w.session.current_class == 2
    qtbot.keyClick(w.canvas, Qt.Key.Key_T)
    assert record.boxes[n].difficult
    qtbot.keyClick(w.canvas, Qt.Key.Key_Delete)
    assert len(record.boxes) == n
    for _ in range(4):
        w.session.undo_group.undo()
    assert len(record.boxes) == n and not w.session.is_dirty()


def test_undo_history_belongs_to_each_image(open_window, demo, qtbot):
    w = open_window(demo)
    first = w.session.record
    w.session.add_box((10, 10, 40, 40))
    qtbot.keyClick(w.canvas, Qt.Key.Key_D)              # autosaves image 1
    assert w.session.index == 1
    second = w.session.record
    n2 = len(second.boxes)
    w.session.add_box((50, 50, 90, 90))
    w.session.undo_group.undo()
    assert len(second.boxes) == n2
    assert not w.session.undo_group.canUndo()            # image 1's history ends here
    qtbot.keyClick(w.canvas, Qt.Key.Key_A)
    assert w.session.record is first
    w.session.undo_group.undo()                          # image 0's box goes
    assert all(b.xyxy() != (10, 10, 40, 40) for b in first.boxes)


def test_zoom_fit_and_actual_size(open_window, demo, qtbot):
    w = open_window(demo)
    fitted = w.canvas.zoom()
    qtbot.keyClick(w.canvas, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert w.canvas.zoom() == pytest.approx(1.0)
    w.canvas.zoom_by(2.0)
    assert w.canvas.zoom() == pytest.approx(2.0)
    qtbot.keyClick(w.canvas, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert w.canvas.zoom() == pytest.approx(fitted)
