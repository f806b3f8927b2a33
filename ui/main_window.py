"""The main window: wires the session, canvas, image cache and panels to menus and keys.

Unsaved edits are never lost: every way away from an image (next/previous, list pick, jump,
opening another folder, closing) goes through :meth:`MainWindow.resolve_current` or
:meth:`MainWindow.resolve_all`, which save (autosave, the default) or ask.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from ui import settings, workers
from ui.canvas import CanvasView
from ui.image_cache import Decoded, ImageCache
from ui.image_list import image_status
from ui.menus import build_actions, build_menus
from ui.messages import MessageLog, MessagesWindow
from ui.panels.class_panel import ClassPanel
from ui.panels.detect_panel import DetectPanel
from ui.panels.evaluate_panel import EvaluatePanel
from ui.panels.image_panel import ImagePanel
from ui.panels.inspect_panel import InspectPanel
from ui.panels.prelabel import Prelabeler
from ui.panels.stats_panel import StatsPanel
from ui.panels.train_panel import TrainPanel
from ui.prediction_watch import PredictionSetWatcher
from ui.session import LabelSession
from ui.shortcuts import CheatSheet
from ui.window_layout import LayoutMixin
from ui.window_models import ModelMixin
from ui.window_saving import SavingMixin
from workbench.labels.dataset import Dataset

APP_NAME = "Detection Workbench"
AUTOSAVE_MS = 30_000
PREFETCH_AHEAD, PREFETCH_BEHIND = 2, 1


def _open_dataset(job: workers.Job, root: str) -> Dataset:
    from workbench.data.folder import open_dataset

    return open_dataset(root, progress=lambda done, total: job.progress(done, total))


class MainWindow(SavingMixin, ModelMixin, LayoutMixin, QMainWindow):
    def __init__(self, parent: QWidget | None = None, autosave_ms: int = AUTOSAVE_MS) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{APP_NAME}[*]")
        self.session = LabelSession(self)
        self.cache = ImageCache(parent=self)
        self.canvas = CanvasView(self.session, self)
        self.setCentralWidget(self.canvas)
        self.images = ImagePanel(self.session)
        self.classes = ClassPanel(self.session)
        self.stats = StatsPanel(self.session)
        self.prelabeler = Prelabeler(self.session, self)
        self.inspector = InspectPanel(self.session, self.canvas, lambda: self.prelabeler.model)
        self.trainer = TrainPanel(self.session)
        self.evaluator = EvaluatePanel(self.session)
        self.detector_panel = DetectPanel(self.session, self.canvas, self.images.filter.source_rows,
                                          self.selected_rows)
        self.prediction_watch = PredictionSetWatcher(self)
        self._model_maps: dict[str, float] = {}  # val mAP@0.5 of models trained here
        self._last_save_error: tuple[int, str] | None = None  # (image, error) autosave met
        self._build_docks()
        self.position_label, self.zoom_label, self.pointer_label = QLabel(), QLabel(), QLabel()
        self.model_label = QLabel(self.detector_panel.info_text())
        self.model_label.setToolTip("The model of Detect, Propose and Inspect; its engine and "
                                    "device once loaded")
        for label in (self.model_label, self.pointer_label, self.zoom_label,
                      self.position_label):
            self.statusBar().addPermanentWidget(label)
        self.messages = MessageLog(self.statusBar(), self)
        self._messages_window: MessagesWindow | None = None
        self.act = build_actions(self)
        build_menus(self)
        self._loading: workers.Worker | None = None
        self._autosave = QTimer(self, interval=autosave_ms)
        self._autosave.timeout.connect(self.autosave_now)
        self._autosave.start()
        self._connect()
        self._layout_done = False   # the saved layout, or the default one at the first show
        self._restore_layout()

    def _connect(self) -> None:
        s = self.session
        s.current_changed.connect(self._current_changed)
        s.dirty_changed.connect(self.setWindowModified)
        s.record_changed.connect(lambda row: self._update_position() if row == s.index else None)
        s.proposals_changed.connect(self._update_actions)
        s.boxes_changed.connect(lambda _: self._update_actions())
        self.canvas.selection_changed.connect(lambda _: self._update_actions())
        self.canvas.pointer_moved.connect(
            lambda x, y: self.pointer_label.setText(f"x {x:.0f}  y {y:.0f}"))
        self.canvas.zoom_changed.connect(lambda z: self.zoom_label.setText(f"{z * 100:.0f}%"))
        self.canvas.wants_full_resolution.connect(self._load_full_resolution)
        self.cache.ready.connect(self._image_ready)
        self.cache.failed.connect(self._image_failed)
        self.images.picked.connect(self.go_to)
        self.classes.edit_failed.connect(self.show_error)
        s.class_file_failed.connect(self.show_error)
        self.classes.edit_done.connect(self._class_edit_done)
        self.prelabeler.status.connect(lambda text: self.say(text, 10_000))
        self.trainer.status.connect(lambda text: self.say(text, 10_000))
        self.evaluator.status.connect(lambda text: self.say(text, 10_000))
        self.evaluator.image_picked.connect(self.show_evaluated)
        self.trainer.model_ready.connect(self.trained_model_ready)
        d = self.detector_panel
        d.status.connect(lambda text: self.say(text, 15_000))
        d.model_info.connect(self.model_label.setText)
        d.model_chosen.connect(self.use_model)
        d.load_requested.connect(self.load_model)
        d.ask_add_classes = self.ask_add_classes   # one question, as for proposals
        # a finished run is a new set for Evaluate too
        d.running_changed.connect(lambda running: running or self.evaluator.refresh_sets())
        # sets written from outside the window (workbench detect --out, another process)
        self.prediction_watch.changed.connect(d.sets_changed_on_disk)
        self.prediction_watch.changed.connect(self.evaluator.refresh_sets)
        # a kept box Inspect draws is left out of the prediction set's picture
        self.inspector.drawn.connect(d.refresh_overlay)

    # --- opening ----------------------------------------------------------------------------
    def open_folder(self, folder: str | Path) -> None:
        """Open a dataset folder; reading happens on a worker (10,000 images stay responsive)."""
        if self._loading is not None or not self.resolve_all():
            return
        folder = str(Path(folder).resolve())
        self.say(f"Opening {folder}…")

        def loaded(dataset: Dataset) -> None:
            # the window stays usable while the folder loads: edits made meanwhile are
            # saved (or asked about) before the new dataset replaces them
            if not self.resolve_all():
                self.say(f"Not opened {folder}: unsaved changes kept",
                                             15_000)
                return
            self.set_dataset(dataset)
            settings.add_recent_folder(folder)
            self._rebuild_recent_menu()

        self._loading = workers.start(
            _open_dataset, folder, on_result=loaded,
            on_error=lambda e: self.show_error(f"Cannot open {folder}: {e}"),
            on_progress=lambda done, total, _: self.statusBar().showMessage(
                f"Opening {folder}: {done} / {total}"),
            on_finished=self._loading_finished)

    def _loading_finished(self) -> None:
        self._loading = None

    def loading(self) -> bool:
        return self._loading is not None

    def set_dataset(self, dataset: Dataset) -> None:
        self.cache.clear()
        self.session.set_dataset(dataset)
        self.prediction_watch.watch(dataset.root)
        problems = len(dataset.problems)
        kind = dataset.layout.kind if dataset.layout is not None else "beside"
        layout = "" if kind == "beside" else f" ({kind} layout)"
        # nothing labeled but label files elsewhere: say where, not "0 labeled"
        stray = (f"; {dataset.problems[0].message}" if problems and dataset.images
                 and not any(r.labeled for r in dataset.images) else "")
        self.say(
            f"{dataset.root}: {len(dataset.images)} images, {len(dataset.classes)} classes, "
            f"labels as {dataset.label_format}{layout}"
            + (f", {problems} files with problems" if problems else "") + stray, 15_000)
        self._check_format_action()
        if dataset.images:
            self.session.go_to(0)
        else:
            self.canvas.show_record()
            self.canvas.set_message("No images in this folder")
        self._update_title()

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a dataset folder")
        if folder:
            self.open_folder(folder)

    # --- moving between images ----------------------------------------------------------------
    def go_to(self, row: int) -> bool:
        """Show image ``row`` after saving or asking about the current one's edits."""
        if row == self.session.index:
            return True
        if not self.resolve_current():
            self.images.show_current(self.session.index)
            return False
        self.session.go_to(row)
        return True

    def go_to_path(self, relative: str) -> bool:
        """Show the image at this path relative to the data set root (Evaluate's lists)."""
        dataset = self.session.dataset
        record = dataset.find(relative) if dataset is not None else None
        if record is None:
            return False
        return self.go_to(dataset.images.index(record))

    def show_evaluated(self, relative: str) -> None:
        """An image picked in the Evaluate dock: show it with its TP/FP/FN boxes drawn as
        Inspect draws (unless Inspect is showing its own picture)."""
        if self.go_to_path(relative) and not self.inspector.active:
            self.canvas.overlay.set_boxes(self.evaluator.picture(relative), [])

    def next_image(self) -> bool:
        row = self.images.filter.neighbour(self.session.index, 1)
        return row is not None and self.go_to(row)

    def previous_image(self) -> bool:
        row = self.images.filter.neighbour(self.session.index, -1)
        return row is not None and self.go_to(row)

    def ask_jump(self) -> None:
        if len(self.session):
            row, ok = QInputDialog.getInt(self, "Jump to image", "Image number:",
                                          self.session.index + 1, 1, len(self.session))
            if ok:
                self.go_to(row - 1)

    def _current_changed(self, row: int) -> None:
        record = self.session.record
        self.canvas.show_record()
        self.inspector.image_changed()   # after the canvas: it draws on the new image
        decoded = self.cache.request(record.path)
        if decoded is not None:
            self.canvas.show_image(decoded)
        elif str(record.path) in self.cache.errors:
            self._image_failed(str(record.path), self.cache.errors[str(record.path)])
        self._prefetch(row)
        self._update_title()
        self._update_position()
        self._update_actions()
        self.canvas.setFocus()

    def _prefetch(self, row: int) -> None:
        images = self.session.dataset.images
        rows, r = [], row
        for _ in range(PREFETCH_AHEAD):
            r = self.images.filter.neighbour(r, 1)
            if r is None:
                break
            rows.append(r)
        r = row
        for _ in range(PREFETCH_BEHIND):
            r = self.images.filter.neighbour(r, -1)
            if r is None:
                break
            rows.append(r)
        keep = {str(images[i].path) for i in rows + [row]}
        self.cache.cancel_except(keep)  # a far jump drops decodes nobody waits for
        self.cache.prefetch([images[i].path for i in rows])

    def _image_ready(self, path: str, decoded: Decoded) -> None:
        record = self.session.record
        if record is None or str(record.path) != path:
            return
        if self.canvas.decoded is None or decoded.scale > self.canvas.decoded.scale:
            self.canvas.show_image(decoded)

    def _image_failed(self, path: str, message: str) -> None:
        record = self.session.record
        if record is not None and str(record.path) == path:
            self.canvas.set_message(f"Cannot show this image:\n{message}\n\nPress D for the next.")
            self.say(message, 15_000)
            if message not in record.problems:
                record.problems.append(message)
                self.images.model.refresh_row(self.session.index)

    def _load_full_resolution(self) -> None:
        record = self.session.record
        if record is not None:
            decoded = self.cache.request(record.path, full=True)
            if decoded is not None:
                self._image_ready(str(record.path), decoded)

    # --- saving ------------------------------------------------------------------------------
    def set_formats(self, formats: tuple[str, ...]) -> None:
        self.session.formats = formats

    def _check_format_action(self) -> None:
        key = "+".join(self.session.formats)
        for action in self.format_group.actions():
            action.setChecked(action.data() == key)

    # --- edits from menus and keys --------------------------------------------------------
    def start_drawing(self) -> None:
        dataset = self.session.dataset
        if dataset is None or self.session.record is None:
            return
        if not len(dataset.classes):
            name, ok = QInputDialog.getText(self, "First class", "Name of the class to draw:")
            if not ok or not name.strip():
                return
            self.classes.add_class(name)
            self.session.set_current_class(0)
        self.canvas.start_drawing()

    def set_class_by_key(self, class_id: int) -> None:
        dataset = self.session.dataset
        if dataset is not None and class_id < len(dataset.classes):
            self.session.set_class(self.canvas.selected(), class_id)

    def toggle_verified(self) -> None:
        self.session.toggle_verified()
        if self.session.autosave:
            self.save_current()

    def copy_previous(self) -> None:
        n = self.session.copy_previous()
        self.say(f"Copied {n} boxes from the previous image", 3000)

    def selected_rows(self) -> list[int]:
        """Data set rows selected in the image list."""
        selection = self.images.list.selectionModel().selectedRows()
        return sorted(self.images.filter.mapToSource(i).row() for i in selection)

    def _detect_shown(self, visible: bool) -> None:
        if visible and not self.detector_panel.engine_name:
            self.detector_panel.reload()   # the engine and its reason show once loaded

    def say(self, text: str, timeout_ms: int = 0) -> None:
        """A status bar message, also kept in View > Messages (the bar may cut it)."""
        self.messages.say(text, timeout_ms)

    def show_messages(self) -> None:
        """View > Messages: one window, kept up to date while open."""
        if self._messages_window is None:
            self._messages_window = MessagesWindow(self.messages, self)
        self._messages_window.show()
        self._messages_window.raise_()

    def show_cheat_sheet(self) -> None:
        CheatSheet(self).show()

    def show_error(self, message: str) -> None:
        self.say(message, 20_000)
        box = QMessageBox(QMessageBox.Icon.Warning, APP_NAME, message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # not exec(): the session goes on behind it

    def _class_edit_done(self, message: str) -> None:
        self.say(message, 15_000)
        self.images.refresh_classes()

    # --- window state ---------------------------------------------------------------------
    def _update_title(self) -> None:
        record = self.session.record
        name = f"{record.name} — " if record else ""
        self.setWindowTitle(f"{name}{APP_NAME}[*]")
        self.setWindowModified(self.session.is_dirty())

    def _update_position(self) -> None:
        record = self.session.record
        if record is None:
            self.position_label.setText("")
            return
        self.position_label.setText(f"{self.session.index + 1} / {len(self.session)} · "
                                    f"{len(record.boxes)} boxes · {image_status(record)}")

    def _update_actions(self) -> None:
        has_proposals = bool(self.session.current_proposals())
        for key in ("accept", "reject"):
            self.act[key].setEnabled(has_proposals)
        selected = bool(self.canvas.selected())
        for key in ("delete", "duplicate", "difficult"):
            self.act[key].setEnabled(selected)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in settings.recent_folders():
            action = self.recent_menu.addAction(folder)
            action.triggered.connect(lambda _=False, f=folder: self.open_folder(f))
        self.recent_menu.setEnabled(not self.recent_menu.isEmpty())

    def unaccepted_work(self) -> str:
        """What closing would throw away that is not on disk ("" when nothing)."""
        proposals = {row: p for row, p in self.session.proposals.items() if p}
        parts = []
        if proposals:
            parts.append(f"{sum(len(p) for p in proposals.values())} proposed boxes on "
                         f"{len(proposals)} image(s) not accepted")
        if self.detector_panel.running():
            parts.append("a detection run in progress (the images done so far are kept)")
        if self.prelabeler.busy():
            parts.append("proposing in progress")
        return "; ".join(parts)

    def ask_discard(self, what: str) -> bool:
        """True to quit anyway (tests replace this method)."""
        answer = QMessageBox.question(self, "Quit", f"Quit and discard: {what}?",
                                      QMessageBox.StandardButton.Discard
                                      | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Discard

    def closeEvent(self, event: QCloseEvent) -> None:
        what = self.unaccepted_work()
        if what and not self.ask_discard(what):
            event.ignore()
            return
        if not self.resolve_all():
            event.ignore()
            return
        settings.save_window_layout(self.saveGeometry(),
                                    self.saveState(settings.LAYOUT_VERSION))
        self._autosave.stop()
        self.prelabeler.cancel()
        self.inspector.cancel()
        self.evaluator.cancel()
        self.detector_panel.shutdown()
        self.trainer.shutdown(5000)  # SIGTERM: the trainer saves a checkpoint first
        workers.shutdown()
        event.accept()


