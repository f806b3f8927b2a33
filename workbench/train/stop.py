"""Stopping a run cleanly: SIGINT and SIGTERM set a flag, the trainer saves a checkpoint and
returns (``--resume`` continues from it with the same data order)."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopFlag:
    """Set by SIGINT/SIGTERM (or by the caller): the loop saves a checkpoint and returns."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        self._depth = 0  # the CLI installs it before TensorFlow loads, train() again inside

    def set(self, *_: Any) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install(self) -> None:
        self._depth += 1
        if self._depth > 1 or threading.current_thread() is not threading.main_thread():
            return  # installed already; or not the main thread, where signals cannot be handled
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self.set)

    def uninstall(self) -> None:
        self._depth = max(self._depth - 1, 0)
        if self._depth:
            return
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
