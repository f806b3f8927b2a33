"""Scene items: a box with its label, drawn in its class color; proposals are dashed.

Pens are cosmetic and labels ignore the view's zoom, so lines and text keep their screen size
at any zoom. Handles and the crosshair are drawn by the view, in screen coordinates.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QStyleOptionGraphicsItem, QWidget

from ui.colors import text_color_on

_FONT = QFont()
_FONT.setPointSize(9)


class LabelItem(QGraphicsItem):
    """A class name on a colored tag, constant size on screen, at its parent's top-left."""

    def __init__(self, parent: QGraphicsItem) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        # text is the costly part of a 1,000-box frame: render each tag once, then blit it
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._text = ""
        self._color = QColor("white")
        self._rect = QRectF()

    def set_text(self, text: str, color: QColor) -> None:
        if text == self._text and color == self._color:
            return
        self.prepareGeometryChange()
        self._text, self._color = text, color
        metrics = QFontMetrics(_FONT)
        self._rect = QRectF(0, 0, metrics.horizontalAdvance(text) + 6, metrics.height() + 2)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        if not self._text:
            return
        painter.fillRect(self._rect, self._color)
        painter.setPen(text_color_on(self._color))
        painter.setFont(_FONT)
        painter.drawText(self._rect.adjusted(3, 1, 0, 0),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, self._text)


class BoxItem(QGraphicsRectItem):
    """One box of the current image (or one proposal when ``proposal`` is True)."""

    def __init__(self, proposal: bool = False) -> None:
        super().__init__()
        self.proposal = proposal
        self.label = LabelItem(self)
        self.selected = False
        self._key: tuple | None = None
        self.setZValue(2 if proposal else 1)

    def show_box(self, rect: tuple[float, float, float, float], color: QColor, text: str,
                 difficult: bool = False, selected: bool = False) -> None:
        key = (rect, color.rgba(), text, difficult, selected)
        if key == self._key:
            return  # nothing changed: keep 1,000-box updates cheap
        self._key = key
        x1, y1, x2, y2 = rect
        self.set_corners(x1, y1, x2, y2)
        pen = QPen(color, 2)
        pen.setCosmetic(True)
        if self.proposal:
            pen.setStyle(Qt.PenStyle.DashLine)
        elif difficult:
            pen.setStyle(Qt.PenStyle.DotLine)
        self.setPen(pen)
        self.selected = selected
        if selected:
            fill = QColor(color)
            fill.setAlpha(70)
            self.setBrush(QBrush(fill))
        else:
            self.setBrush(QBrush(Qt.BrushStyle.NoBrush))
        self.label.set_text(text, color)

    def set_corners(self, x1: float, y1: float, x2: float, y2: float) -> None:
        """Move the drawn rectangle (also used for live previews while dragging)."""
        self.setRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        self.label.setPos(x1, y1)

    def corners(self) -> tuple[float, float, float, float]:
        r = self.rect()
        return (r.left(), r.top(), r.right(), r.bottom())
