"""The Detect dock: run a model over the open data set or any folder, keep the results.

A run goes through ``workbench detect``'s own service (a DetectConfig from the dock's fields,
``workbench.predictions.run.detect_into_set`` on the worker mechanism, ``ui.panels.detect_jobs``)
into a named prediction set in the images' folder (``ROOT/.predictions/NAME``), so the results
survive a restart. The open data set's sets can be drawn over the canvas, exported and
accepted as labels (``ui.panels.detect_results``). The widgets are built by
``ui.panels.detect_form``.

The dock also holds the window's model picker: the built-in demo model, recent models, the
models trained in this window and Load…; the engine list shows only the engines that run
here, and the engine's reason once the model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ui import settings, workers
from ui.canvas.items import BoxItem
from ui.panels import detect_form
from ui.panels.detect_form import EXPORT_FORMATS, SHOW, SOURCES
from ui.panels.detect_jobs import load_model, run_into_set
from ui.panels.detect_results import SetResults
from ui.progress_text import show_count, show_idle
from ui.session import LabelSession
from workbench.detect.config import DEFAULT_MODEL, DetectConfig
from workbench.detect.engines import device_of, engines_here
from workbench.detect.video import is_video
from workbench.predictions import sets as sets
from workbench.progress import duration

DEMO = DEFAULT_MODEL
LOAD = "<load>"
__all__ = ["DEMO", "EXPORT_FORMATS", "LOAD", "SHOW", "SOURCES", "DetectPanel", "model_title"]


def model_title(model: str | Path) -> str:
    return "built-in demo" if str(model) == DEMO else Path(model).name


class DetectPanel(QWidget, SetResults):
    status = Signal(str)            # one-line messages for the status bar
    model_info = Signal(str)        # the status bar's permanent model/engine line
    model_chosen = Signal(str)      # the user picked a model: the window checks and uses it
    load_requested = Signal()       # "Load…" in the picker
    running_changed = Signal(bool)
    overlay_changed = Signal()

    def __init__(self, session: LabelSession, canvas, filtered_rows: Callable[[], list[int]],
                 selected_rows: Callable[[], list[int]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session, self.canvas = session, canvas
        self.filtered_rows, self.selected_rows = filtered_rows, selected_rows
        self.model: str = DEMO
        self.trained: list[str] = []          # bundles trained in this window, newest first
        self.source_path: Path | None = None
        self.engine_name = ""                 # of the loaded detector ("" until loaded)
        self.engine_reason = ""
        self.class_names: list[str] = []
        self.last_info: sets.RunInfo | None = None
        self._holder: dict = {}               # the Detector, used on worker threads only
        self._job: workers.Worker | None = None
        self._loading: workers.Worker | None = None
        self._reload = False
        self._started = 0.0
        self._items: list[BoxItem] = []
        self._set_names: list[str] = []
        self._set_renamed: dict[str, str] = {}  # the set's images whose names clashed
        self.engines = engines_here()
        detect_form.build(self, self.engines)
        self._show_idle()
        self._connect()
        self._rebuild_picker()
        self._dataset_changed()

    def _connect(self) -> None:
        self.source.activated.connect(self._source_picked)
        self.picker.activated.connect(self._model_picked)
        self.engine.currentIndexChanged.connect(lambda _: self.reload())
        self.size.editingFinished.connect(self.reload)
        self.run_button.clicked.connect(self.run)
        self.cancel_button.clicked.connect(self.cancel)
        self.sets.currentIndexChanged.connect(lambda _: self._set_changed())
        self.show_mode.currentIndexChanged.connect(lambda _: self.refresh_overlay())
        self.class_filter.currentIndexChanged.connect(lambda _: self.refresh_overlay())
        self.min_score.valueChanged.connect(lambda _: self.refresh_overlay())
        self.export_button.clicked.connect(self.choose_export_folder)
        self.accept_button.clicked.connect(self.accept_selected)
        self.session.dataset_changed.connect(self._dataset_changed)
        self.session.current_changed.connect(lambda _: self.refresh_overlay())

    # --- the model --------------------------------------------------------------------
    def set_model(self, model: str | Path) -> None:
        """Use ``model`` (already checked by the window); loads it on a worker."""
        self.model = str(model)
        if self.model != DEMO:
            settings.add_recent_model(self.model)
        self._rebuild_picker()
        self.reload()

    def add_trained(self, bundle: str) -> None:
        """A model trained in this window: listed in the picker, not made current."""
        bundle = str(bundle)
        self.trained = [bundle] + [b for b in self.trained if b != bundle]
        self._rebuild_picker()

    def _rebuild_picker(self) -> None:
        self.picker.blockSignals(True)
        self.picker.clear()
        self.picker.addItem("Built-in demo model", DEMO)
        for bundle in self.trained:
            self.picker.addItem(f"Trained here: {bundle}", bundle)
        for folder in settings.recent_models():
            if folder not in self.trained:
                self.picker.addItem(folder, folder)
        if self.picker.findData(self.model) < 0:
            self.picker.addItem(self.model, self.model)
        self.picker.addItem("Load…", LOAD)
        self.picker.setCurrentIndex(self.picker.findData(self.model))
        self.picker.blockSignals(False)

    def _model_picked(self, index: int) -> None:
        choice = self.picker.itemData(index)
        self.picker.setCurrentIndex(self.picker.findData(self.model))  # until the window agrees
        if choice == LOAD:
            self.load_requested.emit()
        elif choice != self.model:
            self.model_chosen.emit(choice)

    def config(self) -> DetectConfig:
        """The run the dock's fields describe (``workbench detect``'s settings)."""
        return DetectConfig(model=self.model, engine=self.engine.currentData(),
                            size=self.size.value() or None, conf=self.conf.value(),
                            nms=self.nms.value())

    def reload(self) -> None:
        """Load the model on the chosen engine (a worker): the engine and its reason show."""
        if self._loading is not None or self._job is not None:
            self._reload = True
            return
        self._reload = False
        self.engine_label.setText("loading…")
        self.engine_label.setStyleSheet("")
        self._loading = workers.start(load_model, self._holder, self.config(),
                                      on_result=self._loaded, on_error=self._load_failed,
                                      on_finished=self._load_finished)
        self._update_buttons()

    def _loaded(self, result: tuple[str, str, list[str]]) -> None:
        self.engine_name, self.engine_reason, self.class_names = result
        self.engine_label.setText(f"{self.engine_name}: {self.engine_reason}")
        self.model_info.emit(self.info_text())

    def info_text(self) -> str:
        """Model, classes, engine, device: the status bar's permanent line."""
        if not self.engine_name:
            return f"Model: {model_title(self.model)}"
        return (f"Model: {model_title(self.model)} · {len(self.class_names)} classes · "
                f"engine {self.engine_name} · {device_of(self.engine_name)}")

    def _load_failed(self, error: BaseException) -> None:
        self._holder.clear()
        self.engine_name, self.class_names = "", []
        self.engine_label.setText(f"Cannot load: {error}")
        self.engine_label.setStyleSheet("color: #c62828;")
        self.model_info.emit(f"Model: {model_title(self.model)} (not loaded)")

    def _load_finished(self) -> None:
        self._loading = None
        self._update_buttons()
        if self._reload:
            self.reload()

    # --- the source ---------------------------------------------------------------------
    def _source_picked(self, _index: int) -> None:
        kind = self.source.currentData()
        path = ""
        if kind == "folder":
            path = QFileDialog.getExistingDirectory(self, "Folder of images")
        elif kind == "file":
            path, _ = QFileDialog.getOpenFileName(self, "An image or a list of images")
        if kind in ("folder", "file"):
            if path:
                self.set_source_path(path)
            elif self.source_path is None:
                self.source.setCurrentIndex(0)
        self._update_source_label()

    def set_source_path(self, path: str | Path) -> None:
        """Run on a folder, a list file or an image instead of the data set."""
        self.source_path = Path(path)
        self.source.setCurrentIndex(self.source.findData(
            "folder" if self.source_path.is_dir() else "file"))
        self._update_source_label()

    def _update_source_label(self) -> None:
        kind = self.source.currentData()
        if kind in ("folder", "file"):
            self.source_label.setText(str(self.source_path or "nothing chosen"))
        else:
            self.source_label.setText(f"{len(self._dataset_paths(kind))} images")

    def _dataset_paths(self, kind: str) -> list[Path]:
        dataset = self.session.dataset
        if dataset is None:
            return []
        if kind == "unlabeled":
            rows = [i for i, r in enumerate(dataset.images) if not r.labeled and not r.boxes]
        elif kind == "filtered":
            rows = self.filtered_rows()
        else:
            rows = range(len(dataset.images))
        return [dataset.images[i].path for i in rows]

    def sources(self) -> tuple[object, Path] | None:
        """(what the pipeline reads, the root its outputs are relative to), or None."""
        kind = self.source.currentData()
        if kind in ("folder", "file"):
            if self.source_path is None:
                return None
            path = self.source_path
            return str(path), (path if path.is_dir() else path.parent)
        dataset = self.session.dataset
        if dataset is None:
            return None
        return self._dataset_paths(kind), Path(dataset.root)

    # --- running ------------------------------------------------------------------------
    def running(self) -> bool:
        return self._job is not None

    def _default_set_name(self) -> str:
        return f"{model_title(self.model).replace(' ', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"

    def ask_replace(self, name: str) -> bool:
        """Whether to replace an existing set (tests replace this method)."""
        answer = QMessageBox.question(self, "Replace prediction set",
                                      f"A prediction set called {name!r} exists. Replace it?")
        return answer == QMessageBox.StandardButton.Yes

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._update_source_label()   # the list's filter may have changed meanwhile
        self.sets_changed_on_disk()   # and a set may have been written from outside

    def run(self) -> bool:
        """Start a run with the panel's settings; False (and a status line) when it cannot."""
        if self._job is not None or self._loading is not None:
            return False
        self._update_source_label()
        found = self.sources()
        if found is None:
            self.status.emit("Detect: choose a source first (open a data set or pick a folder)")
            return False
        sources, root = found
        if isinstance(sources, str) and is_video(sources):
            # a set holds one prediction file per image on disk, to browse over the image
            self.status.emit(f"Detect: {Path(sources).name} is a video; run it with "
                             "workbench detect VIDEO --out DIR (frames, --every, --save-video)")
            return False
        if isinstance(sources, list) and not sources:
            self.status.emit("Detect: no images in this source")
            return False
        try:
            name = sets.check_name(self.set_name.text() or self._default_set_name())
        except Exception as exc:  # noqa: BLE001 - the message says what is wrong with it
            self.status.emit(f"Detect: {exc}")
            return False
        set_dir = sets.set_folder(root, name)
        replace_set = set_dir.exists()
        if replace_set and not self.ask_replace(name):
            return False
        info = sets.RunInfo(model=str(self.model), source=str(
            self.source_path if self.source.currentData() in ("folder", "file")
            else f"{root} ({self.source.currentText()})"))
        self._started = time.perf_counter()
        show_count(self.progress, "images",
                   max(len(sources), 1) if isinstance(sources, list) else 0)
        self.rate.setText("starting…")
        self.last_info = None
        self._run_root, self._run_set = root, name
        self._job = workers.start(
            run_into_set, self._holder, self.config(), sources, root, set_dir, info,
            replace_set,
            on_result=self._run_done, on_error=self._run_failed,
            on_progress=self._progress, on_finished=self._run_finished)
        self._update_buttons()
        self.running_changed.emit(True)
        self.status.emit(f"Detecting with {model_title(self.model)} into set {name}…")
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
            self.rate.setText("cancelling…")

    def _progress(self, done: int, total: int, _message: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        elapsed = time.perf_counter() - self._started
        per_second = done / elapsed if elapsed > 0 else 0.0
        eta = (total - done) / per_second if per_second > 0 else 0.0
        self.rate.setText(f"{done} / {total} images · {per_second:.1f} images/s · "
                          f"ETA {duration(eta)}")

    def _run_done(self, info: sets.RunInfo) -> None:
        self.last_info = info
        self.engine_name, self.engine_reason = info.engine, info.reason
        self.class_names = list(info.classes)
        self.engine_label.setText(f"{self.engine_name}: {self.engine_reason}")
        self.model_info.emit(self.info_text())
        per_second = len(info.images) / info.seconds if info.seconds > 0 else 0.0
        text = (f"{len(info.images)} images in {duration(info.seconds)} "
                f"({per_second:.1f} images/s) on {info.engine}"
                + (f", {len(info.skipped)} skipped" if info.skipped else ""))
        self.rate.setText(text)
        self.status.emit(f"Detect: {text}; saved as set {self._run_set}")

    def _run_failed(self, error: BaseException) -> None:
        self._holder.clear()
        self.rate.setText(f"Failed: {error}")
        self.status.emit(f"Detect failed: {error}")

    def _run_finished(self) -> None:
        cancelled = self._job is not None and self._job.job.cancelled
        self._job = None
        if cancelled:
            self.rate.setText(f"Cancelled after {self.progress.value()} images; "
                              "the images done are in the set")
            self.status.emit(self.rate.text())
        self._update_buttons()
        self.running_changed.emit(False)
        dataset = self.session.dataset
        if dataset is not None and Path(self._run_root).resolve() == Path(dataset.root).resolve():
            self.refresh_sets(select=self._run_set)
        if self._reload:
            self.reload()

    def _update_buttons(self) -> None:
        busy = self._job is not None
        self.run_button.setEnabled(not busy and self._loading is None)
        self.cancel_button.setEnabled(busy)
        for widget in (self.source, self.picker, self.engine, self.size, self.set_name):
            widget.setEnabled(not busy)

    # --- results: sets, overlay ---------------------------------------------------------
    def _dataset_changed(self) -> None:
        """Another folder: its sets, the source back to it, no status of the last folder's
        run (a run still going keeps its progress: it ends in its own folder)."""
        if self._job is None:
            self._show_idle()
            self.last_info = None
            self.source_path = None
            self.source.setCurrentIndex(0)
        self.set_name.clear()
        self.show_mode.setCurrentIndex(0)
        self.min_score.setValue(0.0)
        self.sets.blockSignals(True)
        self.sets.clear()   # no set of the last folder is selected again by name
        self.sets.blockSignals(False)
        self.refresh_sets()
        self._update_source_label()

    def _show_idle(self) -> None:
        show_idle(self.progress)
        self.rate.setText("Idle: press Run")

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel()
