"""A matplotlib figure inside the window (its Qt canvas, ``backend_qtagg``).

matplotlib is imported when the view first needs to draw while visible, not when the window
starts. The drawing itself is one of the ``workbench.evaluation.plots.draw_*`` functions, the same that
write the PNG files, so the window and the files show the same plot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QVBoxLayout, QWidget


class PlotView(QWidget):
    """Calls ``draw(figure)`` whenever :meth:`redraw` is asked for while shown."""

    def __init__(self, draw: Callable[[Any], None], parent: QWidget | None = None,
                 min_height: int = 120) -> None:
        super().__init__(parent)
        self._draw = draw
        self.figure = None
        self.canvas = None
        self._stale = True
        self.setMinimumHeight(min_height)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def _ensure_canvas(self) -> None:
        if self.canvas is not None:
            return
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

        from workbench.evaluation.plots import new_figure

        self.figure = new_figure(3, 2, dpi=72)  # screen points: 10 pt text is 10 px
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumSize(50, 50)  # the figure's own size must not dictate the dock's
        self._layout.addWidget(self.canvas)

    def redraw(self) -> None:
        if not self.isVisible():
            self._stale = True   # drawn when shown: hidden docks cost nothing
            return
        self._ensure_canvas()
        self._draw(self.figure)
        self.canvas.draw_idle()
        self._stale = False

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._stale:
            self.redraw()
