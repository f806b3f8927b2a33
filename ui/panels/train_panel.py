"""The Train dock: train a detector on the open dataset in a child process.

TensorFlow never loads in the GUI process: the panel starts ``python -m workbench train
DATASET --json ...`` with QProcess and reads its stdout one JSON line at a time
(``workbench.train.events.from_json``: the same typed events the trainer reports; they are
listed in docs/training.md). The options are ``train_form.TrainForm``, what is shown of a run
``train_view``.
Everything is driven by QProcess signals, so the event loop never waits on the child.
Stop sends SIGTERM (the trainer saves a checkpoint and ends with an "interrupted" done
event); a second Stop, or no exit within ``kill_after_ms``, kills it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QProcessEnvironment, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.panels.train_form import (
    TEMPLATE_SIZES,
    TrainForm,
    default_run_dir,
    holds_run,
    saved_settings,
    train_arguments,
)
from ui.panels.train_view import (
    EpochTable,
    MetricsPlot,
    done_text,
    epoch_status,
    last_line,
    short_number,
    short_rate,
    start_text,
    step_text,
)
from ui.progress_text import show_count, show_idle
from ui.session import LabelSession
from workbench.train import events as ev

__all__ = ["TEMPLATE_SIZES", "MetricsPlot", "TrainPanel", "default_run_dir", "holds_run",
           "saved_settings", "short_number", "short_rate", "train_arguments"]

STDERR_KEEP = 64 * 1024  # TensorFlow logs a lot; the tail is enough for a message
IDLE_TEXT = "Idle: press Start to train on the open data set"


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
        # the run's events as the child reported them (typed; each reads like its JSON too)
        self.start_event: ev.Started | None = None
        self.done_event: ev.Finished | None = None
        self.checkpoints: list[ev.Checkpointed] = []
        self.epochs: list[ev.EpochEnded] = []
        self.bundle = ""

        self.form = TrainForm()
        form = self.form
        # the options, under the names callers and tests know them by
        self.template, self.size, self.epochs_box, self.batch = (form.template, form.size,
                                                                 form.epochs, form.batch)
        self.run_dir, self.resume, self.run_hint = form.run_dir, form.resume, form.run_hint
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop", enabled=False)
        self.progress = QProgressBar()
        show_idle(self.progress)   # no "0 / 1 steps" before a run has steps
        self.latest = QLabel(IDLE_TEXT, wordWrap=True)
        self.latest.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = EpochTable()
        self.plot = MetricsPlot()
        self.result = QLabel(wordWrap=True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._lay_out()

        self._kill_timer = QTimer(self, singleShot=True)
        self._kill_timer.timeout.connect(self._kill)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.template.currentTextChanged.connect(self._template_changed)
        session.dataset_changed.connect(self._dataset_changed)
        self._dataset_changed()

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.form)
        layout.addWidget(self.run_hint)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.latest)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.plot)
        layout.addWidget(self.result)

    # --- options ----------------------------------------------------------------------
    def _dataset_changed(self) -> None:
        self.form.run_dir_edited = False
        if not self.running():   # the last folder's run stays on screen only while it runs
            self._reset()
            self.latest.setText(IDLE_TEXT)
            self.result.setText("")
            self.result.setToolTip("")
            self.resume.setChecked(False)
        self._suggest_run_dir()
        self._update_buttons()

    def _template_changed(self, text: str) -> None:
        self.form.template_changed(text)
        self._suggest_run_dir()

    def _suggest_run_dir(self) -> None:
        dataset = self.session.dataset
        self.form.suggest_run_dir(dataset.root if dataset is not None else None)

    def _update_hint(self) -> None:
        self.form.update_hint()

    def _update_buttons(self) -> None:
        running = self.running()
        self.start_button.setEnabled(not running and self.session.dataset is not None)
        self.stop_button.setEnabled(running)
        self.stop_button.setText("Kill" if running and self._stopping else "Stop")
        for widget in self.form.options():
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
        return self.form.arguments(dataset.root)

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
            event = ev.from_json(text)
        except (ValueError, TypeError):
            # not the protocol (a stray print): keep it where error messages are looked for
            self._stderr = (self._stderr + raw + b"\n")[-STDERR_KEEP:]
            return
        handler = getattr(self, f"_on_{event.event}")
        handler(event)

    def _on_start(self, e: ev.Started) -> None:
        self.start_event = e
        total = max(int(e.get("epochs", 1)) * int(e.get("steps_per_epoch", 1)), 1)
        show_count(self.progress, "steps", total)
        self.progress.setValue(min(int(e.get("step", 0)), total))
        text = start_text(e)
        self.result.setToolTip("\n".join(e.skipped_images or []))
        self.result.setText(text)
        self.status.emit(text)

    def _on_batch(self, e: ev.StepProgress) -> None:
        step = int(e.get("step", 0))
        if step > self.progress.maximum():
            self.progress.setMaximum(step)
        self.progress.setValue(step)
        self.latest.setText(step_text(e))

    def _on_epoch(self, e: ev.EpochEnded) -> None:
        self.epochs.append(e)
        self.table.add_epoch(e)
        self.plot.set_rows(self.epochs)
        self.status.emit(epoch_status(e))

    def _on_checkpoint(self, e: ev.Checkpointed) -> None:
        self.checkpoints.append(e)
        if e.bundle:
            self.bundle = str(e.bundle)

    def _on_done(self, e: ev.Finished) -> None:
        self.done_event = e
        self.bundle = str(e.bundle) if e.bundle else self.bundle
        if e.status == "interrupted":
            self.resume.setChecked(True)
        text = done_text(e, self.bundle)
        self.result.setText(text)
        self.status.emit(text.replace("\n", " · "))

    def _on_error(self, e: ev.Failed) -> None:
        self._error = str(e.message or "training failed")

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
                message = f"The training process crashed. {last_line(stderr)}".strip()
            else:
                message = (last_line(stderr)
                           or f"The training process ended with exit status {exit_code}.")
        elif exit_code != 0 and not crashed:
            message = last_line(stderr) or f"exit status {exit_code}"
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
