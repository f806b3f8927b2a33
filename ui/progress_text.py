"""What a job's progress bar says: nothing before a job starts, "done / total UNIT" during.

An empty bar reading "0 / 1 steps" before anything ran looked like a job stuck at its start.
"""

from __future__ import annotations

from PySide6.QtWidgets import QProgressBar


def show_idle(bar: QProgressBar) -> None:
    """No job yet: an empty bar with no numbers."""
    bar.setRange(0, 1)
    bar.setValue(0)
    bar.setFormat("")
    bar.setTextVisible(False)


def show_count(bar: QProgressBar, unit: str, total: int) -> None:
    """A job starts: ``done / total UNIT`` (total 0: a busy bar, the total is not known yet)."""
    bar.setRange(0, max(total, 0))
    bar.setValue(0)
    bar.setFormat(f"%v / %m {unit}")
    bar.setTextVisible(True)
