"""The Inspect dock: IoU and every NMS decision over the model's predictions on this image.

The model's raw candidates are computed once per image on a worker (the pre-labeler's
model); the sliders then re-run :func:`workbench.geometry.nms.nms_trace` on the GUI thread at every
move (milliseconds, even for thousands of candidates). The canvas overlay and the table show
the result; nothing here edits the labels.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QAbstractTableModel,
    QItemSelection,
    QModelIndex,
    QObject,
    QRectF,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSlider,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ui import workers
from ui.canvas import CanvasView
from ui.colors import class_color, score_text
from ui.session import LabelSession
from workbench.detect.decode import Candidates
from workbench.geometry.nms import Decision, NmsTrace, nms_trace

METHODS = {"greedy": "Greedy", "diou": "DIoU", "soft-linear": "Soft (linear)",
           "soft-gaussian": "Soft (Gaussian)"}
CANDIDATE_CONF = 0.001     # the lowest confidence the slider reaches
MATCH_IOU = 0.5            # TP/FP/FN against the labels at this IoU
CACHED_IMAGES = 16
# the widest text of each column (not measured on the rows: 10,000 of them); the class
# column grows to the model's longest class name as far as the table has room
COLUMN_SAMPLES = ("triangle", "0.000 → 0.000", "beyond top k", "9999", "0.000")


def detect_candidates(job: workers.Job, holder: dict, model: str, path: str
                      ) -> tuple[Candidates, list[str]]:
    """Worker function: the model's raw (pre-NMS) candidates on one image, and its classes."""
    from workbench.data.images import load_bgr
    from workbench.detect.detector import Detector

    if holder.get("model") != model:
        holder.pop("detector", None)
        holder["detector"] = Detector(model)
        holder["model"] = model
    detector = holder["detector"]
    return detector.candidates(load_bgr(path), conf=CANDIDATE_CONF), list(detector.class_names)


class CandidateTable(QAbstractTableModel):
    """Thin adapter: one row per candidate above the confidence, highest score first."""

    COLUMNS = ("Class", "Score", "Decision", "By", "IoU")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.trace: NmsTrace | None = None
        self.rows = np.zeros(0, np.int64)       # candidate index of each row
        self.row_of = np.zeros(0, np.int64)     # row of each candidate, -1 if not listed
        self.original = np.zeros(0, np.float32)
        self.class_ids = np.zeros(0, np.int64)
        self.names: list[str] = []

    def set_trace(self, trace: NmsTrace | None, original: np.ndarray, class_ids: np.ndarray,
                  names: list[str]) -> None:
        self.beginResetModel()
        self.trace, self.original, self.class_ids, self.names = trace, original, class_ids, names
        if trace is None:
            self.rows = np.zeros(0, np.int64)
            self.row_of = np.zeros(0, np.int64)
        else:
            listed = np.flatnonzero(trace.decision != Decision.BELOW_SCORE)
            self.rows = listed[np.argsort(-original[listed], kind="stable")]
            self.row_of = np.full(len(original), -1, np.int64)
            self.row_of[self.rows] = np.arange(len(self.rows))
        self.endResetModel()

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Vertical:
            return str(section + 1)
        if section == 4 and self.trace is not None and self.trace.method == "diou":
            return "DIoU"
        return self.COLUMNS[section]

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or self.trace is None:
            return None
        i = int(self.rows[index.row()])
        decision = Decision(int(self.trace.decision[i]))
        if role == Qt.ItemDataRole.ForegroundRole and decision is not Decision.KEPT:
            return QColor("grey")
        if role == Qt.ItemDataRole.ToolTipRole:   # the full class name, however narrow
            return f"{class_name(self.names, int(self.class_ids[i]))}: {self.trace.explain(i)}"

        if role != Qt.ItemDataRole.DisplayRole:
            return None
        column = index.column()
        if column == 0:
            return class_name(self.names, int(self.class_ids[i]))
        if column == 1:
            score, final = float(self.original[i]), float(self.trace.scores[i])
            return f"{score:.3f}" if abs(final - score) < 5e-4 else f"{score:.3f} → {final:.3f}"
        if column == 2:
            return "kept" if decision is Decision.KEPT else decision.name.lower().replace("_", " ")
        by = int(self.trace.by[i])
        if column == 3:
            return str(int(self.row_of[by]) + 1) if by >= 0 else ""
        overlap = float(self.trace.overlap[i])
        return "" if np.isnan(overlap) else f"{overlap:.3f}"


