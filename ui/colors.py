"""Per-class colors: well separated hues that stay the same for a class index."""

from __future__ import annotations

from PySide6.QtGui import QColor

_GOLDEN = 0.618033988749895


def class_color(class_id: int) -> QColor:
    hue = (0.05 + class_id * _GOLDEN) % 1.0
    return QColor.fromHsvF(hue, 0.85, 0.95)


def text_color_on(background: QColor) -> QColor:
    """Black or white, whichever reads better on ``background``."""
    luma = 0.299 * background.redF() + 0.587 * background.greenF() + 0.114 * background.blueF()
    return QColor("black") if luma > 0.6 else QColor("white")


def score_text(score: float) -> str:
    """A score for a box tag: two decimals, or two significant digits below 0.01 (a low
    candidate shows 0.0043, never 0.00)."""
    return f"{score:.2f}" if score >= 0.01 else f"{score:.2g}"
