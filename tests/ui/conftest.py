"""Fixtures for GUI tests: real widgets offscreen, settings in a temp ini, no dangling threads."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QThreadPool
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from ui import settings, workers
from workbench.data.synth import make_demo_dataset


@pytest.fixture(autouse=True)
def temp_settings(tmp_path: Path):
    settings.use_file(tmp_path / "settings.ini")
    yield tmp_path / "settings.ini"
    settings.use_file(None)


@pytest.fixture(autouse=True)
def no_dangling_threads():
    """Fail a test that leaves a worker (a QThread of the pool) running."""
    yield
    pool = QThreadPool.globalInstance()
    left = len(workers.running())
    busy = pool.activeThreadCount()
    if left or busy:
        workers.shutdown(10_000)
        pytest.fail(f"test left {left} worker(s) and {busy} busy pool thread(s) running")


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return make_demo_dataset(tmp_path / "data", images=6, seed=3, size=160)


def wait_idle(qtbot, timeout: int = 10_000) -> None:
    qtbot.waitUntil(workers.idle, timeout=timeout)


@pytest.fixture
def open_window(qtbot):
    """Make a MainWindow on a folder, shown and active, the first image decoded."""
    from ui.main_window import MainWindow

    made = []

    def make(folder: Path, **kwargs) -> MainWindow:
        window = MainWindow(**kwargs)
        # a test's leftover proposals: quit without the question (pytest-qt closes the
        # window first); the Ctrl+Q tests put their own answer here
        window.ask_discard = lambda what: True
        qtbot.addWidget(window)
        window.resize(900, 700)
        window.show()
        window.activateWindow()
        window.open_folder(folder)
        qtbot.waitUntil(lambda: not window.loading() and window.session.record is not None,
                        timeout=10_000)
        qtbot.waitUntil(lambda: window.canvas.decoded is not None
                        or bool(window.cache.errors), timeout=10_000)
        wait_idle(qtbot)
        made.append(window)
        return window

    yield make
    for window in made:
        window.close()


def view_point(view, x: float, y: float) -> QPoint:
    """Viewport position of image pixel (x, y)."""
    return view.mapFromScene(QPointF(x, y))


def mouse(view, kind: str, x: float, y: float, button=Qt.MouseButton.LeftButton,
          modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """Send a real mouse event to the canvas at image pixel (x, y)."""
    types = {"press": QEvent.Type.MouseButtonPress, "move": QEvent.Type.MouseMove,
             "release": QEvent.Type.MouseButtonRelease}
    local = QPointF(view_point(view, x, y))
    held = Qt.MouseButton.NoButton if kind == "release" else button
    event = QMouseEvent(types[kind], local, QPointF(view.viewport().mapToGlobal(local)),
                        Qt.MouseButton.NoButton if kind == "move" else button, held, modifiers)
    QApplication.sendEvent(view.viewport(), event)


def drag(view, start: tuple[float, float], end: tuple[float, float], steps: int = 4) -> None:
    mouse(view, "press", *start)
    for k in range(1, steps + 1):
        t = k / steps
        mouse(view, "move", start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t)
    mouse(view, "release", *end)
