"""The Evaluate dock: a prediction set against the open data set's labels.

A prediction set is a folder of YOLO files with a confidence column, as ``workbench detect
--out`` writes (the sets kept in ``DATASET/.predictions/NAME`` are listed; any other folder
can be chosen). The figures come from ``workbench.evaluation.report`` on a worker, the same
code ``workbench eval`` prints from, so the numbers are the CLI's. The labels are the ones
in the window, unsaved edits included. Plots are matplotlib (``workbench.evaluation.plots``).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ui import workers
from ui.colors import score_text
from ui.plot_view import PlotView
from ui.session import LabelSession
from workbench.detect.config import DEFAULT_CONF
from workbench.labels.dataset import ClassList, Dataset
from workbench.predictions.sets import PREDICTIONS_DIR, list_sets  # the Detect dock's sets

CLASS_COLUMNS = ("Class", "GT", "Pred", "AP", "P", "R", "TP", "FP", "FN")
PathRole = Qt.ItemDataRole.UserRole + 1
IDLE_TEXT = "Choose a prediction set and press Evaluate."
CELL_TEXT = "Click a cell to list its images."
OUTCOME_COLORS = {"TP": QColor("#43a047"), "FP": QColor("#e53935"), "FN": QColor("#fb8c00"),
                  "ignored": QColor("#9e9e9e")}


def prediction_sets(root: Path) -> list[Path]:
    """The prediction set folders kept in a data set folder, by name: real folders only, as
    the core lists them (a link to a folder elsewhere is no set of this data set)."""
    return [Path(root) / PREDICTIONS_DIR / name for name in list_sets(root)]


def snapshot(dataset: Dataset) -> Dataset:
    """A copy of the labels for the worker: the annotator keeps editing meanwhile."""
    copies = {id(r): replace(r, boxes=[replace(b) for b in r.boxes]) for r in dataset.images}
    return replace(dataset, classes=ClassList(dataset.classes.names),
                   images=[copies[id(r)] for r in dataset.images],
                   split={k: [copies[id(r)] for r in v] for k, v in dataset.split.items()})


def _evaluate(job: workers.Job, dataset: Dataset, folder: str, iou: float, metric: str,
              conf: float):
    from workbench.evaluation.report import evaluate_prediction_set

    return evaluate_prediction_set(dataset, folder, iou=iou, metric=metric, conf=conf)


def number(value: float | None, digits: int = 3) -> str:
    """As ``workbench eval`` prints it: fixed digits, ``-`` when undefined."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class EvaluatePanel(QWidget):
    image_picked = Signal(str)   # an image's path relative to the data set root
    status = Signal(str)

    def __init__(self, session: LabelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.report = None
        self.folder: str = ""
        self._worker: workers.Worker | None = None
        self._generation = 0   # one per opened folder: a late result of the last one is dropped

        self.sets = QComboBox()
        self.sets.setToolTip("Prediction sets kept in the data set folder, or a chosen folder")
        self.sets.setMinimumContentsLength(12)
        self.sets.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        choose = QPushButton("Folder…")
        choose.setToolTip("A folder of YOLO files with a confidence column "
                          "(as workbench detect --out writes)")
        choose.clicked.connect(self._choose_folder)
        self.iou = _spin(0.05, 1.0, 0.5)
        self.conf = _spin(0.0, 1.0, DEFAULT_CONF)
        self.conf.setToolTip("Confidence threshold of the confusion matrix and error list")
        self.metric_box = QComboBox()
        for key, text in (("voc", "VOC all-point"), ("voc07", "VOC07 11-point"),
                          ("coco", "COCO 101-point")):
            self.metric_box.addItem(text, key)
        self.run_button = QPushButton("Evaluate")
        self.run_button.clicked.connect(self.start)
        self.summary = QLabel(IDLE_TEXT, wordWrap=True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.table = QTableWidget(0, len(CLASS_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(CLASS_COLUMNS))
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(60)
        self.curves = PlotView(self._draw_curves, min_height=80)
        self.confusion = PlotView(self._draw_confusion, min_height=80)
        self.cell_label = QLabel(CELL_TEXT, wordWrap=True)
        self.cell_images = QListWidget()
        self.cell_images.setMinimumHeight(40)
        self.errors = QListWidget()
        self.errors.setMinimumHeight(40)
        for view in (self.cell_images, self.errors):
            view.setTextElideMode(Qt.TextElideMode.ElideMiddle)   # image names end in their number
            view.itemActivated.connect(self._pick)
            view.itemClicked.connect(self._pick)

        confusion_page = QWidget()
        box = QVBoxLayout(confusion_page)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.confusion, 3)
        box.addWidget(self.cell_label)
        box.addWidget(self.cell_images, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.table, "Classes")
        self.tabs.addTab(self.curves, "PR curves")
        self.tabs.addTab(confusion_page, "Confusion")
        self.tabs.addTab(self.errors, "Images by errors")

        form = QFormLayout()
        form.addRow("Predictions", _row(self.sets, choose))
        form.addRow("IoU / conf", _row(self.iou, self.conf))
        form.addRow("AP", _row(self.metric_box, self.run_button))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.tabs, 1)
        session.dataset_changed.connect(self._dataset_changed)
        self.refresh_sets()

    # --- choosing -----------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        """Another folder: the last one's sets, chosen folder and results all go (its sets
        would be scored against labels they were never made for)."""
        self.cancel()
        self._generation += 1
        self.report, self.folder = None, ""
        self.sets.clear()
        self.summary.setText(IDLE_TEXT)
        self.table.setRowCount(0)
        self.errors.clear()
        self.cell_images.clear()
        self.cell_label.setText(CELL_TEXT)
        self.curves.redraw()
        self.confusion.redraw()
        self.refresh_sets()

    def refresh_sets(self) -> None:
        """List the data set's prediction sets (plus a chosen folder, kept at the end)."""
        chosen = self.sets.currentData()
        self.sets.clear()
        dataset = self.session.dataset
        for folder in prediction_sets(dataset.root) if dataset is not None else []:
            self.sets.addItem(folder.name, str(folder))
        if chosen and self.sets.findData(chosen) < 0 and Path(chosen).is_dir():
            self.sets.addItem(Path(chosen).name, chosen)
        self.sets.setCurrentIndex(max(self.sets.findData(chosen), 0))
        self.run_button.setEnabled(dataset is not None)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.refresh_sets()   # a Detect run may have added a set since

    def set_folder(self, folder: str | Path) -> None:
        folder = str(Path(folder).resolve())
        if self.sets.findData(folder) < 0:
            self.sets.addItem(Path(folder).name, folder)
        self.sets.setCurrentIndex(self.sets.findData(folder))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Prediction folder (YOLO + confidence)")
        if folder:
            self.set_folder(folder)

    # --- computing ----------------------------------------------------------------------
    def busy(self) -> bool:
        return self._worker is not None

    def start(self) -> bool:
        dataset, folder = self.session.dataset, self.sets.currentData()
        if dataset is None or not folder or self.busy():
            if not folder:
                self.summary.setText("No prediction set: run Detect, or choose a folder.")
            return False
        self.folder = folder
        self.summary.setText(f"Evaluating {Path(folder).name}…")
        self.run_button.setEnabled(False)
        self._worker = workers.start(
            _evaluate, snapshot(dataset), folder, self.iou.value(),
            self.metric_box.currentData(), self.conf.value(),
            on_result=self._for_this_folder(self._show),
            on_error=self._for_this_folder(self._failed), on_finished=self._finished)
        return True

    def _for_this_folder(self, slot):
        """``slot``, called only while the folder the job started on is still open."""
        generation = self._generation
        return lambda value: slot(value) if generation == self._generation else None

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    def _finished(self) -> None:
        self._worker = None
        self.run_button.setEnabled(self.session.dataset is not None)

    def _failed(self, error: BaseException) -> None:
        self.report = None
        self.summary.setText(f"Not evaluated: {error}")
        self.status.emit(f"Evaluation failed: {error}")

    # --- showing ------------------------------------------------------------------------
    def _show(self, report) -> None:
        self.report = report
        r = report.result
        notes = "".join(f"\n⚠ {n}" for n in report.notes)
        self.summary.setText(
            f"{Path(self.folder).name}: {report.n_images} images · mAP@0.5 "
            f"{number(r.map50, 4)} · mAP@[.5:.95] {number(r.map50_95, 4)} · "
            f"TP {r.tp} FP {r.fp} FN {r.fn}{notes}")
        self._fill_table()
        self._fill_errors()
        self.cell_images.clear()
        self.cell_label.setText(CELL_TEXT)
        self.curves.redraw()
        self.confusion.redraw()
        self.status.emit(f"Evaluated {Path(self.folder).name}: mAP@0.5 {number(r.map50, 4)}")

    def _fill_table(self) -> None:
        report = self.report
        names = report.class_names
        rows = [report.result.per_class[k] for k in sorted(report.result.per_class)]
        self.table.setRowCount(len(rows))
        for i, c in enumerate(rows):
            cells = (names[c.class_id] if c.class_id < len(names) else str(c.class_id),
                     str(c.n_gt), str(c.n_pred), number(c.ap), number(c.precision),
                     number(c.recall), str(c.tp), str(c.fp), str(c.fn))
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(i, j, item)

    def _fill_errors(self) -> None:
        self.errors.clear()
        for row in self.report.images_by_errors():
            self.errors.addItem(_image_item(f"{row.errors:>3}  FP {row.fp} FN {row.fn} "
                                            f"TP {row.tp}  {row.name}", row.name))

    def picture(self, name: str) -> list[tuple[QRectF, QColor, str]]:
        """The image's outcome as Inspect draws it on the canvas: predictions at or above
        the confidence tagged TP (green) or FP (red), objects nothing found tagged FN."""
        report = self.report
        if report is None or name not in report.gt:
            return []
        o = report.outcome(name)
        names = report.class_names

        def label(k: int) -> str:
            return names[k] if 0 <= k < len(names) else str(k)

        boxes = []
        for box, score, k, tp, fp in zip(o.pred_boxes, o.pred_scores, o.pred_classes,
                                         o.pred_tp, o.pred_fp, strict=True):
            kind = "TP" if tp else "FP" if fp else "ignored"
            boxes.append((_rect(box), OUTCOME_COLORS[kind],
                          f"{kind} {label(int(k))} {score_text(float(score))}"))
        for box, k in zip(o.missed_boxes, o.missed_classes, strict=True):
            boxes.append((_rect(box), OUTCOME_COLORS["FN"], f"FN {label(int(k))}"))
        return boxes

    def _draw_curves(self, figure) -> None:
        from workbench.evaluation.plots import draw_pr_curves

        if self.report is None:
            figure.clear()
            return
        draw_pr_curves(figure, self.report.result, self.report.class_names)

    def _draw_confusion(self, figure) -> None:
        from workbench.evaluation.plots import draw_confusion

        if self.report is None:
            figure.clear()
            return
        draw_confusion(figure, self.report.matrix, self.report.class_names)
        canvas = self.confusion.canvas
        if not getattr(canvas, "_cell_clicks", False):
            canvas.mpl_connect("button_press_event", self._confusion_clicked)
            canvas._cell_clicks = True

    def _confusion_clicked(self, event) -> None:
        if event.inaxes is None or event.xdata is None or self.report is None:
            return
        self.select_cell(int(round(event.ydata)), int(round(event.xdata)))

    def select_cell(self, true: int, predicted: int) -> dict[str, int]:
        """List the images counted in ``counts[true, predicted]``; returns them."""
        report = self.report
        size = report.matrix.counts.shape[0]
        if not (0 <= true < size and 0 <= predicted < size):
            return {}
        rows = report.matrix.row_labels(report.class_names)
        cols = report.matrix.column_labels(report.class_names)
        images = report.entries.images_of(true, predicted)
        self.cell_label.setText(f"true {rows[true]}, predicted {cols[predicted]}: "
                                f"{report.matrix.counts[true, predicted]} in {len(images)} "
                                "image(s)")
        self.cell_images.clear()
        for name, n in sorted(images.items(), key=lambda kv: (-kv[1], kv[0])):
            self.cell_images.addItem(_image_item(f"{n:>3}  {name}", name))
        return images

    def _pick(self, item: QListWidgetItem) -> None:
        self.image_picked.emit(item.data(PathRole))


def _rect(box) -> QRectF:
    x1, y1, x2, y2 = (float(v) for v in box)
    return QRectF(x1, y1, x2 - x1, y2 - y1)


def _image_item(text: str, name: str) -> QListWidgetItem:
    item = QListWidgetItem(text)
    item.setData(PathRole, name)
    item.setToolTip(name)
    return item


def _spin(low: float, high: float, value: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox(minimum=low, maximum=high, value=value, decimals=2)
    spin.setSingleStep(0.05)
    return spin


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget, 1 if widget is widgets[0] else 0)
    return row
