"""The class list dock: pick the class for new boxes; add, rename, merge and re-order classes.

Rename, merge and re-order rewrite the dataset's label files (workbench.data.class_edit) on a
worker behind a progress dialog. Indices only move when the user confirms a merge or a move.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui import workers
from ui.colors import class_color
from ui.session import LabelSession
from workbench.data import class_edit


class ClassPanel(QWidget):
    edit_failed = Signal(str)
    edit_done = Signal(str)

    def __init__(self, session: LabelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.list = QListWidget()
        buttons = {name: QPushButton(name) for name in ("Add", "Rename", "Merge into…", "Up",
                                                         "Down", "Delete")}
        self.delete_button = buttons["Delete"]
        grid = QGridLayout()
        for i, button in enumerate(buttons.values()):
            grid.addWidget(button, i // 3, i % 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addLayout(grid)
        buttons["Add"].clicked.connect(self._ask_add)
        buttons["Rename"].clicked.connect(self._ask_rename)
        buttons["Merge into…"].clicked.connect(self._ask_merge)
        buttons["Up"].clicked.connect(lambda: self._ask_move(-1))
        buttons["Down"].clicked.connect(lambda: self._ask_move(1))
        buttons["Delete"].clicked.connect(self._ask_delete)
        self.list.currentRowChanged.connect(self._row_changed)
        session.dataset_changed.connect(self.refresh)
        session.classes_changed.connect(self.refresh)
        session.current_class_changed.connect(self._show_current_class)
        self._job: workers.Worker | None = None
        self._progress: QProgressDialog | None = None

    def refresh(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        if self.session.dataset is not None:
            for i, name in enumerate(self.session.dataset.classes):
                pixmap = QPixmap(12, 12)
                pixmap.fill(class_color(i))
                key = f"[{i + 1}] " if i < 9 else ""
                QListWidgetItem(QIcon(pixmap), f"{key}{name}", self.list)
        self.list.blockSignals(False)
        self._show_current_class(self.session.current_class)

    def _show_current_class(self, class_id: int) -> None:
        self.list.blockSignals(True)
        self.list.setCurrentRow(class_id if 0 <= class_id < self.list.count() else -1)
        self.list.blockSignals(False)

    def _row_changed(self, row: int) -> None:
        if row >= 0:
            self.session.set_current_class(row)

    def busy(self) -> bool:
        return self._job is not None

    # --- the edits (no questions asked: callers confirm) --------------------------------
    def add_class(self, name: str) -> int:
        index = class_edit.add_class(self.session.dataset, name)
        self.session.classes_changed.emit()
        return index

    def rename_class(self, index: int, new_name: str) -> None:
        self._rewrite(f"Renaming class {index + 1}", class_edit.rename_class, index, new_name)

    def merge_classes(self, sources: list[int], target: int) -> None:
        self._rewrite("Merging classes", class_edit.merge_classes, sources, target)

    def move_class(self, index: int, step: int) -> None:
        order = list(range(len(self.session.dataset.classes)))
        other = index + step
        if not (0 <= index < len(order) and 0 <= other < len(order)):
            return
        order[index], order[other] = order[other], order[index]
        self._rewrite("Re-ordering classes", class_edit.reorder_classes, order)

    def _rewrite(self, title: str, edit: Callable, *args: object) -> None:
        """Save pending edits, then run ``edit`` on a worker behind a progress dialog."""
        if self._job is not None:
            return
        try:
            self.session.save_all()  # files and memory agree before they are renumbered
        except Exception as exc:  # noqa: BLE001 - shown to the user, nothing rewritten
            self.edit_failed.emit(f"Class edit not started: {exc}")
            return
        dataset = self.session.dataset
        self._progress = QProgressDialog(title + "…", "", 0, 0, self)
        self._progress.setCancelButton(None)  # half-renumbered files are worse than waiting
        # modal from the first moment: an edit made while the worker renumbers boxes would
        # race with it and then be marked saved by the history reset in _done
        self._progress.setWindowModality(Qt.WindowModality.WindowModal)
        self._progress.setMinimumDuration(0)
        self._progress.show()

        def run(job: workers.Job) -> class_edit.ClassEditResult:
            return edit(dataset, *args, progress=job.progress)

        self._job = workers.start(run, on_result=self._done, on_error=self._failed,
                                  on_progress=self._on_progress, on_finished=self._finished)

    def _on_progress(self, done: int, total: int, _message: str) -> None:
        if self._progress is not None:
            self._progress.setMaximum(total)
            self._progress.setValue(done)

    def _done(self, result: class_edit.ClassEditResult) -> None:
        self.session.clear_history()  # old commands carry old class indices
        self.session.classes_changed.emit()
        self.session.boxes_changed.emit(None)
        message = f"Class list saved; {len(result.rewritten)} label files rewritten"
        if result.skipped:
            message += (f"; {len(result.skipped)} images with unreadable labels left as they "
                        f"were (first: {result.skipped[0]})")
        self.edit_done.emit(message)

    def _failed(self, error: BaseException) -> None:
        self.session.classes_changed.emit()
        self.edit_failed.emit(f"Class edit failed: {error}")

    def _finished(self) -> None:
        self._job = None
        if self._progress is not None:
            self._progress.close()
            self._progress.deleteLater()
            self._progress = None

    # --- interactive front ends ---------------------------------------------------------
    def _ask_add(self) -> None:
        if self.session.dataset is None:
            return
        name, ok = QInputDialog.getText(self, "Add class", "New class name:")
        if ok and name.strip():
            try:
                self.add_class(name)
            except (ValueError, OSError) as exc:
                self.edit_failed.emit(str(exc))

    def _ask_rename(self) -> None:
        row = self.list.currentRow()
        if self.session.dataset is None or row < 0:
            return
        old = self.session.dataset.classes[row]
        name, ok = QInputDialog.getText(self, "Rename class", f"New name for {old!r}:", text=old)
        if ok and name.strip() and name.strip() != old:
            if name.strip() in self.session.dataset.classes.names:
                QMessageBox.information(self, "Rename class",
                                        f"{name.strip()!r} exists already: use Merge into…")
                return
            self.rename_class(row, name)

    def _ask_merge(self) -> None:
        row = self.list.currentRow()
        dataset = self.session.dataset
        if dataset is None or row < 0 or len(dataset.classes) < 2:
            return
        others = [n for i, n in enumerate(dataset.classes) if i != row]
        target, ok = QInputDialog.getItem(self, "Merge class", f"Merge {dataset.classes[row]!r} "
                                          "into:", others, 0, False)
        if ok and self._confirm_renumber(f"Every {dataset.classes[row]!r} box becomes "
                                         f"{target!r} and the classes after it move up one."):
            self.merge_classes([row], dataset.classes.index(target))

    def _ask_move(self, step: int) -> None:
        row = self.list.currentRow()
        if self.session.dataset is None or row < 0:
            return
        if self._confirm_renumber("Moving a class changes two class indices."):
            self.move_class(row, step)
            self.session.set_current_class(row + step)

    def _ask_delete(self) -> None:
        row = self.list.currentRow()
        dataset = self.session.dataset
        if dataset is None or row < 0:
            return
        boxes, images = class_edit.class_use(dataset, row)
        if boxes:  # refused: the same message delete_class would raise, before any dialog
            self.edit_failed.emit(f"Class {dataset.classes[row]!r} not deleted: used by "
                                  f"{boxes} box(es) in {images} image(s). Relabel or delete "
                                  "them, or merge the class, first.")
            return
        last = row == len(dataset.classes) - 1
        if last or self._confirm_renumber(f"Deleting {dataset.classes[row]!r} moves the "
                                          "classes after it up one."):
            self.delete_class(row)

    def delete_class(self, index: int) -> None:
        self._rewrite(f"Deleting class {index + 1}", class_edit.delete_class, index)

    def _confirm_renumber(self, what: str) -> bool:
        answer = QMessageBox.question(
            self, "Renumber classes", f"{what}\n\nEvery affected label file is rewritten "
            "now, and undo history is cleared. Continue?")
        return answer == QMessageBox.StandardButton.Yes
