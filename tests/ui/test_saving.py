"""No way to lose edits: autosave on switch, on the timer, on close; asking when it is off."""

from __future__ import annotations

from PySide6.QtCore import Qt

from workbench.data.folder import open_dataset


def _boxes_on_disk(root, row):
    return [b.xyxy() for b in open_dataset(root).images[row].boxes]


def test_autosave_on_switch_writes_the_file_and_clears_the_title_mark(open_window, demo, qtbot):
    w = open_window(demo)
    w.session.add_box((10, 10, 50, 50))
    assert w.isWindowModified() and "[*]" in w.windowTitle()
    qtbot.keyClick(w.canvas, Qt.Key.Key_D)
    assert w.session.index == 1 and not w.isWindowModified()
    assert (10, 10, 50, 50) in _boxes_on_disk(demo, 0)


def test_picking_from_the_list_saves_first(open_window, demo, qtbot):
    w = open_window(demo)
    w.session.add_box((5, 5, 25, 30))
    w.images.list.setCurrentIndex(w.images.filter.index(3, 0))
    assert w.session.index == 3
    assert (5, 5, 25, 30) in _boxes_on_disk(demo, 0)


def test_timer_autosaves(open_window, demo, qtbot):
    w = open_window(demo, autosave_ms=50)
    w.session.add_box((5, 5, 25, 30))
    qtbot.waitUntil(lambda: not w.session.is_dirty(), timeout=3000)
    assert (5, 5, 25, 30) in _boxes_on_disk(demo, 0)


def test_closing_saves(open_window, demo, qtbot):
    w = open_window(demo)
    w.session.add_box((7, 7, 27, 37))
    w.close()
    assert (7, 7, 27, 37) in _boxes_on_disk(demo, 0)


def test_with_autosave_off_leaving_asks_cancel_discard_save(open_window, demo, qtbot):
    w = open_window(demo)
    w.act["autosave"].setChecked(False)
    on_disk = _boxes_on_disk(demo, 0)
    answers = []
    w.ask_unsaved = lambda what: answers.pop(0)
    w.session.add_box((10, 10, 50, 50))
    answers.append("cancel")
    assert not w.next_image() and w.session.index == 0 and w.isWindowModified()
    answers.append("discard")
    assert w.next_image() and w.session.index == 1
    assert [b.xyxy() for b in w.session.dataset.images[0].boxes] == on_disk
    assert _boxes_on_disk(demo, 0) == on_disk
    w.session.add_box((20, 20, 60, 60))
    answers.append("cancel")
    w.close()
    assert w.isVisible()                       # cancel keeps the window open
    answers.append("save")
    w.close()
    assert not w.isVisible()
    assert (20, 20, 60, 60) in _boxes_on_disk(demo, 1)


def test_space_verifies_and_voc_records_it(open_window, demo, qtbot):
    w = open_window(demo)
    w.set_formats(("yolo", "voc"))
    qtbot.keyClick(w.canvas, Qt.Key.Key_Space)
    record = w.session.record
    assert record.verified and not w.session.is_dirty()
    xml = record.path.with_suffix(".xml").read_text()
    assert 'verified="yes"' in xml
    assert open_dataset(demo, label_format="voc").images[0].verified


