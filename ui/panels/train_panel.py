"""The Train dock: train a detector on the open dataset in a child process.

TensorFlow never loads in the GUI process: the panel starts ``python -m workbench train
DATASET --json ...`` with QProcess and reads its stdout one JSON line at a time
(``workbench.train.protocol.parse_event``; the events are listed in docs/training.md).
Everything is driven by QProcess signals, so the event loop never waits on the child.
Stop sends SIGTERM (the trainer saves a checkpoint and ends with an "interrupted" done
event); a second Stop, or no exit within ``kill_after_ms``, kills it.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.plot_view import PlotView
from ui.progress_text import show_count, show_idle
from ui.session import LabelSession
from workbench.train.protocol import parse_event

# the trainer's built-in templates and the size each was made for (see darknet_cfg/)
TEMPLATE_SIZES = {"demo-tiny": 192, "yolov3-tiny": 416, "yolov3": 416}
STDERR_KEEP = 64 * 1024  # TensorFlow logs a lot; the tail is enough for a message
IDLE_TEXT = "Idle: press Start to train on the open data set"
# the two mAP headers on two lines: on one they alone take a 400 px dock's spare width
TABLE_COLUMNS = ("Epoch", "Loss", "Box", "Obj", "Cls", "lr", "mAP\n@0.5", "mAP\n@.5:.95")
COLUMN_TIPS = ("Epoch", "Total loss (mean over the epoch)", "Box regression loss",
               "Objectness loss", "Class loss", "Learning rate at the epoch's end",
               "mAP@0.5 on the validation images", "mAP@[.5:.95] on the validation images")


def default_run_dir(dataset_root: Path, template: str) -> Path:
    """``DATASET/../runs/<dataset name>-<template name>``: beside the data, not inside it."""
    root = Path(dataset_root)
    return root.parent / "runs" / f"{root.name}-{Path(template).stem}"


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
    from workbench.errors import WorkbenchError
    from workbench.train.run_folder import read_config

    try:
        settings = read_config(Path(run_dir) / "config.json").get("settings")
    except WorkbenchError:
        return {}
    return settings if isinstance(settings, dict) else {}


def duration(seconds: float | None) -> str:
    """``h:mm:ss``, or ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _number(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def short_number(value: float | None) -> str:
    """A loss in at most 5-6 characters (4 significant digits): the table's eight columns
    fit the dock without scrolling sideways; the cell's tooltip has every digit."""
    if value is None:
        return "-"
    size = abs(value)
    return format(value, ".0f" if size >= 1000 else ".1f" if size >= 100 else
                  ".2f" if size >= 10 else ".3f")


def short_rate(value: float | None) -> str:
    """A learning rate as ``2.5e-4``: Python's ``2.5e-04`` spends two characters on nothing."""
    if value is None:
        return "-"
    mantissa, exponent = format(value, ".1e").split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _last_line(text: str) -> str:
    """The last non-empty line: the one-line message of a failed child."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class MetricsPlot(PlotView):
    """Loss parts per epoch (log scale) and validation mAP@0.5, drawn by matplotlib
    (``workbench.evaluation.plots.draw_training``, the same drawing as the run's metrics.png)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(self._draw_rows, parent, min_height=90)
        self.rows: list[dict] = []

    def _draw_rows(self, figure) -> None:
        from workbench.evaluation.plots import draw_training

        draw_training(figure, self.rows)

    def set_rows(self, rows: list[dict]) -> None:
        self.rows = rows
        self.redraw()


class TrainPanel(QWidget):
    """Options, Start/Stop, progress, latest losses, per-epoch table and plot of one run."""

    model_ready = Signal(str)        # the exported bundle folder of a run that ended
    status = Signal(str)             # one-line messages for the status bar
    running_changed = Signal(bool)

    def __init__(self, session: LabelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.kill_after_ms = 30_000      # after Stop: time to save a checkpoint before a kill
        self.python = sys.executable  # the child runs with the GUI's own Python
        self._process: QProcess | None = None
        self._stdout = b""
        self._stderr = b""
        self._stopping = False
        self._closing = False
        self._error = ""
        self._run_dir_edited = False
        self.start_event: dict | None = None
        self.done_event: dict | None = None
        self.checkpoints: list[dict] = []
        self.epochs: list[dict] = []
        self.bundle = ""

        self.template = QComboBox(editable=True)
        self.template.addItems(list(TEMPLATE_SIZES))
        self.template.setCurrentText("yolov3-tiny")
        self.template.setToolTip("A built-in template or a darknet .cfg file")
        browse_cfg = QToolButton(text="…", toolTip="Choose a .cfg file")
        browse_cfg.clicked.connect(self._browse_cfg)
        self.size = _spin(32, 2048, 416, step=32, suffix=" px")
        self.epochs_box = _spin(1, 100_000, 50)
        self.batch = _spin(1, 1024, 8)
        self.run_dir = QLineEdit()
        self.run_dir.setToolTip("Checkpoints, metrics and the exported bundle go here")
        browse_dir = QToolButton(text="…", toolTip="Choose the run folder")
        browse_dir.clicked.connect(self._browse_run_dir)
        self.resume = QCheckBox("Resume the run in this folder")
        self.run_hint = QLabel(wordWrap=True)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop", enabled=False)
        self.progress = QProgressBar()
        show_idle(self.progress)   # no "0 / 1 steps" before a run has steps
        self.latest = QLabel(IDLE_TEXT, wordWrap=True)
        self.latest.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        for column, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(column).setToolTip(tip)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # the last takes what is left: a stretched last section sized to contents kept an
        # old width and pushed the table a few pixels past the dock
        header.setSectionResizeMode(len(TABLE_COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.plot = MetricsPlot()
        self.result = QLabel(wordWrap=True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.addRow("Template", _row(self.template, browse_cfg))
        form.addRow("Size", self.size)
        form.addRow("Epochs", self.epochs_box)
        form.addRow("Batch", self.batch)
        form.addRow("Run folder", _row(self.run_dir, browse_dir))
        form.addRow("", self.resume)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(form)
        layout.addWidget(self.run_hint)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.latest)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.plot)
        layout.addWidget(self.result)
        self._options = (self.template, browse_cfg, self.size, self.epochs_box, self.batch,
                         self.run_dir, browse_dir, self.resume)

        self._kill_timer = QTimer(self, singleShot=True)
        self._kill_timer.timeout.connect(self._kill)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.template.currentTextChanged.connect(self._template_changed)
        self.run_dir.textEdited.connect(self._run_dir_typed)
        self.run_dir.textChanged.connect(self._update_hint)
        self.resume.toggled.connect(self._update_hint)
        self.resume.toggled.connect(self._show_saved_run)
        session.dataset_changed.connect(self._dataset_changed)
        self._dataset_changed()

    # --- options ----------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        self._run_dir_edited = False
        if not self.running():   # the last folder's run stays on screen only while it runs
            self._reset()
            self.latest.setText(IDLE_TEXT)
            self.result.setText("")
            self.result.setToolTip("")
            self.resume.setChecked(False)
        self._suggest_run_dir()
        self._update_buttons()

    def _template_changed(self, text: str) -> None:
        if text in TEMPLATE_SIZES:
            self.size.setValue(TEMPLATE_SIZES[text])
        self._suggest_run_dir()

    def _suggest_run_dir(self) -> None:
        dataset = self.session.dataset
        if dataset is None or self._run_dir_edited:
            return
        self.run_dir.setText(str(default_run_dir(dataset.root, self.template.currentText()
                                                 or "model")))

    def _run_dir_typed(self, _text: str) -> None:
        self._run_dir_edited = True

    def _update_hint(self, *_: object) -> None:
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
        for widget, key in ((self.size, "size"), (self.epochs_box, "epochs"),
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
            self._run_dir_edited = True
            self.run_dir.setText(path)

    def _update_buttons(self) -> None:
        running = self.running()
        self.start_button.setEnabled(not running and self.session.dataset is not None)
        self.stop_button.setEnabled(running)
        self.stop_button.setText("Kill" if running and self._stopping else "Stop")
        for widget in self._options:
            widget.setEnabled(not running)

    # --- the run ----------------------------------------------------------------------
    def running(self) -> bool:
        return self._process is not None

    def process_id(self) -> int:
        """The child's process id (0 when none runs or it has not started yet)."""
        return int(self._process.processId()) if self._process is not None else 0

    def arguments(self) -> list[str]:
        """The child's arguments for the options on screen (after ``python``)."""
        dataset = self.session.dataset
        if dataset is None:
            raise ValueError("no dataset is open")
        return train_arguments(dataset.root, self.template.currentText().strip(),
                               self.size.value(), self.epochs_box.value(), self.batch.value(),
                               Path(self.run_dir.text().strip()), self.resume.isChecked())

    def start(self) -> bool:
        """Save pending edits and start training; False when it could not start."""
        if self.running() or self.session.dataset is None:
            return False
        if not self.template.currentText().strip() or not self.run_dir.text().strip():
            self._fail("Choose a template and a run folder first.")
            return False
        try:
            self.session.save_all()  # the child reads the files: train on what is on screen
        except OSError as exc:
            self._fail(f"Could not save the labels before training: {exc}")
            return False
        self._reset()
        process = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        if not env.contains("TF_CPP_MIN_LOG_LEVEL"):
            env.insert("TF_CPP_MIN_LOG_LEVEL", "3")
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.setWorkingDirectory(str(Path(self.session.dataset.root).parent))
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._process_error)
        self._process = process
        self._update_buttons()
        self.running_changed.emit(True)
        self.result.setText("Starting TensorFlow…")
        self.status.emit("Training: starting…")
        process.start(self.python, self.arguments())
        return True

    def stop(self) -> None:
        """First call: SIGTERM (checkpoint, clean exit). Second call: kill now."""
        if self._process is None:
            return
        if self._stopping:
            self._kill()
            return
        self._stopping = True
        self._process.terminate()
        self._kill_timer.start(self.kill_after_ms)
        self._update_buttons()
        self.result.setText("Stopping: saving a checkpoint…")
        self.status.emit("Training: stopping after the current step…")

    def shutdown(self, timeout_ms: int = 5_000) -> bool:
        """For the window's close: stop the child, wait at most ``timeout_ms``, then kill.

        True when no child is left running. model_ready is not emitted while closing.
        """
        process = self._process
        if process is None:
            return True
        self._closing = True
        self._stopping = True
        process.terminate()
        if not process.waitForFinished(max(timeout_ms, 0)):
            process.kill()
            process.waitForFinished(2_000)
        return self._process is None or process.state() == QProcess.ProcessState.NotRunning

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()

    def _reset(self) -> None:
        self._stdout = b""
        self._stderr = b""
        self._stopping = False
        self._error = ""
        self.start_event = None
        self.done_event = None
        self.checkpoints = []
        self.epochs = []
        self.bundle = ""
        show_idle(self.progress)   # the trainer says how many steps in its start event
        self.latest.setText("")
        self.table.setRowCount(0)
        self.plot.set_rows([])
        self.result.setStyleSheet("")

    # --- reading the child ------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self._process is None:
            return
        self._stdout += bytes(self._process.readAllStandardOutput())
        *lines, self._stdout = self._stdout.split(b"\n")
        for line in lines:
            self._line(line)

    def _read_stderr(self) -> None:
        if self._process is None:
            return
        self._stderr = (self._stderr + bytes(self._process.readAllStandardError()))[-STDERR_KEEP:]

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return
        try:
            event = parse_event(text)
        except ValueError:
            # not the protocol (a stray print): keep it where error messages are looked for
            self._stderr = (self._stderr + raw + b"\n")[-STDERR_KEEP:]
            return
        handler = getattr(self, f"_on_{event['event']}")
        handler(event)

    def _on_start(self, e: dict) -> None:
        self.start_event = e
        total = max(int(e.get("epochs", 1)) * int(e.get("steps_per_epoch", 1)), 1)
        show_count(self.progress, "steps", total)
        self.progress.setValue(min(int(e.get("step", 0)), total))
        resumed = " (resumed)" if e.get("resumed") else ""
        text = (f"Training{resumed}: {e.get('images_train')} images, {e.get('images_valid')} for "
                f"validation, {len(e.get('classes') or [])} classes, "
                f"{e.get('width')}×{e.get('height')}")
        skipped = e.get("skipped_images") or []
        if skipped:  # named before training, one per line in the tooltip
            text += f"; {len(skipped)} image(s) left out: they do not decode"
        self.result.setToolTip("\n".join(skipped))
        self.result.setText(text)
        self.status.emit(text)

    def _on_batch(self, e: dict) -> None:
        step = int(e.get("step", 0))
        if step > self.progress.maximum():
            self.progress.setMaximum(step)
        self.progress.setValue(step)
        self.latest.setText(
            f"epoch {e.get('epoch')} step {step} · loss {_number(e.get('loss'))} "
            f"(box {_number(e.get('box'))} obj {_number(e.get('obj'))} "
            f"cls {_number(e.get('cls'))}) · lr {_number(e.get('lr'), '.2e')} · "
            f"{_number(e.get('images_per_s'), '.1f')} img/s · ETA {duration(e.get('eta_s'))}")

    def _on_epoch(self, e: dict) -> None:
        self.epochs.append(e)
        row = self.table.rowCount()
        self.table.insertRow(row)
        keys = ("epoch", "loss", "box", "obj", "cls", "lr", "val_map50", "val_map50_95")
        cells = (str(e.get("epoch")), short_number(e.get("loss")), short_number(e.get("box")),
                 short_number(e.get("obj")), short_number(e.get("cls")), short_rate(e.get("lr")),
                 _number(e.get("val_map50"), ".4f"), _number(e.get("val_map50_95"), ".4f"))
        for column, (key, text) in enumerate(zip(keys, cells, strict=True)):
            item = QTableWidgetItem(text)
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(f"{key}: {e.get(key)}")   # every digit the trainer sent
            self.table.setItem(row, column, item)
        self.table.scrollToBottom()
        self.plot.set_rows(self.epochs)
        self.status.emit(f"Training: epoch {e.get('epoch')} mAP@0.5 "
                         f"{_number(e.get('val_map50'), '.4f')} (best "
                         f"{_number(e.get('best_map50'), '.4f')}), ETA {duration(e.get('eta_s'))}")

    def _on_checkpoint(self, e: dict) -> None:
        self.checkpoints.append(e)
        if e.get("bundle"):
            self.bundle = str(e["bundle"])

    def _on_done(self, e: dict) -> None:
        self.done_event = e
        self.bundle = str(e["bundle"]) if e.get("bundle") else self.bundle
        words = {"finished": "Finished", "early_stopped": "Stopped early (no better mAP)",
                 "interrupted": "Interrupted"}
        text = (f"{words.get(e.get('status'), e.get('status'))} at epoch {e.get('epoch')}: best "
                f"mAP@0.5 {_number(e.get('best_map50'), '.4f')}, mAP@[.5:.95] "
                f"{_number(e.get('best_map50_95'), '.4f')} (epoch {e.get('best_epoch')})")
        if e.get("status") == "interrupted":
            text += " · Start again to resume"
            self.resume.setChecked(True)
        text += f"\nModel bundle: {self.bundle}" if self.bundle else "\nNo model exported yet."
        self.result.setText(text)
        self.status.emit(text.replace("\n", " · "))

    def _on_error(self, e: dict) -> None:
        self._error = str(e.get("message") or "training failed")

    # --- the end ----------------------------------------------------------------------
    def _finished(self, exit_code: int, exit_status: QProcess.ExitStatus) -> None:
        process = self._process
        if process is None:
            return
        self._read_stdout()
        self._read_stderr()
        if self._stdout.strip():  # a last line without its newline
            self._line(self._stdout)
            self._stdout = b""
        stderr = self._stderr.decode("utf-8", "replace")
        crashed = exit_status == QProcess.ExitStatus.CrashExit
        message = ""
        if self._error:
            message = self._error
        elif self.done_event is None:
            if self._stopping:
                message = "Training stopped before it saved a checkpoint."
            elif crashed:
                message = f"The training process crashed. {_last_line(stderr)}".strip()
            else:
                message = (_last_line(stderr)
                           or f"The training process ended with exit status {exit_code}.")
        elif exit_code != 0 and not crashed:
            message = _last_line(stderr) or f"exit status {exit_code}"
        self._kill_timer.stop()
        self._process = None
        self._stopping = False
        process.deleteLater()
        self._update_buttons()
        self._update_hint()
        if message:
            self._fail(message)
        bundle = self.bundle if self.done_event is not None else ""
        self.running_changed.emit(False)
        if bundle and Path(bundle).is_dir() and not self._closing:
            self.model_ready.emit(bundle)

    def _process_error(self, error: QProcess.ProcessError) -> None:
        if error != QProcess.ProcessError.FailedToStart or self._process is None:
            return  # crashes and kills arrive through finished
        process, self._process = self._process, None
        process.deleteLater()
        self._update_buttons()
        self._fail(f"Could not start {self.python}: {process.errorString()}")
        self.running_changed.emit(False)

    def _fail(self, message: str) -> None:
        self._error = message
        self.result.setText(message)
        self.result.setStyleSheet("color: #c62828;")
        self.status.emit(f"Training failed: {message}")

    def error_message(self) -> str:
        """The one-line message of the last failed run ("" when it did not fail)."""
        return self._error


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
