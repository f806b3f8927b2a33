"""Box geometry for editing: plain functions on (x1, y1, x2, y2) tuples in image pixels."""

from __future__ import annotations

Rect = tuple[float, float, float, float]

# handle names: which edges a handle drags
HANDLES = ("top-left", "top", "top-right", "right", "bottom-right", "bottom", "bottom-left",
           "left")


def normalized(rect: Rect) -> Rect:
    x1, y1, x2, y2 = rect
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def clip(rect: Rect, width: float, height: float) -> Rect:
    """``rect`` normalized and clipped to the image."""
    x1, y1, x2, y2 = normalized(rect)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def moved(rect: Rect, dx: float, dy: float, width: float, height: float) -> Rect:
    """``rect`` shifted by (dx, dy), keeping its size and staying inside the image."""
    x1, y1, x2, y2 = rect
    dx = min(max(dx, -x1), width - x2)
    dy = min(max(dy, -y1), height - y2)
    return (x1 + dx, y1 + dy, x2 + dx, y2 + dy)


def handle_points(rect: Rect) -> dict[str, tuple[float, float]]:
    x1, y1, x2, y2 = rect
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return {"top-left": (x1, y1), "top": (cx, y1), "top-right": (x2, y1), "right": (x2, cy),
            "bottom-right": (x2, y2), "bottom": (cx, y2), "bottom-left": (x1, y2),
            "left": (x1, cy)}


def resized(rect: Rect, handle: str, x: float, y: float, width: float, height: float,
            min_size: float = 1.0) -> Rect:
    """``rect`` with the edges under ``handle`` dragged to (x, y), clipped to the image.

    An edge cannot cross its opposite edge: the box keeps at least ``min_size`` pixels.
    """
    x = min(max(x, 0.0), width)
    y = min(max(y, 0.0), height)
    x1, y1, x2, y2 = rect
    if "left" in handle:
        x1 = min(x, x2 - min_size)
    if "right" in handle:
        x2 = max(x, x1 + min_size)
    if handle.startswith("top"):
        y1 = min(y, y2 - min_size)
    if handle.startswith("bottom"):
        y2 = max(y, y1 + min_size)
    return clip((x1, y1, x2, y2), width, height)


def iou(a: Rect, b: Rect) -> float:
    """Intersection over union of two normalized rects (0 when either is empty)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
