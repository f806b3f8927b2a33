"""A terminal progress bar for long CLI jobs: drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

#: held while the process's fd 2 is not the terminal (``workbench.images`` points it at a
#: scratch file for the length of one decode, to catch what C decoders print there) and
#: while the bar draws: a bar drawn in that moment would land among a decoder's messages
TERMINAL_LOCK = threading.RLock()


class ProgressBar:
    """``bar = ProgressBar("detect", total); bar.update(done); bar.close()``.

    Redraws at most 10 times a second; silent when the stream is not a terminal (CI, pipes,
    ``--json``), so machine-readable output stays clean. Without ``stream`` it draws on
    whatever ``sys.stderr`` is at the time (a Ray run points it at the terminal while fd 2
    takes Ray's own log lines).
    """

    def __init__(self, label: str, total: int, stream: TextIO | None = None,
                 enabled: bool | None = None) -> None:
        self.label = label
        self.total = max(int(total), 0)
        self._stream = stream
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self.done = 0

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw >= 0.1 or done >= self.total):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = int(frac * 30)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            text = (f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}"
                    f" {rate:.1f}/s eta {eta:.0f}s ")
        else:
            text = f"\r{self.label} {self.done} {rate:.1f}/s "
        self._write(text)

    def _write(self, text: str) -> None:
        with TERMINAL_LOCK:
            self.stream.write(text)
            self.stream.flush()

    @property
    def stream(self) -> TextIO:
        return self._stream or sys.stderr

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self._write("\n")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
