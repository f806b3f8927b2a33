"""The main window's docks and their layout: built once, restored from the last run, or
laid out for the screen at the first show (a mixin of :class:`ui.main_window.MainWindow`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QDockWidget, QScrollArea, QWidget

from ui import settings

if TYPE_CHECKING:
    from PySide6.QtWidgets import QMainWindow

    _Base = QMainWindow
else:
    _Base = object

TABBED_WITH_STATS = ("inspect", "train", "evaluate", "detect")  # hidden until asked for
LEFT_DOCK_WIDTH = 400  # the Inspect, Train, Evaluate and Detect panels show every column at this width
DEFAULT_SIZE = (1280, 800)
# a window narrower than this starts with every dock as a tab of one column: two columns of
# docks would leave the canvas a third of a 1024 px screen
COMPACT_BELOW = 1280


def _scrolling(panel: QWidget) -> QScrollArea:
    """A dock's panel in a scroll area: a tall panel scrolls instead of making the window
    taller than the screen (the dock's minimum height no longer adds up)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    area.setWidget(panel)
    return area


class LayoutMixin(_Base):
    """Needs the window's panels (``images``, ``classes``, ``stats``, ``inspector``,
    ``trainer``, ``evaluator``, ``detector_panel``) and ``_detect_shown``."""

    def _build_docks(self) -> None:
        """One dock per panel (Images and Classes right, the rest left); the big ones
        tabbed with Statistics and hidden until asked for."""
        self.docks: dict[str, QDockWidget] = {}
        for key, title, widget, area in (
                ("images", "Images", self.images, Qt.DockWidgetArea.RightDockWidgetArea),
                ("classes", "Classes", self.classes, Qt.DockWidgetArea.RightDockWidgetArea),
                ("stats", "Statistics", self.stats, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("inspect", "Inspect", self.inspector, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("train", "Train", self.trainer, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("evaluate", "Evaluate", self.evaluator, Qt.DockWidgetArea.LeftDockWidgetArea),
                ("detect", "Detect", self.detector_panel, Qt.DockWidgetArea.LeftDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"dock_{key}")  # saveState needs names
            dock.setWidget(_scrolling(widget))
            self.addDockWidget(area, dock)
            self.docks[key] = dock
        # the big panels share the left column as tabs: stacked, they would sum their
        # heights and push the window past the screen
        for key in TABBED_WITH_STATS:
            self.tabifyDockWidget(self.docks["stats"], self.docks[key])
            self.docks[key].hide()
            # shown from a menu or key: bring its tab to the front
            self.docks[key].toggleViewAction().triggered.connect(
                lambda on, d=self.docks[key]: on and d.raise_())
        self.docks["inspect"].visibilityChanged.connect(self.inspector.set_active)
        self.docks["detect"].visibilityChanged.connect(self._detect_shown)
        self.docks["detect"].toggleViewAction().toggled.connect(
            lambda on: self.docks["detect"].raise_() if on else None)  # the front tab

    def _restore_layout(self) -> None:
        """The user's own size, place and docks from the last run, when saved."""
        geometry, state = settings.window_layout()
        if geometry is None or not self.restoreGeometry(geometry):
            available = self.screen().availableGeometry()
            self.resize(min(DEFAULT_SIZE[0], available.width()),
                        min(DEFAULT_SIZE[1], available.height()))
        self._layout_done = state is not None and self.restoreState(state,
                                                                     settings.LAYOUT_VERSION)
        self._rebuild_recent_menu()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._layout_done:   # first run: a layout for the size the window has
            self._layout_done = True
            self.default_layout(compact=self.width() < COMPACT_BELOW)

    def default_layout(self, compact: bool) -> None:
        """Two columns of docks (Images and Classes right, the rest tabbed left), or on a
        small screen every dock tabbed in the right column, Images in front."""
        if not compact:
            self.resizeDocks([self.docks["stats"]], [LEFT_DOCK_WIDTH],
                             Qt.Orientation.Horizontal)
            return
        images = self.docks["images"]
        for key in ("classes", "stats", *TABBED_WITH_STATS):
            dock = self.docks[key]
            visible = dock.isVisibleTo(self)
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
            self.tabifyDockWidget(images, dock)
            dock.setVisible(visible)
        images.raise_()
        self.resizeDocks([images], [LEFT_DOCK_WIDTH], Qt.Orientation.Horizontal)
