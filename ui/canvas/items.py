"""Scene items: a box with its label, drawn in its class color; proposals are dashed.

Pens are cosmetic and labels ignore the view's zoom, so lines and text keep their screen size
at any zoom. Handles and the crosshair are drawn by the view, in screen coordinates.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem, QStyleOptionGraphicsItem, QWidget

from ui.colors import text_color_on
from ui.geometry import iou

SAME_BOX_IOU = 0.95   # two pictures' boxes this close are one box drawn twice
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


class CandidateOverlay(QGraphicsItem):
    """The Inspect dock's picture of NMS over the model's candidates (view-only).

    Kept boxes are solid in their class color with a "class score" tag; suppressed ones thin,
    dashed and grey; the selected candidate and the kept box that suppressed it are
    highlighted. One item paints everything: thousands of candidates redraw at every slider
    move without creating items. It takes no mouse buttons, so clicks reach the canvas.
    """

    MAX_TAGS = 400   # tags beyond this many kept boxes are left out: text is the costly part

    def __init__(self) -> None:
        super().__init__()
        self.setZValue(3)
        self.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
        self.kept: list[tuple[QRectF, QColor, str]] = []
        self.kept_names: list[str] = []          # each kept box's class, when the drawer knows it
        self.suppressed: list[QRectF] = []
        self.highlight: dict[str, QRectF] = {}   # "selected" and, when suppressed, "by"
        self._bounds = QRectF()
        self.suppressed_pen = QPen(QColor(170, 170, 170), 1, Qt.PenStyle.DashLine)
        self.suppressed_pen.setCosmetic(True)

    def set_boxes(self, kept: list[tuple[QRectF, QColor, str]], suppressed: list[QRectF],
                  names: list[str] | None = None) -> None:
        """``names``: the class of each kept box, so other pictures of the same image (a
        prediction set) can leave out a box drawn here already."""
        self.prepareGeometryChange()
        self.kept, self.suppressed = kept, suppressed
        self.kept_names = list(names) if names is not None else []
        self._update_bounds()

    def shows(self, rect: tuple[float, float, float, float], name: str,
              min_iou: float = SAME_BOX_IOU) -> bool:
        """True when a kept box of class ``name`` lies on ``rect`` (a set's file keeps
        six decimals of the normalized box, so equal boxes differ by a fraction of a pixel)."""
        for (r, _, _), kept_name in zip(self.kept, self.kept_names, strict=False):
            if kept_name == name and iou((r.left(), r.top(), r.right(), r.bottom()),
                                         rect) >= min_iou:
                return True
        return False

    def set_highlight(self, selected: QRectF | None, by: QRectF | None = None) -> None:
        self.prepareGeometryChange()
        self.highlight = {k: r for k, r in (("selected", selected), ("by", by)) if r is not None}
        self._update_bounds()

    def clear(self) -> None:
        self.set_boxes([], [])
        self.set_highlight(None)

    def is_empty(self) -> bool:
        return not (self.kept or self.suppressed or self.highlight)

    def _update_bounds(self) -> None:
        rects = [r for r, _, _ in self.kept] + self.suppressed + list(self.highlight.values())
        bounds = QRectF()
        for r in rects:
            bounds = bounds.united(r)
        # tags keep their screen size, so zoomed out they reach far past the boxes
        margin = max(bounds.width(), bounds.height(), 200.0)
        self._bounds = bounds.adjusted(-margin, -margin, margin, margin) if rects else QRectF()
        self.update()

    def boundingRect(self) -> QRectF:
        return self._bounds

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        if self.suppressed:
            painter.setPen(self.suppressed_pen)
            painter.drawRects(self.suppressed)
        by_color: dict[int, list[QRectF]] = {}
        for rect, color, _ in self.kept:
            by_color.setdefault(color.rgba(), []).append(rect)
        for rgba, rects in by_color.items():
            pen = QPen(QColor.fromRgba(rgba), 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawRects(rects)
        for role, color in (("by", QColor("#00e5ff")), ("selected", QColor("#ffea00"))):
            if role in self.highlight:
                pen = QPen(color, 3)
                pen.setCosmetic(True)
                fill = QColor(color)
                fill.setAlpha(60)
                painter.setPen(pen)
                painter.setBrush(fill)
                painter.drawRect(self.highlight[role])
        self._paint_tags(painter)

    def _paint_tags(self, painter: QPainter) -> None:
        """A "class score" tag above each kept box, in screen pixels (constant size at any zoom)."""
        if not self.kept:
            return
        to_screen = painter.worldTransform()
        metrics = QFontMetrics(_FONT)
        height = metrics.height() + 2
        painter.save()
        painter.resetTransform()
        painter.setFont(_FONT)
        for rect, color, text in self.kept[:self.MAX_TAGS]:
            corner = to_screen.map(rect.topLeft())
            tag = QRectF(corner.x(), corner.y() - height, metrics.horizontalAdvance(text) + 6,
                         height)
            painter.fillRect(tag, color)
            painter.setPen(text_color_on(color))
            painter.drawText(tag.adjusted(3, 1, 0, 0),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, text)
        painter.restore()
