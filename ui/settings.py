"""QSettings, used only for window geometry, dock layout, recent folders and recent models.

Tests (and scripts) redirect everything to one ini file with :func:`use_file` or the
``WORKBENCH_SETTINGS`` environment variable, so they never touch the user's settings.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ENV_VAR = "WORKBENCH_SETTINGS"
MAX_RECENT = 10
# raised when the docks change: a layout saved for other docks is not restored (the window
# starts with its default one instead of a half-fitting old one)
LAYOUT_VERSION = 2
_file: Path | None = None


def use_file(path: str | Path | None) -> None:
    """Keep settings in ``path`` (an ini file) from now on; None goes back to the default."""
    global _file
    _file = Path(path) if path is not None else None


def settings() -> QSettings:
    path = _file or os.environ.get(ENV_VAR)
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                     "detection-workbench", "workbench")


def recent_folders() -> list[str]:
    value = settings().value("recent_folders", [])
    if isinstance(value, str):  # an ini file gives back a one-item list as a plain string
        value = [value]
    return [str(v) for v in value or [] if v]


def add_recent_folder(folder: str | Path) -> list[str]:
    folder = str(Path(folder).resolve())
    folders = [folder] + [f for f in recent_folders() if f != folder]
    folders = folders[:MAX_RECENT]
    settings().setValue("recent_folders", folders)
    return folders


def recent_models() -> list[str]:
    """Model bundle folders used before, newest first (the built-in demo is never listed)."""
    value = settings().value("recent_models", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in value or [] if v]


def add_recent_model(folder: str | Path) -> list[str]:
    folder = str(Path(folder).resolve())
    models = ([folder] + [m for m in recent_models() if m != folder])[:MAX_RECENT]
    settings().setValue("recent_models", models)
    return models


def save_window_layout(geometry: QByteArray, state: QByteArray) -> None:
    """The window's size and place (``saveGeometry``) and its docks (``saveState``)."""
    s = settings()
    s.setValue("window/geometry", geometry)
    s.setValue("window/state", state)
    s.setValue("window/layout_version", LAYOUT_VERSION)


def window_layout() -> tuple[QByteArray | None, QByteArray | None]:
    """(geometry, dock state) saved by the last window; None for what was not saved (the
    dock state also when it was saved for other docks)."""
    s = settings()
    geometry, state = s.value("window/geometry"), s.value("window/state")
    if str(s.value("window/layout_version", "")) != str(LAYOUT_VERSION):
        state = None
    return (geometry if isinstance(geometry, QByteArray) else None,
            state if isinstance(state, QByteArray) else None)
