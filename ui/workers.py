"""The one worker mechanism for background work in the GUI.

A job is a plain function ``fn(job, *args)`` run on the global ``QThreadPool``. It reports
progress with ``job.progress(done, total)`` and returns early when ``job.cancelled`` turns
True. Results, errors and progress come back on the GUI thread through a signals object, so
callbacks may touch widgets. The same function runs (and is tested) without any widget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal, Slot


class Job:
    """The handle a background function gets: progress out, cancel in."""

    def __init__(self, relay: Signal) -> None:
        self._cancel = threading.Event()
        self._relay = relay

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        self._cancel.set()

    def progress(self, done: int, total: int, message: str = "") -> None:
        self._relay.emit("progress", (int(done), int(total), message))


class WorkerSignals(QObject):
    """Lives on the GUI thread; re-emits what the worker thread sends, on the GUI thread."""

    progress = Signal(int, int, str)
    result = Signal(object)
    error = Signal(object)
    finished = Signal()
    # Emitted from the worker thread; the queued connection hops to the GUI thread, so the
    # public signals above fire there and plain lambdas connected to them are safe.
    _relay = Signal(str, object)

    def __init__(self) -> None:
        super().__init__()
        self._relay.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @Slot(str, object)
    def _deliver(self, kind: str, payload: object) -> None:
        if kind == "progress":
            self.progress.emit(*payload)
        elif kind == "result":
            self.result.emit(payload)
        elif kind == "error":
            self.error.emit(payload)
        else:
            self.finished.emit()


class Worker(QRunnable):
    """Runs ``fn(job, *args, **kwargs)`` once on a pool thread."""

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.setAutoDelete(False)  # Python keeps it alive until its results are delivered
        self.signals = WorkerSignals()
        self.job = Job(self.signals._relay)
        self._fn, self._args, self._kwargs = fn, args, kwargs

    def run(self) -> None:
        relay = self.signals._relay
        try:
            if not self.job.cancelled:
                value = self._fn(self.job, *self._args, **self._kwargs)
                if not self.job.cancelled:
                    relay.emit("result", value)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the GUI as data
            relay.emit("error", exc)
        finally:
            relay.emit("finished", None)

    def cancel(self) -> None:
        self.job.cancel()


_running: set[Worker] = set()


def start(fn: Callable[..., Any], *args: Any,
          on_result: Callable[[Any], None] | None = None,
          on_error: Callable[[BaseException], None] | None = None,
          on_progress: Callable[[int, int, str], None] | None = None,
          on_finished: Callable[[], None] | None = None,
          **kwargs: Any) -> Worker:
    """Run ``fn(job, *args, **kwargs)`` in the background; callbacks run on the GUI thread."""
    worker = Worker(fn, *args, **kwargs)
    signals = worker.signals
    if on_result is not None:
        signals.result.connect(on_result)
    if on_error is not None:
        signals.error.connect(on_error)
    if on_progress is not None:
        signals.progress.connect(on_progress)
    if on_finished is not None:
        signals.finished.connect(on_finished)
    signals.finished.connect(lambda: _running.discard(worker))
    _running.add(worker)
    QThreadPool.globalInstance().start(worker)
    return worker


def running() -> list[Worker]:
    """Workers started and not yet finished (their results not yet delivered)."""
    return list(_running)


def idle() -> bool:
    return not _running and QThreadPool.globalInstance().activeThreadCount() == 0


def cancel_all() -> None:
    for worker in list(_running):
        worker.cancel()


def shutdown(timeout_ms: int = 10_000) -> bool:
    """Cancel every worker, wait for the threads and drop undelivered results.

    Used when a window closes: callbacks must not fire into widgets that are gone.
    """
    cancel_all()
    done = QThreadPool.globalInstance().waitForDone(timeout_ms)
    for worker in list(_running):
        worker.signals.blockSignals(True)
    _running.clear()
    return done
