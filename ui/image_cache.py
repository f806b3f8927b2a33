"""Decoded images for the canvas: decoded on a worker, downscaled to the view, kept a few.

Switching images shows a cached image at once; the neighbours of the current image are
decoded ahead. JPEGs are decoded at reduced size straight from the DCT (PIL's draft mode),
which is several times faster than a full decode followed by a resize.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ui import workers
from workbench.errors import WorkbenchError


@dataclass(frozen=True)
class Decoded:
    image: QImage
    full_width: int   # of the EXIF-oriented image, in pixels; boxes live in this frame
    full_height: int

    @property
    def scale(self) -> float:
        """Pixels of ``image`` per image pixel (1.0 when full resolution)."""
        return self.image.width() / max(self.full_width, 1)


def _fit(width: int, height: int, max_w: int, max_h: int) -> tuple[int, int]:
    s = min(1.0, max_w / max(width, 1), max_h / max(height, 1))
    return max(1, round(width * s)), max(1, round(height * s))


def _draft_jpeg(path: Path, max_w: int, max_h: int) -> tuple[np.ndarray, int, int] | None:
    """Reduced-size JPEG decode in the EXIF orientation, or None when not a plain JPEG."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        if im.format != "JPEG" or im.mode not in ("RGB", "L"):
            return None
        orientation = im.getexif().get(0x0112, 1)
        w, h = im.size
        if orientation in (5, 6, 7, 8):  # stored rotated by 90 degrees
            w, h, max_w, max_h = h, w, max_h, max_w
        im.draft("RGB", (max_w, max_h))
        im.load()
        im = ImageOps.exif_transpose(im).convert("RGB")
        return np.asarray(im), w, h  # w, h are already those of the oriented image


def read_for_view(path: str | Path, max_w: int = 0, max_h: int = 0) -> tuple[np.ndarray, int, int]:
    """RGB pixels fitting in (max_w, max_h) (0 = full size) and the full image size."""
    import cv2

    from workbench.data.images import load_rgb

    path = Path(path)
    rgb = None
    if max_w > 0 and max_h > 0:
        try:
            drafted = _draft_jpeg(path, max_w, max_h)
        except Exception:  # noqa: BLE001 - a damaged file gets the core's clear error below
            drafted = None
        if drafted is not None:
            rgb, full_w, full_h = drafted
    if rgb is None:
        rgb = load_rgb(path)
        full_h, full_w = rgb.shape[:2]
    if max_w > 0 and max_h > 0:
        w, h = _fit(full_w, full_h, max_w, max_h)
        if (w, h) != (rgb.shape[1], rgb.shape[0]):
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb), full_w, full_h


def to_qimage(rgb: np.ndarray) -> QImage:
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def decode(job: workers.Job, path: str, max_w: int, max_h: int) -> Decoded:
    """Worker function: decode ``path`` for the view (a QImage may be made off the GUI thread)."""
    rgb, full_w, full_h = read_for_view(path, max_w, max_h)
    return Decoded(to_qimage(rgb), full_w, full_h)


class ImageCache(QObject):
    """Keeps the last few decoded images; decodes on request and ahead of time."""

    ready = Signal(str, object)     # path, Decoded
    failed = Signal(str, str)       # path, one-line message

    def __init__(self, capacity: int = 8, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.capacity = capacity
        self.max_size = (1920, 1080)
        self._cache: OrderedDict[tuple[str, bool], Decoded] = OrderedDict()
        self._pending: dict[tuple[str, bool], workers.Worker] = {}
        self.errors: dict[str, str] = {}

    def set_view_size(self, width: int, height: int) -> None:
        """Decode to at least this size from now on (the view's size in device pixels)."""
        width, height = max(width, 640), max(height, 480)
        if width > self.max_size[0] or height > self.max_size[1]:
            self.max_size = (width, height)

    def get(self, path: str | Path, full: bool = False) -> Decoded | None:
        key = (str(path), full)
        found = self._cache.get(key)
        if found is None and not full:
            found = self._cache.get((str(path), True))
        if found is not None:
            self._cache.move_to_end(key if key in self._cache else (str(path), True))
        return found

    def request(self, path: str | Path, full: bool = False) -> Decoded | None:
        """The cached image, or None after starting a decode that ends in ready/failed."""
        found = self.get(path, full)
        if found is not None:
            return found
        key = (str(path), full)
        if str(path) in self.errors:
            self.failed.emit(str(path), self.errors[str(path)])
            return None
        worker = self._pending.get(key)
        if worker is None or worker.job.cancelled:
            self._start(key)
        return None

    def _start(self, key: tuple[str, bool]) -> None:
        max_w, max_h = (0, 0) if key[1] else self.max_size
        holder: list[workers.Worker] = []

        def finished() -> None:
            if holder and self._pending.get(key) is holder[0]:
                del self._pending[key]

        worker = workers.start(decode, key[0], max_w, max_h,
                               on_result=lambda d: self._store(key, d),
                               on_error=lambda e: self._fail(key, e),
                               on_finished=finished)
        holder.append(worker)
        self._pending[key] = worker

    def prefetch(self, paths: list[str | Path]) -> None:
        for path in paths:
            self.request(path)

    def pending(self) -> int:
        return len(self._pending)

    def cancel_except(self, keep: set[str]) -> None:
        """Cancel decodes that have not started, except those of ``keep`` (far jumps)."""
        for (path, _), worker in list(self._pending.items()):
            if path not in keep:
                worker.cancel()

    def clear(self) -> None:
        for worker in self._pending.values():
            worker.cancel()
        self._cache.clear()
        self.errors.clear()

    def _store(self, key: tuple[str, bool], decoded: Decoded) -> None:
        self._cache[key] = decoded
        self._cache.move_to_end(key)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(key[0], decoded)

    def _fail(self, key: tuple[str, bool], error: BaseException) -> None:
        if isinstance(error, WorkbenchError):
            message = str(error)
        else:
            message = f"{key[0]}: cannot open the image: {error}"
        self.errors[key[0]] = message
        self.failed.emit(key[0], message)
