"""Progress of long CLI jobs on stderr: tqdm's live bar on a terminal, and a plain line every
few seconds where stderr is not one (CI logs, ``| tee``, a parent process reading a pipe), so
a job that runs for minutes is never silent there.

Off a terminal a job that ends before the first interval prints nothing, so short runs (and
the one-line error contract of every verb) keep their stderr as it was; one that printed
progress ends with a summary line. ``WORKBENCH_PROGRESS_INTERVAL`` (seconds, default 10) sets
the interval; 0 prints every update (the tests use it).
"""

from __future__ import annotations

import functools
import math
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tqdm import tqdm

#: held while the process's fd 2 is not the terminal (``workbench.data.images`` points it at a
#: scratch file for the length of one decode, to catch what C decoders print there) and
#: while a bar draws: a bar drawn in that moment would land among a decoder's messages.
#: tqdm's own drawing lock is this lock (``_Tqdm``), so every write of the live bar holds it
TERMINAL_LOCK = threading.RLock()

INTERVAL_ENV = "WORKBENCH_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 10.0
TTY_REDRAW = 0.1  # a live bar redraws at most 10 times a second


def line_interval() -> float:
    """Seconds between two progress lines off a terminal (``WORKBENCH_PROGRESS_INTERVAL``);
    a value that is not a number >= 0 is ignored."""
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value >= 0 else DEFAULT_INTERVAL


def clock(seconds: float) -> str:
    """``0:08``, ``12:05``, ``1:02:03``."""
    seconds = max(int(seconds + 0.5), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def duration(seconds: float | None) -> str:
    """``h:mm:ss`` (``0:00:08``, ``1:02:03``), or ``?`` when unknown: the one long form, for
    epochs, ETAs and run times (``clock`` is the short form of progress bars)."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(int(round(seconds)), 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def progress_line(label: str, done: int, total: int, unit: str, elapsed: float,
                  final: bool = False) -> str:
    """``detect: 120/400 images, 35.2 images/s, eta 0:08`` (no total: ``detect: 120 images,
    35.2 images/s``; the last line: ``..., 0:11 in all``)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    count = f"{done}/{total}" if total else f"{done}"
    text = f"{label}: {count} {unit}, {rate:.1f} {unit}/s"
    if final:
        return f"{text}, {clock(elapsed)} in all"
    if total and rate > 0:
        text += f", eta {clock(max(total - done, 0) / rate)}"
    return text


class _LateStream:
    """tqdm's file: whatever ``bar.stream`` is at each write (a Ray run points sys.stderr at
    the terminal after the bar exists), so the bar follows it."""

    def __init__(self, bar: ProgressBar) -> None:
        self._bar = bar

    def write(self, text: str) -> int:
        return self._bar.stream.write(text)

    def flush(self) -> None:
        self._bar.stream.flush()

    def fileno(self) -> int:  # tqdm asks the terminal for its width
        return self._bar.stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._bar.stream, "encoding", None) or "utf-8"


@functools.cache
def _tqdm_class() -> type[tqdm[Any]]:
    """tqdm with its drawing lock set to TERMINAL_LOCK and no monitor thread (that thread
    redraws on its own, outside any lock of ours). Imported on first use."""
    from tqdm import tqdm

    class _Tqdm(tqdm):  # type: ignore[type-arg]  # generic in types-tqdm only: tqdm[Any] fails at run time
        monitor_interval = 0

    _Tqdm.set_lock(TERMINAL_LOCK)
    return _Tqdm


class ProgressBar:
    """``bar = ProgressBar("detect", total); bar.update(done); bar.close()``.

    On a terminal a tqdm bar; elsewhere a line every ``WORKBENCH_PROGRESS_INTERVAL`` seconds
    (module docstring). Writes to stderr only, so machine-readable stdout stays clean.
    ``enabled`` False: silent; True: the live bar even off a terminal. Without ``stream`` it
    draws on whatever ``sys.stderr`` is at the time (a Ray run points it at the terminal while
    fd 2 takes Ray's own log lines). ``update`` may be called from any thread.
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None,
                 enabled: bool | None = None, unit: str = "images",
                 leave: bool = True) -> None:
        self.label = label
        self.total = max(int(total), 0)
        self.unit = unit
        self._stream = stream
        self.live = self.stream.isatty() if enabled is None else enabled
        self.enabled = enabled is not False
        self.start = time.perf_counter()
        self.done = 0
        self.interval = line_interval()
        self._last_line = self.start
        self._lines = 0
        self._closed = False
        self._bar: tqdm[Any] | None = None
        if self.enabled and self.live:
            width = self._terminal_width()
            self._bar = _tqdm_class()(
                total=self.total or None, desc=self.label, unit=" " + unit, file=_LateStream(self),
                mininterval=TTY_REDRAW, leave=leave, disable=False,
                dynamic_ncols=width is None, ncols=width)

    def _terminal_width(self) -> int | None:
        """None: tqdm follows the terminal's width; 80 where the terminal says 0 columns (a
        pty nobody sized), where tqdm would draw an empty bar."""
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return None
        return None if columns > 0 else 80

    def update(self, done: int, total: int | None = None) -> None:
        with TERMINAL_LOCK:
            self.done = done
            if total is not None:
                self.total = max(int(total), 0)
            if not self.enabled or self._closed:
                return
            if self._bar is not None:
                self._update_bar(self._bar)
                return
            now = time.perf_counter()
            if now - self._last_line >= self.interval:
                self._last_line = now
                self._write_line(now, final=False)

    def _update_bar(self, bar: tqdm[Any]) -> None:
        if (self.total or None) != bar.total:
            bar.total = self.total or None
            bar.refresh()
        bar.update(self.done - bar.n)

    def _write_line(self, now: float, final: bool) -> None:
        self._lines += 1
        stream = self.stream
        stream.write(progress_line(self.label, self.done, self.total, self.unit,
                                   now - self.start, final) + "\n")
        stream.flush()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def close(self) -> None:
        with TERMINAL_LOCK:
            if self._closed:
                return
            self._closed = True
            if self._bar is not None:
                self._bar.close()
            elif self.enabled and self._lines:  # a long job: how it ended
                self._write_line(time.perf_counter(), final=True)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
