"""Issue 23's window items, on real widgets, files and models: multi-selection in the image
list, every dock reset by another folder, status messages kept, the layout on small screens
and its memory, nothing cut in the Train and Inspect docks, no idle step counts, a kept box
drawn once, prediction sets written from outside, an export into a new folder."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from tests.ui.conftest import wait_idle
from workbench.cli import main as cli
from workbench.data.synth import make_demo_dataset

RUN_MS = 60_000
ROOT = Path(__file__).resolve().parents[2]


def detect_out(root: Path, name: str, *extra: str) -> Path:
    """``workbench detect ROOT --model demo --out ROOT/.predictions/NAME``, as a user runs it."""
    out = root / ".predictions" / name
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli(["detect", str(root), "--model", "demo", "--out", str(out), *extra]) == 0
    return out


def iou(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0) * max(h, 0)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def click_row(qtbot, w, row: int, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    view = w.images.list
    index = w.images.filter.mapFromSource(w.images.model.index(row, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, modifier,
                     view.visualRect(index).center())


# --- 11: multi-selection ---------------------------------------------------------------------
def test_ctrl_click_toggles_a_row_and_shift_click_extends_a_range(open_window, demo, qtbot):
    w = open_window(demo)
    ctrl, shift = Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.ShiftModifier
    click_row(qtbot, w, 1)
    assert w.session.index == 1 and w.selected_rows() == [1]
    click_row(qtbot, w, 3, ctrl)                     # adds a row, shows it
    assert w.selected_rows() == [1, 3] and w.session.index == 3
    click_row(qtbot, w, 1, ctrl)                     # takes one away
    assert w.selected_rows() == [3]
    click_row(qtbot, w, 2)                           # a plain click: one row again
    assert w.selected_rows() == [2] and w.session.index == 2
    click_row(qtbot, w, 4, shift)                    # a range from the last clicked row
    assert w.selected_rows() == [2, 3, 4] and w.session.index == 4
    click_row(qtbot, w, 3, ctrl)
    assert w.selected_rows() == [2, 4]
    qtbot.keyClick(w.canvas, Qt.Key.Key_D)           # the keys still move one image
    assert w.session.index == 4 and w.selected_rows() == [4]
    click_row(qtbot, w, 2, shift)                    # the range starts where D went
    assert w.selected_rows() == [2, 3, 4]


# --- 12: another folder ----------------------------------------------------------------------
def test_another_folder_resets_every_dock(open_window, tmp_path, qtbot):
    first = make_demo_dataset(tmp_path / "first", images=6, seed=3, size=160)
    second = make_demo_dataset(tmp_path / "second", images=4, seed=5, size=160)
    detect_out(first, "first-run")
    detect_out(second, "second-run")
    w = open_window(first)
    w.act["evaluate"].trigger()
    evaluator, detect, images = w.evaluator, w.detector_panel, w.images
    assert evaluator.start()
    wait_idle(qtbot, RUN_MS)
    assert evaluator.report is not None and evaluator.table.rowCount() > 0
    images.name_edit.setText("00003")
    images.status_combo.setCurrentIndex(images.status_combo.findData("labeled"))
    detect.set_source_path(first)                    # "A folder…" chosen in the Detect dock
    detect.sets.setCurrentIndex(detect.sets.findData("first-run"))
    detect.rate.setText("6 images in 0:00:01 (6.0 images/s) on cpu")

    w.open_folder(second)                            # Ctrl+U
    qtbot.waitUntil(lambda: w.session.dataset.root == second.resolve(), timeout=10_000)
    wait_idle(qtbot)
    # Evaluate: only this folder's sets, no results of the last one
    assert [evaluator.sets.itemText(i) for i in range(evaluator.sets.count())] == ["second-run"]
    assert evaluator.report is None and evaluator.table.rowCount() == 0
    assert evaluator.errors.count() == 0
    assert evaluator.start()                         # and running it scores this folder
    wait_idle(qtbot, RUN_MS)
    assert evaluator.report is not None, evaluator.summary.text()
    assert evaluator.report.n_images == 4
    # the image list's filters
    assert images.name_edit.text() == "" and images.status_combo.currentData() is None
    assert images.filter.source_rows() == [0, 1, 2, 3]
    # Detect: this folder as the source, its sets, no status of the last run
    assert detect.source.currentData() == "all" and detect.source_path is None
    assert detect.source_label.text() == "4 images"
    assert [detect.sets.itemData(i) for i in range(detect.sets.count())] == [None, "second-run"]
    assert detect.sets.currentData() is None
    assert "6 images" not in detect.rate.text() and not detect.progress.isTextVisible()


# --- 13: status messages ---------------------------------------------------------------------
def test_status_messages_keep_their_full_text_and_time(open_window, demo, qtbot):
    w = open_window(demo)
    bar = w.statusBar()
    opened = bar.currentMessage()
    assert "6 images" in opened and opened in bar.toolTip()   # the full text on hover
    long = "Detect: " + "a long message that no status bar shows whole " * 6 + "END"
    w.detector_panel.status.emit(long)
    assert bar.currentMessage() == long and long in bar.toolTip()
    w.act["messages"].trigger()                      # View > Messages
    log = w._messages_window
    assert log.isVisible()
    lines = log.text.toPlainText().splitlines()
    assert any(line.endswith(opened) for line in lines)
    assert re.fullmatch(r"\d\d:\d\d:\d\d  " + re.escape(long), lines[-1])
    w.evaluator.status.emit("Evaluated something")   # the open log follows
    assert log.text.toPlainText().splitlines()[-1].endswith("Evaluated something")
    bar.clearMessage()                               # gone from the bar, kept on hover
    assert "Evaluated something" in bar.toolTip()
    view = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    assert w.act["messages"] in view.actions()


# --- 14: layout ------------------------------------------------------------------------------
def show_at(qtbot, size: tuple[int, int]):
    from ui.main_window import MainWindow

    w = MainWindow()
    w.ask_discard = lambda what: True
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    qtbot.wait(20)
    return w


@pytest.mark.parametrize("size", [(1024, 700), (1920, 1080)])
def test_the_canvas_gets_most_of_the_window(qtbot, size):
    w = show_at(qtbot, size)
    assert w.canvas.width() >= 0.55 * w.width()
    areas = {w.dockWidgetArea(d) for d in w.docks.values()}
    if size[0] < 1280:                               # small screen: one column of tabs
        assert areas == {Qt.DockWidgetArea.RightDockWidgetArea}
        assert w.docks["images"].isVisible() and not w.docks["classes"].visibleRegion()
        w.act["train"].trigger()                     # a big dock takes a tab, not the canvas
        qtbot.wait(20)
        assert w.docks["train"].isVisible() and w.canvas.width() >= 0.55 * w.width()
    else:
        assert len(areas) == 2 and w.docks["images"].isVisible()
        assert w.docks["classes"].isVisible() and w.docks["stats"].isVisible()
    w.close()


def test_the_users_own_layout_comes_back(qtbot, temp_settings):
    w = show_at(qtbot, (1920, 1080))
    w.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, w.docks["train"])
    w.docks["train"].show()
    w.docks["stats"].hide()
    qtbot.wait(20)
    w.close()                                        # saved on the way out
    assert temp_settings.is_file()
    again = show_at(qtbot, (1024, 700))              # the saved layout wins over the default
    assert again.docks["train"].isVisible() and not again.docks["stats"].isVisible()
    assert again.dockWidgetArea(again.docks["train"]) == Qt.DockWidgetArea.RightDockWidgetArea
    assert again.dockWidgetArea(again.docks["inspect"]) == Qt.DockWidgetArea.LeftDockWidgetArea
    again.close()


# --- 15: nothing cut ---------------------------------------------------------------------------
def test_the_train_table_never_scrolls_sideways_at_its_default_width(qtbot):
    w = show_at(qtbot, (1024, 700))
    w.act["train"].trigger()
    trainer = w.trainer
    for epoch, loss in enumerate((1234.5678, 123.456, 45.678, 9.87654), 1):
        trainer._line(json.dumps({
            "event": "epoch", "epoch": epoch, "step": epoch * 10, "loss": loss,
            "box": loss / 3, "obj": loss / 2, "cls": loss / 7, "lr": 0.00025,
            "val_map50": 0.1234, "val_map50_95": 0.0456, "best_map50": 0.1234,
            "best_map50_95": 0.0456, "eta_s": 12.0}).encode())
    qtbot.wait(20)
    table, header = trainer.table, trainer.table.horizontalHeader()
    assert table.rowCount() == 4
    assert table.horizontalScrollBar().maximum() == 0
    for column in range(header.count()):             # and no column is cut
        texts = [table.item(r, column).text() for r in range(4)]
        widest = max(table.fontMetrics().horizontalAdvance(t) for t in texts)
        assert header.sectionSize(column) >= widest, texts
    assert table.item(0, 1).text() == "1235" and "1234.5678" in table.item(0, 1).toolTip()
    assert table.item(0, 5).text() == "2.5e-4"
    w.close()


def test_long_image_names_are_elided_in_the_middle(open_window, qtbot):
    w = open_window(ROOT / "tests" / "data" / "bccd_mini")   # JPEGImages/BloodImage_000NN.jpg
    for view in (w.images.list, w.evaluator.errors, w.evaluator.cell_images):
        assert view.textElideMode() == Qt.TextElideMode.ElideMiddle


def test_inspect_gives_long_class_names_room_and_a_tooltip(open_window, demo, tmp_path, qtbot):
    model = tmp_path / "long-names"
    shutil.copytree(ROOT / "resources" / "models" / "demo", model)
    names = ["circle, filled", "square", "triangle", "star"]   # cut at the old width
    (model / "demo.names").write_text("\n".join(names) + "\n")
    w = open_window(demo)
    assert w.use_model(str(model))
    w.act["inspect"].trigger()
    panel = w.inspector
    qtbot.waitUntil(lambda: panel.trace is not None, timeout=RUN_MS)
    panel.conf_slider.setValue(1)                    # every class listed
    wait_idle(qtbot)
    rows = range(panel.model.rowCount())
    shown = {panel.model.data(panel.model.index(r, 0)) for r in rows}
    assert names[0] in shown
    header = panel.table.horizontalHeader()
    assert header.sectionSize(0) >= panel.table.fontMetrics().horizontalAdvance(names[0])
    assert panel.table.horizontalScrollBar().maximum() == 0
    row = next(r for r in rows if panel.model.data(panel.model.index(r, 0)) == names[0])
    assert panel.model.data(panel.model.index(row, 0), Qt.ItemDataRole.ToolTipRole) \
        .startswith(names[0])


# --- 16 ------------------------------------------------------------------------------------
def test_no_step_counts_before_a_job_starts(qtbot):
    w = show_at(qtbot, (1280, 800))
    for bar in (w.trainer.progress, w.detector_panel.progress):
        assert not bar.isTextVisible() and "0 / 1" not in bar.text()
    assert "0 / 1" not in w.trainer.latest.text()
    w.close()


def test_a_kept_box_is_drawn_once(open_window, demo, qtbot):
    detect_out(demo, "same-model", "--conf", "0.25", "--nms", "0.45")   # Inspect's defaults
    w = open_window(demo)
    detect = w.detector_panel
    detect.sets_changed_on_disk()
    detect.sets.setCurrentIndex(detect.sets.findData("same-model"))
    predicted = detect.predictions()
    assert predicted and detect.overlay_count() == len(predicted)
    w.act["inspect"].trigger()                       # Inspect over the same image
    qtbot.waitUntil(lambda: w.inspector.trace is not None, timeout=RUN_MS)
    overlay = w.canvas.overlay
    assert overlay.kept and len(overlay.kept_names) == len(overlay.kept)
    drawn = [item.corners() for item in detect._items]
    assert len(drawn) < len(predicted)               # what Inspect draws is not drawn again
    for (rect, _, _), name in zip(overlay.kept, overlay.kept_names, strict=True):
        kept = (rect.left(), rect.top(), rect.right(), rect.bottom())
        same = [b for b, _, n in predicted if n == name and iou(b.xyxy(), kept) >= 0.95]
        assert not [d for d in drawn if any(iou(d, b.xyxy()) >= 0.95 for b in same)]
    w.docks["inspect"].hide()                        # Inspect gone: the set draws them all
    qtbot.wait(20)
    assert detect.overlay_count() == len(predicted)


def test_a_set_written_from_outside_appears(open_window, demo, qtbot):
    w = open_window(demo)
    assert w.detector_panel.sets.findData("from-cli") < 0
    detect_out(demo, "from-cli")                     # `workbench detect --out` meanwhile
    qtbot.waitUntil(lambda: w.detector_panel.sets.findData("from-cli") >= 0, timeout=10_000)
    qtbot.waitUntil(lambda: w.evaluator.sets.findText("from-cli") >= 0, timeout=10_000)
    detect_out(demo, "second")                       # .predictions exists now: watched too
    qtbot.waitUntil(lambda: w.detector_panel.sets.findData("second") >= 0, timeout=10_000)


def test_export_into_a_folder_that_does_not_exist_yet(open_window, demo, tmp_path, qtbot):
    from ui.folder_dialog import NewFolderDialog

    w = open_window(demo)
    panel = w.detector_panel
    w.act["detect"].trigger()
    wait_idle(qtbot, RUN_MS)                         # the model loads when the dock shows
    panel.set_name.setText("to-export")
    assert panel.run()
    qtbot.waitUntil(lambda: not panel.running(), timeout=RUN_MS)
    wait_idle(qtbot, RUN_MS)
    assert panel.sets.currentData() == "to-export"
    qtbot.mouseClick(panel.export_button, Qt.MouseButton.LeftButton)   # Export…
    dialog = panel.findChild(NewFolderDialog)
    assert dialog is not None and dialog.isVisible()   # open, the window goes on
    dialog.setDirectory(str(tmp_path))
    dialog.findChild(QLineEdit, "fileNameEdit").setText("exports/new")   # typed: not there yet
    dialog.accept()
    wait_idle(qtbot, RUN_MS)
    out = tmp_path / "exports" / "new"
    assert out.is_dir() and len(list(out.glob("*.txt"))) >= 6


def test_evaluate_lists_no_linked_prediction_set(tmp_path):
    """A `.predictions/NAME` link to a folder outside is no set of this data set (21.7)."""
    from ui.panels.evaluate_panel import prediction_sets
    from workbench.predictions.sets import PREDICTIONS_DIR

    root = tmp_path / "ds"
    (root / PREDICTIONS_DIR / "real").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (root / PREDICTIONS_DIR / "linked").symlink_to(outside, target_is_directory=True)
    assert [p.name for p in prediction_sets(root)] == ["real"]
