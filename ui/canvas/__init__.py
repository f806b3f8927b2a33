"""The image canvas: a QGraphicsView that shows one image and edits its boxes."""

from ui.canvas.view import CanvasView

__all__ = ["CanvasView"]
