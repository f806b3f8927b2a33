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

import json
import math
import sys
import time
from typing import Any, TextIO

EVENTS = ("start", "batch", "epoch", "checkpoint", "done", "error")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: write null for them so every line parses with any JSON reader."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item"):  # numpy / tensorflow scalars
        return _clean(value.item())
    return value


def encode_event(event: str, **fields: Any) -> str:
    """One protocol line (no newline)."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}")
    return json.dumps({"event": event, **_clean(fields)}, separators=(",", ":"),
                      allow_nan=False)


def parse_event(line: str) -> dict:
    """The object on one protocol line; ValueError when the line is not one."""
    obj = json.loads(line)
    if not isinstance(obj, dict) or obj.get("event") not in EVENTS:
        raise ValueError(f"not a training event: {line[:80]!r}")
    return obj


class Reporter:
    """Receives training events. The base class ignores them (library use, tests)."""

    def emit(self, event: str, **fields: Any) -> None:
        pass

    def progress(self, label: str, total: int, unit: str):
        """A ``workbench.progress.ProgressBar`` for a phase between events (validation,
        export): silent here and in the JSON stream (module docstring)."""
        from workbench.progress import ProgressBar

        return ProgressBar(label, total, enabled=False, unit=unit)


class JsonLinesReporter(Reporter):
    """Writes each event as one flushed JSON line (``--json``)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        self.stream.write(encode_event(event, **fields) + "\n")
        self.stream.flush()


def _duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class HumanReporter(Reporter):
    """A progress line per step on a terminal, one summary line per epoch everywhere."""

    def __init__(self, stream: TextIO | None = None) -> None:
        from workbench.progress import line_interval

        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.steps_per_epoch = 0
        # off a terminal a step's line every few seconds: a long epoch is never silent there
        self.interval = line_interval()
        self._last_line = time.perf_counter()

    def progress(self, label: str, total: int, unit: str):
        """Validation and export: a transient bar on a terminal, a line every few seconds
        elsewhere, on the same stream as the epoch lines."""
        from workbench.progress import ProgressBar

        return ProgressBar(label, total, stream=self.stream, unit=unit, leave=False)

    def _step_line(self, f: dict) -> None:
        now = time.perf_counter()
        if now - self._last_line < self.interval:
            return
        self._last_line = now
        self.stream.write(f"epoch {f.get('epoch')}: {f.get('batch')}/{self.steps_per_epoch} "
                          f"steps, loss {f.get('loss', float('nan')):.3f}, "
                          f"{f.get('images_per_s', 0):.1f} img/s, eta "
                          f"{_duration(f.get('eta_s'))}\n")

    def emit(self, event: str, **f: Any) -> None:
        out = self.stream
        if event == "start":
            self.steps_per_epoch = f.get("steps_per_epoch", 0)
            out.write(f"training {f.get('images_train')} images ({f.get('images_valid')} for "
                      f"validation), {f.get('epochs')} epochs of {self.steps_per_epoch} steps, "
                      f"batch {f.get('batch')}, {f.get('replicas', 1)} replica(s) -> "
                      f"{f.get('run_dir')}\n")
            skipped = f.get("skipped_images") or []
            if skipped:
                out.write(f"skipped {len(skipped)} image(s) that do not decode:\n")
                out.write("".join(f"  {line}\n" for line in skipped))
            for key in ("weights_report", "anchors_report"):
                if f.get(key):
                    out.write(f"{f[key]}\n")
            if f.get("resume_note"):
                out.write(f"{f['resume_note']}\n")
            if f.get("precision"):
                out.write(f"precision {f['precision']}"
                          + (f", weight average (EMA) {f['ema']}" if f.get("ema") else "") + "\n")
        elif event == "batch" and not self.tty:
            self._step_line(f)
        elif event == "batch":
            n = self.steps_per_epoch or 1
            done = min(f.get("batch", 0), n)
            bar = "#" * (24 * done // n)
            out.write(f"\repoch {f.get('epoch')} [{bar:<24}] {done}/{n} loss "
                      f"{f.get('loss', float('nan')):.3f} {f.get('images_per_s', 0):.1f} img/s "
                      f"eta {_duration(f.get('eta_s'))}  ")
        elif event == "epoch":
            if self.tty:
                out.write("\r" + " " * 79 + "\r")
            m, m95 = f.get("val_map50"), f.get("val_map50_95")
            mtext = "-" if m is None else f"{m:.4f}"
            if m95 is not None:
                mtext += f" mAP@[.5:.95] {m95:.4f}"
            out.write(f"epoch {f.get('epoch')}: loss {f.get('loss', float('nan')):.4f} "
                      f"(box {f.get('box', 0):.3f} obj {f.get('obj', 0):.3f} cls "
                      f"{f.get('cls', 0):.3f}) lr {f.get('lr', 0):.2e} mAP@0.5 {mtext} "
                      f"{f.get('images_per_s', 0):.1f} img/s eta {_duration(f.get('eta_s'))}\n")
        elif event == "done":
            m, m95 = f.get("best_map50"), f.get("best_map50_95")
            figures = ("-" if m is None else f"{m:.4f}") + (
                "" if m95 is None else f", mAP@[.5:.95] {m95:.4f}")
            out.write(f"{f.get('status')}: best epoch {f.get('best_epoch')}: mAP@0.5 {figures}; "
                      f"model bundle {f.get('bundle')}\n")
            if f.get("best_f1_conf") is not None:
                out.write(f"best-F1 confidence {f['best_f1_conf']:.3f} (recall "
                          f"{f['recall_at_best_f1']:.3f}; at --conf {f['default_conf']}: "
                          f"{f['recall_at_default_conf']:.3f})"
                          + ("; stored in the bundle, detect uses it" if f.get("conf_stored")
                             else "") + "\n")
        elif event == "error":
            out.write(f"error: {f.get('message')}\n")
        out.flush()


# --- the run's files: metrics.csv and metrics.png ---------------------------------------

METRIC_COLUMNS = ("epoch", "step", "loss", "box", "obj", "cls", "lr", "val_map50",
                  "val_map50_95", "images_per_s", "seconds")


def write_metrics_csv(path, rows: list[dict]) -> None:
    """One row per finished epoch, columns :data:`METRIC_COLUMNS`, written atomically."""
    from workbench.storage.atomic import atomic_write_text

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
    import csv
    from pathlib import Path

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
    from workbench.evaluation.plots import write_training_plot

    write_training_plot(path, rows)
