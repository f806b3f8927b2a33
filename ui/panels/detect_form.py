"""The Detect dock's widgets: the Run box (source, model, engine, thresholds, size, set name,
run and cancel, progress) and the Results box (set, show, filters, export, accept), built onto
the panel as its attributes; the panel connects them."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS

SOURCES = (("all", "Open data set: all images"), ("unlabeled", "Open data set: unlabeled images"),
           ("filtered", "Open data set: images in the list's filter"),
           ("folder", "A folder…"), ("file", "An image or list file…"))
EXPORT_FORMATS = (("yolo", "YOLO txt + confidence"), ("voc", "Pascal VOC XML"),
                  ("coco", "COCO results JSON"), ("csv", "CSV"))
SHOW = (("both", "Labels and predictions"), ("predictions", "Predictions only"),
        ("labels", "Labels only"))


def build(panel: QWidget, engines: list) -> None:
    """Make the panel's widgets (``panel.source``, ``panel.conf``, ``panel.sets``, ...) and
    lay them out in it. ``engines``: those of this machine (``engines_here()``)."""
    layout = QVBoxLayout(panel)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(_run_box(panel, engines))
    layout.addWidget(_results_box(panel))
    layout.addStretch(1)
    for combo in (panel.source, panel.picker, panel.engine, panel.sets, panel.show_mode,
                  panel.class_filter, panel.export_format):
        # long paths and names must not widen the dock past the left column
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(6)


def _run_widgets(panel: QWidget, engines: list) -> None:
    panel.source = _combo(SOURCES)
    panel.source_label = QLabel(wordWrap=True)
    panel.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    panel.picker = QComboBox()
    panel.picker.setToolTip("The model of Detect, Propose and Inspect")
    panel.engine = QComboBox()
    panel.engine.addItem("Automatic", "auto")
    for engine in engines:
        if engine.available:
            panel.engine.addItem(engine.name, engine.name)
    panel.engine.setToolTip("Only the engines that run on this machine")
    panel.engine_label = QLabel("—", wordWrap=True)
    panel.engine_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    panel.conf = _double(0.0, 1.0, DEFAULT_CONF, 0.05)
    panel.nms = _double(0.0, 1.0, DEFAULT_NMS, 0.05)
    panel.size = QSpinBox()
    panel.size.setRange(0, 4096)
    panel.size.setSingleStep(32)
    panel.size.setSpecialValueText("model's own")
    panel.size.setSuffix(" px")
    panel.set_name = QLineEdit(placeholderText="MODEL-DATE-TIME when left empty")
    panel.set_name.setToolTip("The run's results are kept under this name in the images' "
                              "folder (.predictions/NAME)")
    panel.run_button = QPushButton("Run")
    panel.cancel_button = QPushButton("Cancel", enabled=False)
    panel.progress = QProgressBar()
    panel.rate = QLabel()


def _run_box(panel: QWidget, engines: list) -> QGroupBox:
    _run_widgets(panel, engines)
    box = QGroupBox("Run")
    form = QFormLayout(box)
    form.addRow("Source", panel.source)
    form.addRow("", panel.source_label)
    form.addRow("Model", panel.picker)
    form.addRow("Engine", panel.engine)
    form.addRow("", panel.engine_label)
    thresholds = QHBoxLayout()
    for text, widget in (("conf", panel.conf), ("NMS", panel.nms)):
        thresholds.addWidget(QLabel(text))
        thresholds.addWidget(widget, 1)
    form.addRow("Thresholds", thresholds)
    form.addRow("Size", panel.size)
    form.addRow("Save as", panel.set_name)
    buttons = QHBoxLayout()
    buttons.addWidget(panel.run_button)
    buttons.addWidget(panel.cancel_button)
    form.addRow(buttons)
    form.addRow(panel.progress)
    form.addRow(panel.rate)
    return box


def _results_box(panel: QWidget) -> QGroupBox:
    panel.sets = QComboBox()
    panel.show_mode = _combo(SHOW)
    panel.class_filter = QComboBox()
    panel.min_score = _double(0.0, 1.0, 0.0, 0.05)
    panel.min_score.setToolTip("Hide predictions below this score")
    panel.export_format = _combo(EXPORT_FORMATS)
    panel.export_images = QCheckBox("with images")
    panel.export_images.setToolTip("Also write each image with its boxes drawn "
                                   "(annotated/), as detect --save-images")
    panel.export_button = QPushButton("Export…")
    panel.accept_button = QPushButton("Accept as labels for selected images")
    panel.accept_button.setToolTip("One undoable edit per image; the class and score "
                                   "filters apply")
    box = QGroupBox("Results")
    form = QFormLayout(box)
    form.addRow("Set", panel.sets)
    form.addRow("Show", panel.show_mode)
    filters = QHBoxLayout()
    filters.addWidget(panel.class_filter, 1)
    filters.addWidget(QLabel("score ≥"))
    filters.addWidget(panel.min_score)
    form.addRow("Filter", filters)
    export = QHBoxLayout()
    export.addWidget(panel.export_images)
    export.addWidget(panel.export_button)
    form.addRow("Export", panel.export_format)
    form.addRow("", export)
    form.addRow(panel.accept_button)
    return box


def _combo(items: tuple[tuple[str, str], ...]) -> QComboBox:
    combo = QComboBox()
    for key, text in items:
        combo.addItem(text, key)
    return combo


def _double(low: float, high: float, value: float, step: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(2)
    box.setSingleStep(step)
    box.setValue(value)
    return box