def class_name(names: list[str], class_id: int) -> str:
    return names[class_id] if 0 <= class_id < len(names) else f"#{class_id}"


class InspectPanel(QWidget):
    """The dock's widget. ``set_active(True)`` while the dock shows, False when hidden."""

    drawn = Signal()   # the canvas picture changed (a prediction set's picture leaves out its boxes)

    def __init__(self, session: LabelSession, canvas: CanvasView,
                 model_of: Callable[[], str | Path], parent: QWidget | None = None) -> None:
        """``model_of()`` names the model (the pre-labeler's), read at each computation."""
        super().__init__(parent)
        self.session, self.canvas, self._model_of = session, canvas, model_of
        self.active = False
        self.runs = 0                    # detection jobs started (one per image and model)
        self.candidates: Candidates | None = None
        self.trace: NmsTrace | None = None
        self.class_names: list[str] = []
        self.nms_ms = 0.0
        self._key: tuple[str, str] | None = None
        self._cache: OrderedDict[tuple[str, str], tuple[Candidates, list[str]]] = OrderedDict()
        self._failed: dict[tuple[str, str], str] = {}
        self._holder: dict = {}          # the Detector, built and used on worker threads only
        self._job: workers.Worker | None = None
        self._selected_box = -1
        self._build()
        session.boxes_changed.connect(lambda _: self._show_counts())

    # --- widgets ------------------------------------------------------------------------
    def _build(self) -> None:
        self.conf_slider = QSlider(Qt.Orientation.Horizontal, minimum=1, maximum=1000, value=250)
        self.conf_slider.setToolTip("Confidence: candidates with a lower score are not listed")
        self.iou_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100, value=45)
        self.iou_slider.setToolTip("NMS IoU: a box overlapping a kept one more than this is "
                                   "suppressed")
        self.conf_label, self.iou_label = QLabel(), QLabel()
        self.method = QComboBox()
        for key, text in METHODS.items():
            self.method.addItem(text, key)
        self.per_class = QCheckBox("Per class", checked=True)
        self._per_class_choice = True
        self.per_class.setToolTip("Boxes of different classes never suppress each other, as in "
                                  "detection (Soft-NMS here is class-agnostic)")
        self.show_suppressed = QCheckBox("Show suppressed")
        self.info = QLabel(wordWrap=True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.model = CandidateTable(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.verticalHeader().setDefaultSectionSize(20)  # uniform rows: 10,000 stay fast
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        # widths from the widest text each column can hold (not from the rows: 10,000 of
        # them), so every column fits a 380 px dock without scrolling
        metrics = self.table.fontMetrics()
        for column, sample in enumerate(COLUMN_SAMPLES):
            header.resizeSection(column, max(metrics.horizontalAdvance(sample) + 8,
                                             header.sectionSizeHint(column)))
        self.table.verticalHeader().setMinimumWidth(metrics.horizontalAdvance("9999") + 6)
        form = QFormLayout()
        for label, slider in ((self.conf_label, self.conf_slider),
                              (self.iou_label, self.iou_slider)):
            form.addRow(label, slider)
        form.addRow("Method", self.method)
        checks = QHBoxLayout()
        checks.addWidget(self.per_class)
        checks.addWidget(self.show_suppressed)
        checks.addStretch()
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(checks)
        layout.addWidget(self.info)
        layout.addWidget(self.table, 1)
        self._show_values()
        for slider in (self.conf_slider, self.iou_slider):
            slider.valueChanged.connect(self._thresholds_changed)
        self.method.currentIndexChanged.connect(self._method_changed)
        self.per_class.toggled.connect(lambda _: self.refresh())
        self.show_suppressed.toggled.connect(lambda _: self._draw())
        self.table.selectionModel().selectionChanged.connect(self._row_selected)

    def conf(self) -> float:
        return self.conf_slider.value() / 1000

    def iou(self) -> float:
        return self.iou_slider.value() / 100

    def method_key(self) -> str:
        return str(self.method.currentData())

    def class_aware(self) -> bool:
        return self.per_class.isChecked() and not self.method_key().startswith("soft")

    def _show_values(self) -> None:
        self.conf_label.setText(f"Confidence {self.conf():.3f}")
        self.iou_label.setText(f"NMS IoU {self.iou():.2f}")

    def _thresholds_changed(self) -> None:
        self._show_values()
        self.refresh()

    def _method_changed(self) -> None:
        # Soft-NMS here crosses classes: the box shows that, and gets its tick back after
        soft = self.method_key().startswith("soft")
        if soft and self.per_class.isEnabled():
            self._per_class_choice = self.per_class.isChecked()
        self.per_class.blockSignals(True)
        self.per_class.setChecked(False if soft else self._per_class_choice)
        self.per_class.blockSignals(False)
        self.per_class.setEnabled(not soft)
        self.refresh()

    # --- when to compute ------------------------------------------------------------------
    def set_active(self, on: bool) -> None:
        """The dock was shown (compute for this image) or hidden (drop the overlay)."""
        self.active = on
        if on:
            self._ensure()
        else:
            self.canvas.overlay.clear()
            self.drawn.emit()

    def image_changed(self) -> None:
        """Another image is current (called after the canvas switched to it)."""
        self._image_changed()

    def model_changed(self) -> None:
        """The pre-labeler's model changed: recompute when shown (a failure is tried again)."""
        self._failed.clear()
        self._image_changed()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def busy(self) -> bool:
        return self._job is not None

    def _current_key(self) -> tuple[str, str] | None:
        record = self.session.record
        return None if record is None else (str(self._model_of()), str(record.path))

    def _image_changed(self) -> None:
        self._key, self.candidates, self.trace = None, None, None
        self._selected_box = -1
        self.model.set_trace(None, np.zeros(0, np.float32), np.zeros(0, np.int64), [])
        self.canvas.overlay.clear()
        self.drawn.emit()
        self.info.setText("")
        if self.active:
            self._ensure()

    def _ensure(self) -> None:
        """Show this image's candidates: from the cache, or start the one detection job."""
        key = self._current_key()
        if key is None or not self.active:
            return
        if key == self._key and self.candidates is not None:
            self._draw()
            return
        if key in self._cache:
            self._cache.move_to_end(key)
            self._key = key
            self.candidates, self.class_names = self._cache[key]
            self.refresh()
            return
        if key in self._failed:
            self.info.setText(f"Detection failed: {self._failed[key]}")
            return
        self.info.setText(f"Detecting on {Path(key[1]).name} with model {key[0]}…")
        if self._job is not None:
            return  # one job at a time (one network): _finished comes back here
        self.runs += 1
        self._job = workers.start(
            detect_candidates, self._holder, key[0], key[1],
            on_result=lambda found, k=key: self._found(k, found),
            on_error=lambda error, k=key: self._failed_on(k, error),
            on_finished=self._finished)

    def _found(self, key: tuple[str, str], found: tuple[Candidates, list[str]]) -> None:
        self._cache[key] = found
        while len(self._cache) > CACHED_IMAGES:
            self._cache.popitem(last=False)

    def _failed_on(self, key: tuple[str, str], error: BaseException) -> None:
        self._holder.clear()
        self._failed[key] = str(error)

    def _finished(self) -> None:
        self._job = None
        self._ensure()

    # --- NMS and its picture ----------------------------------------------------------------
    def refresh(self) -> None:
        """Re-run NMS on the cached candidates with the current settings (GUI thread)."""
        c = self.candidates
        if c is None or not self.active:
            return
        start = time.perf_counter()
        self.trace = nms_trace(c.boxes, c.scores, self.iou(), score_threshold=self.conf(),
                               class_ids=c.class_ids if self.class_aware() else None,
                               method=self.method_key())
        self.nms_ms = (time.perf_counter() - start) * 1000
        self.model.set_trace(self.trace, c.scores, c.class_ids, self.class_names)
        self._fit_columns()
        row = self.row_of_box(self._selected_box)
        if row >= 0:
            self.table.selectRow(row)  # the same candidate stays selected
        else:
            self._selected_box = -1
        self._draw()
        self._show_counts()

    def _fit_columns(self) -> None:
        """Room for the longest class name listed, but never so much that the table scrolls
        sideways: past that the name is elided and its tooltip has it whole. The score
        column is wide only for Soft-NMS, the one method that lowers scores ("a → b")."""
        header, metrics = self.table.horizontalHeader(), self.table.fontMetrics()
        score = COLUMN_SAMPLES[1] if self.method_key().startswith("soft") else "0.000"
        header.resizeSection(1, max(metrics.horizontalAdvance(score) + 8,
                                    header.sectionSizeHint(1)))
        listed = np.unique(self.model.class_ids[self.model.rows]).tolist()
        longest = max((metrics.horizontalAdvance(class_name(self.class_names, k))
                       for k in listed), default=0)
        wanted = max(longest, metrics.horizontalAdvance(COLUMN_SAMPLES[0])) + 12
        others = sum(header.sectionSize(c) for c in range(1, header.count() - 1)) \
            + metrics.horizontalAdvance(COLUMN_SAMPLES[-1]) + 8
        room = self.table.viewport().width() - others
        header.resizeSection(0, max(min(wanted, room), metrics.horizontalAdvance("triangle") + 8))

    def row_of_box(self, box: int) -> int:
        """The table row of candidate ``box`` (-1 when not listed)."""
        if box < 0 or box >= len(self.model.row_of):
            return -1
        return int(self.model.row_of[box])

    def box_of_row(self, row: int) -> int:
        return int(self.model.rows[row])

    def _draw(self) -> None:
        overlay = self.canvas.overlay
        c, trace = self.candidates, self.trace
        if c is None or trace is None or not self.active:
            overlay.clear()
            self.drawn.emit()
            return
        kept = [(_rect(c.boxes[i]), class_color(int(c.class_ids[i])),
                 f"{class_name(self.class_names, int(c.class_ids[i]))} "
                 f"{score_text(float(trace.scores[i]))}")
                for i in trace.kept.tolist()]
        suppressed = []
        if self.show_suppressed.isChecked():
            suppressed = [_rect(c.boxes[i]) for i in
                          np.flatnonzero(trace.decision == Decision.SUPPRESSED).tolist()]
        overlay.set_boxes(kept, suppressed, [class_name(self.class_names, int(c.class_ids[i]))
                                             for i in trace.kept.tolist()])
        self._draw_highlight()
        self.drawn.emit()

    def _row_selected(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        rows = self.table.selectionModel().selectedRows()
        self._selected_box = self.box_of_row(rows[0].row()) if rows else -1
        self._draw_highlight()

    def _draw_highlight(self) -> None:
        c, trace, i = self.candidates, self.trace, self._selected_box
        if c is None or trace is None or i < 0:
            self.canvas.overlay.set_highlight(None)
            return
        by = int(trace.by[i])
        self.canvas.overlay.set_highlight(_rect(c.boxes[i]), _rect(c.boxes[by]) if by >= 0
                                          else None)

    def _show_counts(self) -> None:
        c, trace = self.candidates, self.trace
        if c is None or trace is None or not self.active:
            return
        listed = len(self.model.rows)
        kept = len(trace.kept)
        text = (f"{len(c)} candidates (score ≥ {CANDIDATE_CONF}), {listed} above "
                f"{self.conf():.3f}: {kept} kept, {listed - kept} suppressed "
                f"(NMS {self.nms_ms:.1f} ms)")
        counts = self.match_counts()
        if counts is not None:
            tp, fp, fn = counts
            text += f"\nAgainst the labels at IoU {MATCH_IOU}: TP {tp}, FP {fp}, FN {fn}"
        self.info.setText(text)

    def match_counts(self) -> tuple[int, int, int] | None:
        """(TP, FP, FN) of the kept boxes against this image's labels; None when unlabeled."""
        from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate

        record, dataset, c, trace = (self.session.record, self.session.dataset,
                                     self.candidates, self.trace)
        if record is None or dataset is None or c is None or trace is None:
            return None
        if not record.labeled and not record.boxes:
            return None
        # model classes meet label classes by name; a name the labels lack can only be an FP
        names = list(dataset.classes.names)
        kept = trace.kept
        label_id: dict[int, int] = {}
        for k in np.unique(c.class_ids[kept]).tolist():
            name = class_name(self.class_names, k)
            if name not in names:
                names.append(name)
            label_id[k] = names.index(name)
        ids = np.array([label_id[k] for k in c.class_ids[kept].tolist()], np.int64)
        num_classes = max(len(names), max((b.class_id for b in record.boxes), default=0) + 1)
        gt = GroundTruth.from_boxes(record.boxes)
        pred = Predictions(c.boxes[kept], trace.scores[kept], ids)
        result = evaluate({"image": gt}, {"image": pred}, num_classes,
                          iou_threshold=MATCH_IOU).per_image["image"]
        return result.tp, result.fp, result.fn


def _rect(box: np.ndarray) -> QRectF:
    x1, y1, x2, y2 = (float(v) for v in box)
    return QRectF(x1, y1, x2 - x1, y2 - y1)
