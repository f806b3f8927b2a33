"""Folder runs: decode images on worker threads while the network runs.

A bounded prefetch queue keeps at most ``prefetch`` images decoded ahead of the network (memory
stays flat on huge folders); results come back in input order. Unreadable images are yielded
with ``error`` set and never stop the run; a ``threading.Event`` cancels between images.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING

import numpy as np

from workbench.errors import FormatError, WorkbenchError

if TYPE_CHECKING:
    from workbench.detect.detector import Detections, Detector


@dataclass
class ImageResult:
    """One image's outcome: detections, or ``error`` (one line) when it could not be read."""

    path: Path
    width: int = 0
    height: int = 0
    detections: Detections | None = None
    error: str | None = None
    image: np.ndarray | None = None  # the BGR image, when asked for (drawing, saving)

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class RunSummary:
    """Totals of a folder run, for the closing line of the CLI and the GUI's status bar."""

    images: int = 0
    skipped: int = 0
    detections: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


def resolve_sources(source: str | Path | Iterable[str | Path]) -> list[Path]:
    """Image paths from an image file, a folder (recursive) or a list file (one path a line,
    relative to the list file's folder), or from an iterable of paths."""
    from workbench.images import is_image, list_images

    if not isinstance(source, str | Path):
        return [Path(p) for p in source]
    source = Path(source)
    if source.is_dir():
        return list_images(source)
    if not source.is_file():
        raise WorkbenchError(f"{source}: no such image, folder or list file")
    if is_image(source):
        return [source]
    try:
        lines = source.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(source, f"not an image, and not readable as a list file: {exc}") \
            from None
    paths = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line)
            paths.append(p if p.is_absolute() else source.parent / p)
    return paths


def _load(path: Path, detector: Detector, keep_image: bool):
    """Worker-thread job: decode and preprocess one image (cv2 releases the GIL for both)."""
    from workbench.images import load_bgr

    try:
        image = load_bgr(path)
        blob = detector.preprocess(image)
    except WorkbenchError as exc:
        return path, None, str(exc)
    except Exception as exc:  # a reader bug on one odd file must not end a long run
        return path, None, f"{path}: cannot read image: {exc}"
    return path, (image if keep_image else None, image.shape[1], image.shape[0], blob), None


def detect_images(detector: Detector, sources: str | Path | Iterable[str | Path],
                  conf: float = 0.25, nms: float = 0.45, *, batch: int = 1, workers: int = 2,
                  prefetch: int = 4, progress: Callable[[int, int], None] | None = None,
                  cancel: Event | None = None, keep_images: bool = False,
                  summary: RunSummary | None = None) -> Iterator[ImageResult]:
    """Yield one :class:`ImageResult` per image, in input order.

    ``batch`` images go through the network in one forward (on 2 CPU cores batching does not
    help; on a GPU it does). ``progress(done, total)`` is called after each image; setting
    ``cancel`` stops the run after the image in hand. ``summary``, when given, is filled in as
    the run goes. Closing the generator early stops the workers.
    """
    from workbench.detect.detector import suppress

    paths = resolve_sources(sources)
    total = len(paths)
    summary = summary if summary is not None else RunSummary()
    start = time.perf_counter()
    batch = max(1, int(batch))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="detect-load")
    pending: deque[Future] = deque()
    queue = iter(paths)

    def fill() -> None:
        while len(pending) < max(prefetch, batch):
            path = next(queue, None)
            if path is None:
                return
            pending.append(pool.submit(_load, path, detector, keep_images))

    def finish(result: ImageResult) -> ImageResult:
        summary.images += 1
        if result.error is not None:
            summary.skipped += 1
        elif result.detections is not None:
            summary.detections += len(result.detections)
        summary.seconds = time.perf_counter() - start
        if progress is not None:
            progress(summary.images, total)
        return result

    try:
        fill()
        while pending:
            group = []  # (path, loaded, error) in input order, up to `batch` readable images
            while pending and sum(e is None for _, _, e in group) < batch:
                if cancel is not None and cancel.is_set():
                    summary.cancelled = True
                    return
                group.append(pending.popleft().result())
                fill()
            good = [loaded for _, loaded, error in group if error is None]
            heads = iter(detector.forward(np.concatenate([g[3] for g in good], axis=0))
                         if good else [])
            for path, loaded, error in group:
                if error is not None:
                    yield finish(ImageResult(path, error=error))
                    continue
                image, width, height, _ = loaded
                dets = suppress(detector.decode(next(heads), width, height, conf), nms)
                yield finish(ImageResult(path, width, height, dets, image=image))
            if cancel is not None and cancel.is_set() and pending:
                summary.cancelled = True
                return
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        summary.seconds = time.perf_counter() - start
