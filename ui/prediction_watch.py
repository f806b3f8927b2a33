"""Notices prediction sets written into the open data set from outside the window.

``workbench detect --out ROOT/.predictions/NAME``, another window or a file manager can add
or remove a set while the window is open; the Detect and Evaluate docks list them again when
this says so. The ``.predictions`` folder is watched (a set appears there as a new folder);
while it does not exist, the data set folder is, to see it made.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

from workbench.predictions.sets import sets_folder

SETTLE_MS = 300   # a run makes its folder and files in a burst: list the sets once after it


class PredictionSetWatcher(QObject):
    changed = Signal()   # the sets of the watched data set may have changed

    def __init__(self, parent: QObject | None = None, settle_ms: int = SETTLE_MS) -> None:
        super().__init__(parent)
        self.root: Path | None = None
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._seen)
        self._settle = QTimer(self, singleShot=True, interval=settle_ms)
        self._settle.timeout.connect(self.changed)

    def watch(self, root: str | Path | None) -> None:
        """Watch this data set folder's sets from now on (None: nothing)."""
        self.root = Path(root) if root is not None else None
        self._settle.stop()
        self._rewatch()

    def watched(self) -> list[str]:
        return self._watcher.directories()

    def _rewatch(self) -> None:
        wanted = []
        if self.root is not None:
            folder = sets_folder(self.root)
            # a linked .predictions holds no sets of this data set (prediction_sets.list_sets)
            exists = folder.is_dir() and not folder.is_symlink()
            wanted = [str(folder if exists else self.root)]
        gone = [d for d in self._watcher.directories() if d not in wanted]
        if gone:
            self._watcher.removePaths(gone)
        new = [d for d in wanted if d not in self._watcher.directories()]
        if new:
            self._watcher.addPaths(new)

    def _seen(self, _path: str) -> None:
        self._rewatch()   # .predictions made or removed: watch the other folder
        self._settle.start()
