"""The Train dock's options: template, size, epochs, batch, run folder and Resume, and the
``workbench train`` arguments they make."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)

from workbench.errors import WorkbenchError
from workbench.train import run_folder
from workbench.train.settings import TrainSettings

# the trainer's built-in templates and the size each was made for (see darknet_cfg/)
TEMPLATE_SIZES = {"demo-tiny": 192, "yolov3-tiny": 416, "yolov3-tiny-3l": 416, "yolov3": 416}
DEFAULTS = TrainSettings(dataset=Path("."))  # the form starts at the CLI's defaults


def default_run_dir(dataset_root: Path, template: str) -> Path:
    """``DATASET/../runs/<dataset name>-<template name>``: beside the data, not inside it.

    The rule is the CLI's (``workbench.train.run_folder.default_run_dir``) with the dataset's
    parent as its base: the CLI's base is the working folder, but the window's working folder
    is wherever it was launched from (a desktop launcher: the home folder or /), so runs go
    next to the data set they train on (and not inside it, where they would be scanned as
    part of it); the child process also runs in that parent folder."""
    root = Path(dataset_root)
    return run_folder.default_run_dir(root, template, base=root.parent)


def holds_run(run_dir: Path) -> bool:
    """True when ``run_dir`` has a run with a checkpoint (``--resume`` can continue it)."""
    run_dir = Path(run_dir)
    return (run_dir / "config.json").is_file() and (run_dir / "checkpoints" / "checkpoint").is_file()


def train_arguments(dataset: Path, template: str, size: int, epochs: int, batch: int,
                    run_dir: Path, resume: bool = False) -> list[str]:
    """The arguments after ``python`` that run one training with JSON-lines progress."""
    if resume:  # the run keeps its own template, size and batch; --epochs may move its end
        return ["-m", "workbench", "train", str(dataset), "--json", "--epochs", str(epochs),
                "--out", str(run_dir), "--resume"]
    return ["-m", "workbench", "train", str(dataset), "--json", "--template", template,
            "--size", str(size), "--epochs", str(epochs), "--batch", str(batch),
            "--out", str(run_dir)]


def saved_settings(run_dir: Path) -> dict:
    """The settings a run in ``run_dir`` was started with ({} when there is none to read)."""
    try:
        settings = run_folder.read_config(Path(run_dir) / "config.json").get("settings")
    except WorkbenchError:
        return {}
    return settings if isinstance(settings, dict) else {}


class TrainForm(QWidget):
    """The options of one run. ``run_dir_edited``: the run folder was typed or chosen (then
    a new template or dataset no longer suggests one)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir_edited = False
        self.template = QComboBox(editable=True)
        self.template.addItems(list(TEMPLATE_SIZES))
        self.template.setCurrentText(DEFAULTS.template)
        self.template.setToolTip("A built-in template or a darknet .cfg file")
        self.browse_cfg = QToolButton(text="…", toolTip="Choose a .cfg file")
        self.size = _spin(32, 2048, DEFAULTS.size, step=32, suffix=" px")
        self.epochs = _spin(1, 100_000, DEFAULTS.epochs)
        self.batch = _spin(1, 1024, DEFAULTS.batch)
        self.run_dir = QLineEdit()
        self.run_dir.setToolTip("Checkpoints, metrics and the exported bundle go here")
        self.browse_dir = QToolButton(text="…", toolTip="Choose the run folder")
        self.resume = QCheckBox("Resume the run in this folder")
        self.run_hint = QLabel(wordWrap=True)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Template", _row(self.template, self.browse_cfg))
        form.addRow("Size", self.size)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch", self.batch)
        form.addRow("Run folder", _row(self.run_dir, self.browse_dir))
        form.addRow("", self.resume)
        self.browse_cfg.clicked.connect(self._browse_cfg)
        self.browse_dir.clicked.connect(self._browse_run_dir)
        self.run_dir.textEdited.connect(self._run_dir_typed)
        self.run_dir.textChanged.connect(self.update_hint)
        self.resume.toggled.connect(self.update_hint)
        self.resume.toggled.connect(self._show_saved_run)

    def options(self) -> tuple[QWidget, ...]:
        """The widgets disabled while a run goes on."""
        return (self.template, self.browse_cfg, self.size, self.epochs, self.batch,
                self.run_dir, self.browse_dir, self.resume)

    def template_changed(self, text: str) -> None:
        if text in TEMPLATE_SIZES:
            self.size.setValue(TEMPLATE_SIZES[text])

    def suggest_run_dir(self, dataset_root: Path | None) -> None:
        if dataset_root is None or self.run_dir_edited:
            return
        self.run_dir.setText(str(default_run_dir(dataset_root,
                                                 self.template.currentText() or "model")))

    def _run_dir_typed(self, _text: str) -> None:
        self.run_dir_edited = True

    def update_hint(self, *_: object) -> None:
        text = self.run_dir.text().strip()
        if text and holds_run(Path(text)) and not self.resume.isChecked():
            self.run_hint.setText("This folder holds a training run: tick Resume to continue "
                                  "it, or choose another folder.")
        elif text and self.resume.isChecked() and not (Path(text) / "config.json").is_file():
            self.run_hint.setText("Nothing to resume in this folder.")
        else:
            self.run_hint.setText("")

    def _show_saved_run(self, resume: bool) -> None:
        """Resume continues the run as it was started: show its size, epochs and batch, not
        the last ones typed (only Epochs is sent, to move the run's end when changed)."""
        saved = saved_settings(Path(self.run_dir.text().strip())) if resume else {}
        for widget, key in ((self.size, "size"), (self.epochs, "epochs"),
                            (self.batch, "batch")):
            if isinstance(saved.get(key), int):
                widget.setValue(saved[key])

    def _browse_cfg(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Darknet cfg", "", "Darknet cfg (*.cfg)")
        if path:
            self.template.setCurrentText(path)

    def _browse_run_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Run folder", self.run_dir.text())
        if path:
            self.run_dir_edited = True
            self.run_dir.setText(path)

    def arguments(self, dataset_root: Path) -> list[str]:
        """The child's arguments for the options on screen (after ``python``)."""
        return train_arguments(dataset_root, self.template.currentText().strip(),
                               self.size.value(), self.epochs.value(), self.batch.value(),
                               Path(self.run_dir.text().strip()), self.resume.isChecked())


def _spin(low: int, high: int, value: int, step: int = 1, suffix: str = "") -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)   # before the value, or the value is clipped to the default range
    box.setSingleStep(step)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


def _row(*widgets: QWidget) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        row.addWidget(widget, 1 if isinstance(widget, (QComboBox, QLineEdit)) else 0)
    return row