def test_ctrl_s_on_an_unlabeled_image_writes_an_empty_label_file(tmp_path, demo, open_window,
                                                                 qtbot):
    (demo / "img_00002.txt").unlink()
    w = open_window(demo)
    w.go_to(2)
    assert not w.session.record.labeled
    w.next_image()                                       # just looking writes nothing
    assert not (demo / "img_00002.txt").exists()
    w.go_to(2)
    qtbot.keyClick(w.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert (demo / "img_00002.txt").read_text() == ""
    assert open_dataset(demo).images[2].labeled


def test_copy_previous_image_boxes(open_window, demo, qtbot):
    w = open_window(demo)
    first = [b.xyxy() for b in w.session.record.boxes]
    qtbot.keyClick(w.canvas, Qt.Key.Key_D)
    n = len(w.session.record.boxes)
    qtbot.keyClick(w.canvas, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert [b.xyxy() for b in w.session.record.boxes[n:]] == first
    w.session.undo_group.undo()
    assert len(w.session.record.boxes) == n


def test_edits_made_while_another_folder_loads_are_saved_before_it_replaces_them(
        open_window, demo, tmp_path, qtbot, monkeypatch):
    import threading

    import ui.main_window as main_window
    from workbench.data.synth import make_demo_dataset

    other = make_demo_dataset(tmp_path / "other", images=2, seed=4, size=120)
    w = open_window(demo)
    release = threading.Event()
    real_open = main_window._open_dataset

    def slow_open(job, root):
        release.wait(10)
        return real_open(job, root)

    monkeypatch.setattr(main_window, "_open_dataset", slow_open)
    w.open_folder(other)
    assert w.loading()
    w.session.add_box((6, 6, 26, 36))  # the user goes on labeling while it loads
    release.set()
    qtbot.waitUntil(lambda: not w.loading(), timeout=10_000)
    assert w.session.dataset.root == other.resolve()
    assert (6, 6, 26, 36) in _boxes_on_disk(demo, 0)


def test_cancel_while_another_folder_loads_keeps_the_current_dataset_and_edits(
        open_window, demo, tmp_path, qtbot, monkeypatch):
    import threading

    import ui.main_window as main_window
    from workbench.data.synth import make_demo_dataset

    other = make_demo_dataset(tmp_path / "other", images=2, seed=4, size=120)
    w = open_window(demo)
    w.session.autosave = False
    w.ask_unsaved = lambda what: "cancel"
    release = threading.Event()
    real_open = main_window._open_dataset
    monkeypatch.setattr(main_window, "_open_dataset",
                        lambda job, root: release.wait(10) and real_open(job, root))
    w.open_folder(other)
    w.session.add_box((6, 6, 26, 36))
    release.set()
    qtbot.waitUntil(lambda: not w.loading(), timeout=10_000)
    assert w.session.dataset.root == demo.resolve() and w.session.is_dirty()
    assert (6, 6, 26, 36) in [b.xyxy() for b in w.session.record.boxes]
    w.ask_unsaved = lambda what: "discard"  # let the fixture close the window


def test_discard_after_save_undo_and_new_edit_goes_back_to_what_was_saved(
        open_window, demo, qtbot):
    w = open_window(demo)
    w.session.autosave = False
    w.session.add_box((5, 5, 25, 30))
    assert w.save_current()
    w.session.stack().undo()          # back past the save...
    w.session.add_box((40, 40, 60, 60))  # ...and a new edit: the saved state is off the stack
    w.ask_unsaved = lambda what: "discard"
    assert w.go_to(1)
    assert not w.session.is_dirty(0)
    boxes = [b.xyxy() for b in w.session.dataset.images[0].boxes]
    assert boxes == _boxes_on_disk(demo, 0) and (5, 5, 25, 30) in boxes
    w.ask_unsaved = lambda what: "save"
    w.close()
    assert (5, 5, 25, 30) in _boxes_on_disk(demo, 0)


def test_a_failing_autosave_warns_once_then_uses_the_status_bar(open_window, demo, qtbot):
    from PySide6.QtWidgets import QMessageBox

    w = open_window(demo)
    label = demo / "img_00000.txt"
    label.unlink()
    label.mkdir()                                    # the label file cannot be written
    w.session.add_box((5, 5, 25, 30))
    for _ in range(3):
        w.autosave_now()
    boxes = [b for b in w.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and "not saved" in boxes[0].text()
    assert w.session.is_dirty()                      # the edit is still there
    assert "not saved" in w.statusBar().currentMessage()
    label.rmdir()
    w.autosave_now()
    assert not w.session.is_dirty()
    for box in boxes:
        box.close()
