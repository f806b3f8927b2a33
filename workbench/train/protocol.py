"""How a training run reports progress: JSON lines for programs, a progress bar for people.

With ``workbench train --json`` every stdout line is one JSON object with an ``event`` key,
flushed at once, so a parent process (the GUI runs training as a child process) only parses
lines. Events, in order: ``start``, then per step ``batch``, per epoch ``epoch`` and
``checkpoint``, and last ``done`` (or ``error``). docs/training.md lists every field.

The set of events is closed: the window's Train dock calls a handler per event kind and has
none for a new one, so the progress of validation and export (``Reporter.progress``) is drawn
for people only; the JSON stream carries none of it.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, TextIO

from workbench.evaluation.plots import write_training_plot
from workbench.progress import ProgressBar, duration, line_interval
from workbench.storage.atomic import atomic_write_text
from workbench.train import events as ev
from workbench.train.events import EVENTS, Event

__all__ = ["EVENTS", "HumanReporter", "JsonLinesReporter", "Reporter", "encode_event",
           "parse_event"]


def encode_event(event: str, **fields: Any) -> str:
    """One protocol line (no newline): ``events.make(event, **fields).to_json()``."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    return ev.make(event, **fields).to_json()


def parse_event(line: str) -> dict:
    """The object on one protocol line; ValueError when the line is not one
    (``events.from_json`` gives the typed event)."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or obj.get("event") not in EVENTS:
        raise ValueError(f"not a training event: {line[:80]!r}")
    return obj


class Reporter:
    """Receives training events. The base class passes each to ``emit`` (kind and fields),
    which ignores it (library use; tests override ``emit``)."""

    def report(self, event: Event) -> None:
        self.emit(event.event, **event.fields())

    def emit(self, event: str, **fields: Any) -> None:
        pass

    def progress(self, label: str, total: int, unit: str) -> ProgressBar:
        """A ``workbench.progress.ProgressBar`` for a phase between events (validation,
        export): silent here and in the JSON stream (module docstring)."""
        return ProgressBar(label, total, enabled=False, unit=unit)


class _TypedReporter(Reporter, ABC):
    """A reporter that handles typed events: ``emit(kind, **fields)`` becomes one."""

    def emit(self, event: str, **fields: Any) -> None:
        self.report(ev.make(event, **fields))

    @abstractmethod
    def report(self, event: Event) -> None:
        """Show or write one event."""


class JsonLinesReporter(_TypedReporter):
    """Writes each event as one flushed JSON line (``--json``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def report(self, event: Event) -> None:
        self.stream.write(event.to_json() + "\n")
        self.stream.flush()


def _f(value: Any, default: float = 0.0) -> float:
    """A number of an event for a format spec (absent or null: ``default``)."""
    return default if value is None or value is ev.ABSENT else value


def _or_none(value: Any) -> Any:
    return None if value is ev.ABSENT else value


class HumanReporter(_TypedReporter):
    """A progress line per step on a terminal, one summary line per epoch everywhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.steps_per_epoch = 0
        # off a terminal a step's line every few seconds: a long epoch is never silent there
        self.interval = line_interval()
        self._last_line = time.perf_counter()

    def progress(self, label: str, total: int, unit: str) -> ProgressBar:
        """Validation and export: a transient bar on a terminal, a line every few seconds
        elsewhere, on the same stream as the epoch lines."""
        return ProgressBar(label, total, stream=self.stream, unit=unit, leave=False)

    def report(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.event}")
        handler(event)
        self.stream.flush()

    def _on_start(self, e: ev.Started) -> None:
        out = self.stream
        self.steps_per_epoch = e.steps_per_epoch or 0
        out.write(f"training {_or_none(e.images_train)} images ({_or_none(e.images_valid)} for "
                  f"validation), {_or_none(e.epochs)} epochs of {self.steps_per_epoch} steps, "
                  f"batch {_or_none(e.batch)}, {1 if e.replicas is ev.ABSENT else e.replicas} replica(s) -> "
                  f"{_or_none(e.run_dir)}\n")
        skipped = e.skipped_images or []
        if skipped:
            out.write(f"skipped {len(skipped)} image(s) that do not decode:\n")
            out.write("".join(f"  {line}\n" for line in skipped))
        for note in (e.weights_report, e.anchors_report, e.resume_note):
            if note:
                out.write(f"{note}\n")
        if e.precision:
            out.write(f"precision {e.precision}"
                      + (f", weight average (EMA) {e.ema}" if e.ema else "") + "\n")

    def _on_batch(self, e: ev.StepProgress) -> None:
        if not self.tty:
            self._step_line(e)
            return
        n = self.steps_per_epoch or 1
        done = min(int(_f(e.batch, 0)), n)
        bar = "#" * (24 * done // n)
        self.stream.write(f"\repoch {_or_none(e.epoch)} [{bar:<24}] {done}/{n} loss "
                          f"{_f(e.loss, float('nan')):.3f} {_f(e.images_per_s):.1f} img/s "
                          f"eta {duration(_or_none(e.eta_s))}  ")

    def _step_line(self, e: ev.StepProgress) -> None:
        now = time.perf_counter()
        if now - self._last_line < self.interval:
            return
        self._last_line = now
        self.stream.write(f"epoch {_or_none(e.epoch)}: {_or_none(e.batch)}/"
                          f"{self.steps_per_epoch} steps, loss {_f(e.loss, float('nan')):.3f}, "
                          f"{_f(e.images_per_s):.1f} img/s, eta {duration(_or_none(e.eta_s))}\n")

    def _on_epoch(self, e: ev.EpochEnded) -> None:
        if self.tty:
            self.stream.write("\r" + " " * 79 + "\r")
        m, m95 = _or_none(e.val_map50), _or_none(e.val_map50_95)
        mtext = "-" if m is None else f"{m:.4f}"
        if m95 is not None:
            mtext += f" mAP@[.5:.95] {m95:.4f}"
        self.stream.write(
            f"epoch {_or_none(e.epoch)}: loss {_f(e.loss, float('nan')):.4f} (box {_f(e.box):.3f} "
            f"obj {_f(e.obj):.3f} cls {_f(e.cls):.3f}) lr {_f(e.lr):.2e} mAP@0.5 {mtext} "
            f"{_f(e.images_per_s):.1f} img/s eta {duration(_or_none(e.eta_s))}\n")

    def _on_checkpoint(self, e: ev.Checkpointed) -> None:
        pass

    def _on_done(self, e: ev.Finished) -> None:
        m, m95 = _or_none(e.best_map50), _or_none(e.best_map50_95)
        figures = ("-" if m is None else f"{m:.4f}") + (
            "" if m95 is None else f", mAP@[.5:.95] {m95:.4f}")
        self.stream.write(f"{_or_none(e.status)}: best epoch {_or_none(e.best_epoch)}: mAP@0.5 "
                          f"{figures}; model bundle {_or_none(e.bundle)}\n")
        if _or_none(e.best_f1_conf) is not None:
            self.stream.write(
                f"best-F1 confidence {e.best_f1_conf:.3f} (recall {e.recall_at_best_f1:.3f}; at "
                f"--conf {e.default_conf}: {e.recall_at_default_conf:.3f})"
                + ("; stored in the bundle, detect uses it" if e.conf_stored else "") + "\n")
        if _or_none(e.merged_map50) is not None:
            self.stream.write(
                f"with merged boxes (detect --merge-boxes): mAP@0.5 {e.merged_map50:.4f}, "
                f"mAP@[.5:.95] {e.merged_map50_95:.4f}"
                + ("; better: stored in the bundle, detect merges by default" if e.merge_boxes
                   else "; not better: detect keeps NMS's boxes") + "\n")

    def _on_error(self, e: ev.Failed) -> None:
        self.stream.write(f"error: {_or_none(e.message)}\n")


# --- the run's files: metrics.csv and metrics.png ---------------------------------------

METRIC_COLUMNS = ("epoch", "step", "loss", "box", "obj", "cls", "lr", "val_map50",
                  "val_map50_95", "images_per_s", "seconds")


def write_metrics_csv(path, rows: list[dict]) -> None:
    """One row per finished epoch, columns :data:`METRIC_COLUMNS`, written atomically."""
    lines = [",".join(METRIC_COLUMNS)]
    for row in rows:
        cells = []
        for key in METRIC_COLUMNS:
            value = row.get(key)
            cells.append("" if value is None else (f"{value:.6g}" if isinstance(value, float)
                                                    else str(value)))
        lines.append(",".join(cells))
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_metrics_csv(path) -> list[dict]:
    """The rows :func:`write_metrics_csv` wrote (empty when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for raw in csv.DictReader(f):
            row: dict = {}
            for key in METRIC_COLUMNS:
                text = (raw.get(key) or "").strip()
                if not text:
                    row[key] = None
                elif key in ("epoch", "step"):
                    row[key] = int(float(text))
                else:
                    row[key] = float(text)
            rows.append(row)
    return rows


def draw_metrics_png(path, rows: list[dict]) -> None:
    """Loss parts (left, log scale) and validation mAP@0.5 (right) per epoch, with
    matplotlib (Agg): see ``workbench.evaluation.plots.draw_training``."""
    write_training_plot(path, rows)
