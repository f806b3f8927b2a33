"""The Detect dock: run a model over the open data set or any folder, keep the results.

A run goes through ``workbench detect``'s own pipeline and writer
(``workbench.predictions.sets.detect_into_set``) on the worker mechanism, into a named
prediction set in the images' folder (``ROOT/.predictions/NAME``), so the results survive a
restart. The open data set's sets can be drawn over the canvas (labels, predictions or both,
filtered by class and score), exported in every format ``detect`` writes, and accepted as
labels for the images selected in the image list (one undoable edit per image).

The dock also holds the window's model picker: the built-in demo model, recent models, the
models trained in this window and Load…; the engine list shows only the engines that run
here, and the engine's reason once the model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ui import settings, workers
from ui.canvas.items import BoxItem
from ui.colors import class_color
from ui.folder_dialog import NewFolderDialog
from ui.geometry import clip
from ui.progress_text import show_count, show_idle
from ui.session import MIN_BOX, LabelSession, Proposal
from workbench.detect.engines import device_of, engines_here
from workbench.detect.video import is_video
from workbench.predictions import run as prediction_runs
from workbench.predictions import sets as sets

DEMO = "demo"
LOAD = "<load>"
SOURCES = (("all", "Open data set: all images"), ("unlabeled", "Open data set: unlabeled images"),
           ("filtered", "Open data set: images in the list's filter"),
           ("folder", "A folder…"), ("file", "An image or list file…"))
EXPORT_FORMATS = (("yolo", "YOLO txt + confidence"), ("voc", "Pascal VOC XML"),
                  ("coco", "COCO results JSON"), ("csv", "CSV"))
SHOW = (("both", "Labels and predictions"), ("predictions", "Predictions only"),
        ("labels", "Labels only"))


def model_title(model: str | Path) -> str:
    return "built-in demo" if str(model) == DEMO else Path(model).name


def duration(seconds: float) -> str:
    s = max(int(round(seconds)), 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _detector(holder: dict, key: tuple):
    """The Detector for (model, engine, size), built once and kept (worker threads only)."""
    from workbench.detect.detector import Detector

    if holder.get("key") != key:
        holder.clear()
        model, engine, size = key
        holder["detector"] = Detector(model, engine, size or None)
        holder["key"] = key
    return holder["detector"]


def load_model(job: workers.Job, holder: dict, key: tuple) -> tuple[str, str, list[str]]:
    """Worker: build the detector; (engine, reason, class names)."""
    d = _detector(holder, key)
    return d.backend.name, d.backend.reason, list(d.class_names)


def run_detection(job: workers.Job, holder: dict, key: tuple, sources, root: Path,
                  set_dir: Path, conf: float, nms: float, info: sets.RunInfo,
                  replace_set: bool) -> sets.RunInfo:
    """Worker: one run into a prediction set (the pipeline of ``workbench detect``)."""
    detector = _detector(holder, key)
    return prediction_runs.detect_into_set(detector, sources, root, set_dir, conf, nms, info,
                                progress=job.progress, cancelled=lambda: job.cancelled,
                                replace=replace_set)


def export_job(job: workers.Job, set_dir: Path, root: Path, out: Path, fmt: str,
               save_images: bool) -> int:
    return prediction_runs.export_set(set_dir, root, out, fmt, save_images, progress=job.progress)


class DetectPanel(QWidget):
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

        # --- source and model
        self.source = QComboBox()
        for key, text in SOURCES:
            self.source.addItem(text, key)
        self.source_label = QLabel(wordWrap=True)
        self.picker = QComboBox()
        self.picker.setToolTip("The model of Detect, Propose and Inspect")
        self.engine = QComboBox()
        self.engine.addItem("Automatic", "auto")
        self.engines = engines_here()
        for engine in self.engines:
            if engine.available:
                self.engine.addItem(engine.name, engine.name)
        self.engine.setToolTip("Only the engines that run on this machine")
        self.engine_label = QLabel("—", wordWrap=True)
        self.engine_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.conf = _double(0.0, 1.0, 0.25, 0.05)
        self.nms = _double(0.0, 1.0, 0.45, 0.05)
        self.size = QSpinBox()
        self.size.setRange(0, 4096)
        self.size.setSingleStep(32)
        self.size.setSpecialValueText("model's own")
        self.size.setSuffix(" px")
        self.set_name = QLineEdit(placeholderText="MODEL-DATE-TIME when left empty")
        self.set_name.setToolTip("The run's results are kept under this name in the images' "
                                 "folder (.predictions/NAME)")
        self.run_button = QPushButton("Run")
        self.cancel_button = QPushButton("Cancel", enabled=False)
        self.progress = QProgressBar()
        self.rate = QLabel()
        self._show_idle()

        # --- results
        self.sets = QComboBox()
        self.show_mode = QComboBox()
        for key, text in SHOW:
            self.show_mode.addItem(text, key)
        self.class_filter = QComboBox()
        self.min_score = _double(0.0, 1.0, 0.0, 0.05)
        self.min_score.setToolTip("Hide predictions below this score")
        self.export_format = QComboBox()
        for key, text in EXPORT_FORMATS:
            self.export_format.addItem(text, key)
        self.export_images = QCheckBox("with images")
        self.export_images.setToolTip("Also write each image with its boxes drawn "
                                       "(annotated/), as detect --save-images")
        self.export_button = QPushButton("Export…")
        self.accept_button = QPushButton("Accept as labels for selected images")
        self.accept_button.setToolTip("One undoable edit per image; the class and score "
                                      "filters apply")

        for combo in (self.source, self.picker, self.engine, self.sets, self.show_mode,
                      self.class_filter, self.export_format):
            # long paths and names must not widen the dock past the left column
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(6)
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        run_box = QGroupBox("Run")
        form = QFormLayout(run_box)
        form.addRow("Source", self.source)
        form.addRow("", self.source_label)
        form.addRow("Model", self.picker)
        form.addRow("Engine", self.engine)
        form.addRow("", self.engine_label)
        thresholds = QHBoxLayout()
        for text, widget in (("conf", self.conf), ("NMS", self.nms)):
            thresholds.addWidget(QLabel(text))
            thresholds.addWidget(widget, 1)
        form.addRow("Thresholds", thresholds)
        form.addRow("Size", self.size)
        form.addRow("Save as", self.set_name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        form.addRow(buttons)
        form.addRow(self.progress)
        form.addRow(self.rate)
        results = QGroupBox("Results")
        rform = QFormLayout(results)
        rform.addRow("Set", self.sets)
        rform.addRow("Show", self.show_mode)
        filters = QHBoxLayout()
        filters.addWidget(self.class_filter, 1)
        filters.addWidget(QLabel("score ≥"))
        filters.addWidget(self.min_score)
        rform.addRow("Filter", filters)
        export = QHBoxLayout()
        export.addWidget(self.export_images)
        export.addWidget(self.export_button)
        rform.addRow("Export", self.export_format)
        rform.addRow("", export)
        rform.addRow(self.accept_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(run_box)
        layout.addWidget(results)
        layout.addStretch(1)

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
        session.dataset_changed.connect(self._dataset_changed)
        session.current_changed.connect(lambda _: self.refresh_overlay())
        self._rebuild_picker()
        self._dataset_changed()

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

    def key(self) -> tuple[str, str, int]:
        return (self.model, self.engine.currentData(), self.size.value())

    def reload(self) -> None:
        """Load the model on the chosen engine (a worker): the engine and its reason show."""
        if self._loading is not None or self._job is not None:
            self._reload = True
            return
        self._reload = False
        self.engine_label.setText("loading…")
        self.engine_label.setStyleSheet("")
        self._loading = workers.start(load_model, self._holder, self.key(),
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
            run_detection, self._holder, self.key(), sources, root, set_dir,
            self.conf.value(), self.nms.value(), info, replace_set,
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

    def refresh_sets(self, select: str | None = None) -> None:
        """List the sets again and read the chosen one anew (a run may have replaced it)."""
        self._fill_sets(select or self.sets.currentData())
        self._set_changed()

    def sets_changed_on_disk(self) -> None:
        """A set appeared or went (``detect --out``, another window, a file manager): list
        them again; the chosen set and its filters stay unless it is gone."""
        current = self.sets.currentData()
        self._fill_sets(current)
        if self.sets.currentData() != current:
            self._set_changed()

    def _fill_sets(self, current: str | None) -> None:
        dataset = self.session.dataset
        names = sets.list_sets(dataset.root) if dataset is not None else []
        self.sets.blockSignals(True)
        self.sets.clear()
        self.sets.addItem("(none)", None)
        for name in names:
            self.sets.addItem(name, name)
        index = self.sets.findData(current) if current else 0
        self.sets.setCurrentIndex(max(index, 0))
        self.sets.blockSignals(False)

    def set_dir(self) -> Path | None:
        dataset, name = self.session.dataset, self.sets.currentData()
        if dataset is None or not name:
            return None
        return sets.set_folder(dataset.root, name)

    def _set_changed(self) -> None:
        folder = self.set_dir()
        self._set_names, self._set_renamed = [], {}
        if folder is not None:
            try:
                self._set_names = sets.read_names(folder)
                if (folder / sets.INFO_FILE).exists():   # detect --out writes none: no renames
                    self._set_renamed = sets.read_info(folder).renamed
            except Exception as exc:  # noqa: BLE001 - one line; the set stays listed
                self.status.emit(f"Prediction set {folder}: {exc}")
        self.class_filter.blockSignals(True)
        self.class_filter.clear()
        self.class_filter.addItem("All classes", None)
        for i, name in enumerate(self._set_names):
            self.class_filter.addItem(name, i)
        self.class_filter.blockSignals(False)
        has_set = folder is not None
        for widget in (self.show_mode, self.class_filter, self.min_score, self.export_button,
                       self.export_format, self.export_images, self.accept_button):
            widget.setEnabled(has_set)
        self.refresh_overlay()

    def predictions(self, row: int | None = None) -> list[tuple]:
        """(Box with the set's class id, score, class name) of image ``row`` that pass the
        class and score filters; [] without a set or a prediction file."""
        folder, dataset = self.set_dir(), self.session.dataset
        row = self.session.index if row is None else row
        if folder is None or dataset is None or not 0 <= row < len(dataset.images):
            return []
        record = dataset.images[row]
        rel = sets.relative_to_root(record.path, dataset.root)
        try:
            found = sets.read_predictions(folder, rel, record.width, record.height,
                                          len(self._set_names) or None, self._set_renamed)
        except Exception as exc:  # noqa: BLE001 - a damaged file: say so, show nothing
            self.status.emit(str(exc))
            return []
        if found is None:
            return []
        wanted, low = self.class_filter.currentData(), self.min_score.value()
        out = []
        for box, score in zip(found.boxes, found.scores, strict=True):
            if (wanted is None or box.class_id == wanted) and score >= low:
                name = (self._set_names[box.class_id] if box.class_id < len(self._set_names)
                        else f"#{box.class_id}")
                out.append((box, score, name))
        return out

    def refresh_overlay(self) -> None:
        """Draw the chosen set's predictions of the current image over the canvas."""
        scene = self.canvas.scene()
        for item in self._items:
            scene.removeItem(item)
        self._items = []
        mode = self.show_mode.currentData() if self.set_dir() is not None else "labels"
        self.canvas.set_labels_visible(mode != "predictions")
        if mode != "labels":
            names = self.session.dataset.classes.names if self.session.dataset else []
            for box, score, name in self.predictions():
                if self.canvas.overlay.shows(box.xyxy(), name):
                    continue   # Inspect draws this box already (solid, with its score)
                color = class_color(names.index(name)) if name in names else QColor("white")
                item = BoxItem(proposal=True)
                item.show_box(box.xyxy(), color, f"{name} {score:.2f}")
                item.label.setPos(box.x1, box.y2)   # under the box: the label's tag is on top
                item.setZValue(3)
                scene.addItem(item)
                self._items.append(item)
        self.overlay_changed.emit()

    def overlay_count(self) -> int:
        return len(self._items)

    # --- results: accept, export --------------------------------------------------------
    def accept_selected(self) -> int:
        """The filtered predictions of each selected image become its labels: one undoable
        edit per image (saved at once with autosave). Returns the number of boxes added."""
        dataset = self.session.dataset
        if dataset is None or self.set_dir() is None:
            return 0
        rows = self.selected_rows() or ([self.session.index] if self.session.index >= 0 else [])
        found = {row: self._proposals(row) for row in rows}
        new = sorted({p.name for props in found.values() for p in props if p.box.class_id < 0})
        add_classes = True
        if new:
            choice = self.ask_add_classes(new)
            if choice == "cancel":
                return 0
            add_classes = choice == "add"
        added = images = skipped = 0
        for row, proposals in found.items():
            if not proposals:
                continue
            record = dataset.images[row]
            self.session.set_proposals(row, proposals)
            try:
                added += self.session.accept_proposals(add_classes=add_classes, index=row)
                skipped += self.session.skipped_duplicates
                if self.session.autosave:
                    self.session.save(row)
            except OSError as exc:
                self.status.emit(f"Predictions not accepted on {record.name}: {exc}")
                break
            images += 1
        self.status.emit(f"Accepted {added} predicted boxes on {images} image(s)" + (
            f"; {skipped} skipped: already labeled" if skipped else ""))
        self.refresh_overlay()
        return added

    def _proposals(self, row: int) -> list[Proposal]:
        """Image ``row``'s filtered predictions as proposals, classes matched by name."""
        dataset = self.session.dataset
        record = dataset.images[row]
        proposals = []
        for box, score, name in self.predictions(row):
            x1, y1, x2, y2 = clip(box.xyxy(), record.width, record.height)
            if x2 - x1 < MIN_BOX or y2 - y1 < MIN_BOX:
                continue
            class_id = dataset.classes.names.index(name) if name in dataset.classes.names \
                else -1
            proposals.append(Proposal(replace(box, x1=x1, y1=y1, x2=x2, y2=y2,
                                              class_id=class_id), score, name))
        return proposals

    def ask_add_classes(self, names: list[str]) -> str:
        """'add', 'skip' or 'cancel' for class names the data set lacks (the window sets
        this to its own question)."""
        return "skip"

    def choose_export_folder(self) -> NewFolderDialog:
        """Ask for the export folder (an existing one or a new one); exports when chosen."""
        dialog = NewFolderDialog(self, "Export the prediction set to", accept_text="Export")
        dialog.fileSelected.connect(lambda folder: self.export(Path(folder)))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()   # not exec(): the window goes on while it is open
        return dialog

    def export(self, out: Path, fmt: str | None = None,
               save_images: bool | None = None) -> workers.Worker | None:
        """Write the chosen set to ``out`` in a ``detect --format`` format (a worker)."""
        folder, dataset = self.set_dir(), self.session.dataset
        if folder is None or dataset is None:
            return None
        fmt = fmt or self.export_format.currentData()
        save_images = self.export_images.isChecked() if save_images is None else save_images
        self.status.emit(f"Exporting {folder.name} as {fmt} to {out}…")
        return workers.start(
            export_job, folder, Path(dataset.root), Path(out), fmt, save_images,
            on_result=lambda n: self.status.emit(f"Exported {n} images ({fmt}) to {out}"),
            on_error=lambda e: self.status.emit(f"Export failed: {e}"))

    def shutdown(self) -> None:
        if self._job is not None:
            self._job.cancel()


def _double(low: float, high: float, value: float, step: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(2)
    box.setSingleStep(step)
    box.setValue(value)
    return box
