"""CanvasView: shows the current image and edits its boxes with mouse and keys.

Scene coordinates are image pixels of the EXIF-oriented image (the frame of the boxes); a
downscaled decode is stretched to that frame, and a full one is asked for when zooming in
past it. Every edit goes through the session as an undoable command; drags only preview.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QWidget,
)

from ui.canvas.items import BoxItem, CandidateOverlay
from ui.colors import class_color, score_text
from ui.geometry import handle_points, moved, resized
from ui.image_cache import Decoded
from ui.session import LabelSession

HANDLE_PX = 7          # grab distance of a handle, in screen pixels
MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
_CURSORS = {"top-left": Qt.CursorShape.SizeFDiagCursor, "bottom-right": Qt.CursorShape.SizeFDiagCursor,
            "top-right": Qt.CursorShape.SizeBDiagCursor, "bottom-left": Qt.CursorShape.SizeBDiagCursor,
            "top": Qt.CursorShape.SizeVerCursor, "bottom": Qt.CursorShape.SizeVerCursor,
            "left": Qt.CursorShape.SizeHorCursor, "right": Qt.CursorShape.SizeHorCursor}


class CanvasView(QGraphicsView):
    selection_changed = Signal(list)
    pointer_moved = Signal(float, float)
    zoom_changed = Signal(float)
    wants_full_resolution = Signal()

    def __init__(self, session: LabelSession, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(45, 45, 48))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setOptimizationFlag(QGraphicsView.OptimizationFlag.DontAdjustForAntialiasing)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self._pixmap = QGraphicsPixmapItem()
        self._pixmap.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._pixmap.setZValue(-1)
        self.scene().addItem(self._pixmap)
        self._message = QGraphicsSimpleTextItem()
        self._message.setBrush(QColor("#ffb74d"))
        self._message.setFlag(QGraphicsSimpleTextItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self._message.setZValue(10)
        self.scene().addItem(self._message)
        self.boxes: list[BoxItem] = []
        self.proposals: list[BoxItem] = []
        self.overlay = CandidateOverlay()   # the Inspect dock's NMS picture; never edits labels
        self.scene().addItem(self.overlay)
        self._selected: set[int] = set()
        self.mode = "edit"              # or "draw"
        self.keep_drawing = False       # stay in draw mode after each box
        self.labels_visible = True      # the Detect dock may show predictions only
        self._drag: dict | None = None
        self._pointer: QPointF | None = None
        self._fit_mode = True
        self._size = (0.0, 0.0)
        self.decoded: Decoded | None = None
        self._asked_full = False
        session.boxes_changed.connect(self.sync_boxes)
        session.proposals_changed.connect(self.sync_proposals)
        session.classes_changed.connect(lambda: self.sync_boxes(None))

    # --- the image ----------------------------------------------------------------------
    def show_record(self) -> None:
        """Switch to the session's current image: boxes at once, pixels when decoded."""
        record = self.session.record
        self._drag = None
        self.set_mode("edit")
        self._selected.clear()
        self._pixmap.setPixmap(QPixmap())
        self.decoded = None
        self._asked_full = False
        self._size = (float(record.width), float(record.height)) if record else (0.0, 0.0)
        self._update_scene_rect()
        self.set_message("")
        self.overlay.clear()   # it belongs to the image it was computed on
        self.sync_boxes([])
        self.sync_proposals()
        if self._fit_mode:
            self.fit()
        self.selection_changed.emit([])

    def show_image(self, decoded: Decoded) -> None:
        """Put decoded pixels under the current image's boxes."""
        self.decoded = decoded
        if self._size[0] <= 0:  # header size unknown: trust the decoder
            self._size = (float(decoded.full_width), float(decoded.full_height))
            self._update_scene_rect()
            if self._fit_mode:
                self.fit()
        self._pixmap.setPixmap(QPixmap.fromImage(decoded.image))
        self._pixmap.setScale(self._size[0] / max(decoded.image.width(), 1))
        self.set_message("")
        self._check_resolution()

    def set_message(self, text: str) -> None:
        """A message over the canvas (a corrupt image, loading); empty hides it."""
        self._message.setText(text)
        self._message.setVisible(bool(text))
        self._message.setPos(self.sceneRect().topLeft())

    def _update_scene_rect(self) -> None:
        w, h = self._size
        self.setSceneRect(QRectF(0, 0, w, h) if w > 0 else QRectF(0, 0, 640, 480))

    def image_rect(self) -> QRectF:
        return QRectF(0, 0, *self._size)

    # --- boxes and proposals --------------------------------------------------------------
    def _class_name(self, class_id: int) -> str:
        dataset = self.session.dataset
        if dataset is not None and 0 <= class_id < len(dataset.classes):
            return dataset.classes[class_id]
        return f"#{class_id}"

    def sync_boxes(self, selection: list[int] | None = None) -> None:
        """Make the items match the current record's boxes; select ``selection`` if given."""
        record = self.session.record
        boxes = record.boxes if record else []
        if selection is not None:
            self._selected = set(selection)
        self._selected = {i for i in self._selected if i < len(boxes)}
        while len(self.boxes) > len(boxes):
            self.scene().removeItem(self.boxes.pop())
        while len(self.boxes) < len(boxes):
            item = BoxItem()
            item.setVisible(self.labels_visible)
            self.scene().addItem(item)
            self.boxes.append(item)
        for i, (box, item) in enumerate(zip(boxes, self.boxes, strict=True)):
            name = self._class_name(box.class_id)
            item.show_box(box.xyxy(), class_color(box.class_id),
                          name + (" (difficult)" if box.difficult else ""), box.difficult,
                          i in self._selected)
        self.viewport().update()
        if selection is not None:
            self.selection_changed.emit(self.selected())

    def sync_proposals(self) -> None:
        for item in self.proposals:
            self.scene().removeItem(item)
        self.proposals = []
        for p in self.session.current_proposals():
            item = BoxItem(proposal=True)
            color = class_color(p.box.class_id) if p.box.class_id >= 0 else QColor("white")
            item.show_box(p.box.xyxy(), color, f"{p.name} {score_text(p.score)}")
            self.scene().addItem(item)
            self.proposals.append(item)

    def set_labels_visible(self, visible: bool) -> None:
        """Show or hide the label boxes (they stay editable data either way)."""
        self.labels_visible = visible
        for item in self.boxes:
            item.setVisible(visible)

    def selected(self) -> list[int]:
        return sorted(self._selected)

    def select(self, indices: list[int]) -> None:
        self.sync_boxes(list(indices))

    # --- modes, zoom ------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self.viewport().setCursor(Qt.CursorShape.CrossCursor if mode == "draw"
                                  else Qt.CursorShape.ArrowCursor)
        self.viewport().update()

    def start_drawing(self) -> None:
        if self._size[0] > 0:
            self.set_mode("draw")
            self.setFocus()

    def zoom(self) -> float:
        return self.transform().m11()

    def zoom_by(self, factor: float) -> None:
        factor = min(max(factor, MIN_ZOOM / self.zoom()), MAX_ZOOM / self.zoom())
        self.scale(factor, factor)
        self._fit_mode = False
        self._zoomed()

    def fit(self) -> None:
        if self._size[0] > 0:
            self.fitInView(self.image_rect(), Qt.AspectRatioMode.KeepAspectRatio)
        self._fit_mode = True
        self._zoomed()

    def actual_size(self) -> None:
        center = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.centerOn(center)
        self._fit_mode = False
        self._zoomed()

    def _zoomed(self) -> None:
        self.set_message(self._message.text())
        self.zoom_changed.emit(self.zoom())
        self._check_resolution()

    def _check_resolution(self) -> None:
        """Ask once per image for full pixels when the view shows more than the decode has."""
        d = self.decoded
        if d is None or self._asked_full or d.scale >= 0.999:
            return
        if self.zoom() * self.devicePixelRatioF() > d.scale * 1.05:
            self._asked_full = True
            self.wants_full_resolution.emit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(1.0015 ** event.angleDelta().y())
            event.accept()
        else:
            super().wheelEvent(event)

    # --- mouse ----------------------------------------------------------------------------
    def _image_point(self, view_pos: QPoint) -> tuple[float, float]:
        p = self.mapToScene(view_pos)
        w, h = self._size
        return (min(max(p.x(), 0.0), w), min(max(p.y(), 0.0), h))

    def _handle_at(self, view_pos: QPoint) -> tuple[int, str] | None:
        if len(self._selected) != 1:
            return None
        index = next(iter(self._selected))
        for name, (x, y) in handle_points(self.boxes[index].corners()).items():
            p = self.mapFromScene(QPointF(x, y))
            if abs(p.x() - view_pos.x()) <= HANDLE_PX and abs(p.y() - view_pos.y()) <= HANDLE_PX:
                return index, name
        return None

    def box_at(self, x: float, y: float) -> int | None:
        """The smallest box containing (x, y): nested boxes stay reachable."""
        best, best_area = None, float("inf")
        for i, item in enumerate(self.boxes):
            x1, y1, x2, y2 = item.corners()
            if x1 <= x <= x2 and y1 <= y <= y2 and (x2 - x1) * (y2 - y1) < best_area:
                best, best_area = i, (x2 - x1) * (y2 - y1)
        return best

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        self.setFocus()
        if event.button() == Qt.MouseButton.MiddleButton:
            self._drag = {"kind": "pan", "last": pos}
        elif event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        elif self.mode == "draw":
            start = self._image_point(pos)
            self._drag = {"kind": "draw", "start": start, "end": start}
        elif (hit := self._handle_at(pos)) is not None:
            index, handle = hit
            self._drag = {"kind": "resize", "index": index, "handle": handle,
                          "orig": self.boxes[index].corners(), "new": None}
        else:
            x, y = self._image_point(pos)
            index = self.box_at(x, y)
            shift = bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            if index is None:
                if not shift and self._selected:
                    self.select([])
                self._drag = {"kind": "pan", "last": pos}
            else:
                if shift:
                    self.select(sorted(self._selected ^ {index}))
                elif index not in self._selected:
                    self.select([index])
                if index in self._selected:
                    self._drag = {"kind": "move", "start": (x, y), "new": None,
                                  "orig": {i: self.boxes[i].corners() for i in self._selected}}
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        self._pointer = self.mapToScene(pos)
        self.pointer_moved.emit(self._pointer.x(), self._pointer.y())
        drag = self._drag
        w, h = self._size
        if drag is None:
            self._hover_cursor(pos)
        elif drag["kind"] == "pan":
            delta = pos - drag["last"]
            drag["last"] = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
        elif drag["kind"] == "draw":
            drag["end"] = self._image_point(pos)
        elif drag["kind"] == "resize":
            x, y = self._image_point(pos)
            drag["new"] = resized(drag["orig"], drag["handle"], x, y, w, h)
            self.boxes[drag["index"]].set_corners(*drag["new"])
        elif drag["kind"] == "move":
            x, y = self._image_point(pos)
            dx, dy = x - drag["start"][0], y - drag["start"][1]
            rects = drag["orig"].values()
            # move the group as one: the box nearest an edge limits everyone
            dx = min(max(dx, max(-r[0] for r in rects)), min(w - r[2] for r in rects))
            dy = min(max(dy, max(-r[1] for r in rects)), min(h - r[3] for r in rects))
            drag["new"] = {i: moved(r, dx, dy, w, h) for i, r in drag["orig"].items()}
            for i, r in drag["new"].items():
                self.boxes[i].set_corners(*r)
        if self.mode == "draw" or drag is not None:
            self.viewport().update()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        drag, self._drag = self._drag, None
        if drag is None:
            return super().mouseReleaseEvent(event)
        kind = drag["kind"]
        if kind == "draw":
            drag["end"] = self._image_point(event.position().toPoint())
            added = self.session.add_box((*drag["start"], *drag["end"]))
            if added and not self.keep_drawing:
                self.set_mode("edit")
        elif kind == "resize" and drag["new"] is not None:
            self.session.set_geometry({drag["index"]: drag["new"]}, "Resize box")
        elif kind == "move" and drag["new"] is not None:
            self.session.set_geometry(drag["new"], "Move box")
        if kind in ("resize", "move"):
            for item in self.boxes:
                item._key = None  # re-draw from the record, whatever the drag previewed
            self.sync_boxes(None)
        self.viewport().update()
        event.accept()

    def _hover_cursor(self, pos: QPoint) -> None:
        if self.mode == "draw":
            return
        hit = self._handle_at(pos)
        if hit is not None:
            self.viewport().setCursor(_CURSORS[hit[1]])
            return
        x, y = self._image_point(pos)
        inside = self.box_at(x, y) is not None
        self.viewport().setCursor(Qt.CursorShape.SizeAllCursor if inside
                                  else Qt.CursorShape.ArrowCursor)

    # --- keys -----------------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:
        steps = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0), Qt.Key.Key_Up: (0, -1),
                 Qt.Key.Key_Down: (0, 1)}
        key = Qt.Key(event.key())
        if key in steps and self._selected:
            step = 10 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
            dx, dy = steps[key]
            self.session.nudge(self.selected(), dx * step, dy * step)
            event.accept()
        elif key == Qt.Key.Key_Escape:
            if self._drag is not None and self._drag["kind"] == "draw":
                self._drag = None
            elif self.mode == "draw":
                self.set_mode("edit")
            else:
                self.select([])
            event.accept()
        else:
            super().keyPressEvent(event)

    # --- overlay: crosshair, box being drawn, handles ------------------------------------
    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        w, h = self._size
        if self.mode == "draw" and self._pointer is not None and w > 0:
            x = min(max(self._pointer.x(), 0.0), w)
            y = min(max(self._pointer.y(), 0.0), h)
            pen = QPen(QColor(255, 255, 255, 180), 1, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLine(QPointF(0, y), QPointF(w, y))
            painter.drawLine(QPointF(x, 0), QPointF(x, h))
        drag = self._drag
        if drag is not None and drag["kind"] == "draw":
            (x1, y1), (x2, y2) = drag["start"], drag["end"]
            pen = QPen(class_color(self.session.current_class), 2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(QRectF(QPointF(x1, y1), QPointF(x2, y2)).normalized())
        if len(self._selected) == 1:
            index = next(iter(self._selected))
            painter.save()
            painter.resetTransform()  # handles keep their screen size at any zoom
            painter.setPen(QPen(QColor("black"), 1))
            painter.setBrush(QColor("white"))
            for x, y in handle_points(self.boxes[index].corners()).values():
                p = self.mapFromScene(QPointF(x, y))
                painter.drawRect(p.x() - 4, p.y() - 4, 8, 8)
            painter.restore()
