"""Folder runs: decode images on worker threads while the network runs.

A bounded prefetch queue keeps at most ``prefetch`` images decoded ahead of the network (memory
stays flat on huge folders); results come back in input order. Unreadable images are yielded
with ``error`` set and never stop the run; a ``threading.Event`` cancels between images.

A JPEG at least twice the network input in both directions is decoded at 1/2, 1/4 or 1/8
scale (``workbench.data.images.load_bgr_scaled``) and its boxes are scaled back to the full
image; ``full_decode`` (``detect --full-decode``) or ``WORKBENCH_FULL_DECODE=1`` decodes every
pixel instead, as other tools do, and so does a run that keeps its images (drawing).
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from threading import Event
from typing import Protocol

import numpy as np

from workbench.data.images import Reduced, load_bgr, load_bgr_scaled
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS
from workbench.detect.decode import Candidates, Detections, suppress, to_full_size
from workbench.detect.engines.base import Backend, Pending
from workbench.detect.sources import check_source_file, resolve_sources
from workbench.errors import WorkbenchError

__all__ = ["ImageResult", "RunSummary", "check_source_file", "detect_images", "resolve_sources",
           "run_jobs"]


class Detects(Protocol):
    """What the pipeline asks of a detector: ``workbench.detect.detector.Detector``, which
    imports this module to run folders (naming the class here would close a circle)."""

    backend: Backend
    width: int  # the network input
    height: int
    merge_boxes: bool  # NMS with merged boxes (workbench.detect.decode.merged_boxes)

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray: ...

    def split(self, outputs: list[np.ndarray], n: int) -> list[list[np.ndarray]]: ...

    def decode(self, heads: list[np.ndarray], image_width: int, image_height: int,
               conf: float) -> Candidates: ...


@dataclass
class ImageResult:
    """One image's outcome: detections, or ``error`` (one line) when it could not be read."""

    path: Path
    width: int = 0
    height: int = 0
    detections: Detections | None = None
    error: str | None = None
    image: np.ndarray | None = None  # the BGR image, when asked for (drawing, saving)
    frame: int | None = None  # the frame index, when the source is a video
    # what went wrong without stopping the image (a decoder's warning), one line each
    problems: list[str] = field(default_factory=list)
    # the reduced decode the network saw (a large JPEG; its size and where its pixels lie in
    # the image); None: decoded whole. Detections are in the full image's pixels either way.
    reduced: Reduced | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def found(self) -> Detections:
        """``detections`` of an image that was read and run through the network (what a sink
        is given); ValueError for one skipped (``error``) or not run yet."""
        if self.detections is None:
            raise ValueError(f"{self.path}: no detections ({self.error or 'not run yet'})")
        return self.detections


@dataclass
class RunSummary:
    """Totals of a folder run, for the closing line of the CLI and the GUI's status bar."""

    images: int = 0
    skipped: int = 0
    detections: int = 0
    seconds: float = 0.0
    cancelled: bool = False  # stopped before the last image (cancel, Ctrl+C, a failed job)
    problems: list[str] = field(default_factory=list)  # every result's problems, in order
    errors: list[str] = field(default_factory=list)  # the skipped images' errors, in order

    def count(self, result: ImageResult) -> None:
        """Add one result to the totals (not ``seconds``)."""
        self.images += 1
        self.problems += result.problems
        if result.error is not None:
            self.skipped += 1
            self.errors.append(result.error)
        elif result.detections is not None:
            self.detections += len(result.detections)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else 0.0


#: set to 1 (yes, true) to decode every JPEG whole in every run (the Detect dock, prediction
#: sets, evaluation), as ``detect --full-decode`` does for one run
FULL_DECODE_VARIABLE = "WORKBENCH_FULL_DECODE"


def full_decode_asked() -> bool:
    """Whether ``WORKBENCH_FULL_DECODE`` asks every run to decode images whole."""
    return os.environ.get(FULL_DECODE_VARIABLE, "").strip().lower() in ("1", "yes", "true",
                                                                         "on")


def _load(path: Path, detector: Detects, keep_image: bool,
          scaled: bool = False) -> tuple[ImageResult, np.ndarray | None]:
    """Worker-thread job: decode and preprocess one image (cv2 releases the GIL for both);
    ``scaled``: a large JPEG at a reduced scale, no smaller than the network input."""
    problems: list[str] = []
    reduced = None
    try:
        if scaled:
            image, (width, height), reduced = load_bgr_scaled(
                path, detector.width, detector.height, problems)
        else:
            image = load_bgr(path, problems)
            width, height = image.shape[1], image.shape[0]
        blob = detector.prepare(image)
    except WorkbenchError as exc:
        return ImageResult(path, error=str(exc)), None
    except Exception as exc:  # a reader bug on one odd file must not end a long run
        return ImageResult(path, error=f"{path}: cannot read image: {exc}"), None
    return ImageResult(path, width, height, image=image if keep_image else None,
                       problems=problems, reduced=reduced), blob


def detect_images(detector: Detects, sources: str | Path | Iterable[str | Path],
                  conf: float = DEFAULT_CONF, nms: float = DEFAULT_NMS, *, batch: int = 1, workers: int = 2,
                  prefetch: int = 4, progress: Callable[[int, int], None] | None = None,
                  cancel: Event | None = None, keep_images: bool = False,
                  summary: RunSummary | None = None,
                  full_decode: bool = False) -> Iterator[ImageResult]:
    """Yield one :class:`ImageResult` per image, in input order.

    ``batch`` images go through the network in one forward (on 2 CPU cores batching does not
    help; on a GPU it does). ``progress(done, total)`` is called after each image; setting
    ``cancel`` stops the run after the image in hand. ``summary``, when given, is filled in as
    the run goes. Closing the generator early stops the workers. Large JPEGs are decoded at
    a reduced scale unless ``full_decode``, ``WORKBENCH_FULL_DECODE`` or ``keep_images`` (the
    drawings are made on the full image) says otherwise.
    """
    paths = resolve_sources(sources)
    scaled = not (full_decode or keep_images or full_decode_asked())
    jobs = (partial(_load, path, detector, keep_images, scaled) for path in paths)
    yield from run_jobs(detector, jobs, len(paths), conf, nms, batch=batch, workers=workers,
                        prefetch=prefetch, progress=progress, cancel=cancel, summary=summary)


#: a worker-thread job: the image (without detections) and its blob, or None: end of source
Job = Callable[[], "tuple[ImageResult, np.ndarray | None] | None"]


def run_jobs(detector: Detects, jobs: Iterator[Job], total: int, conf: float, nms: float, *,
             batch: int = 1, workers: int = 2, prefetch: int = 4,
             progress: Callable[[int, int], None] | None = None, cancel: Event | None = None,
             summary: RunSummary | None = None) -> Iterator[ImageResult]:
    """The pipeline under :func:`detect_images` and video runs: each job (run on a worker
    thread, in order of submission) returns an ImageResult without detections and its blob
    (None with ``error`` set); the results come back in job order with detections filled in.

    Engines with asynchronous requests (OpenVINO) get up to ``in_flight`` forwards at once, so
    the network, the workers' decoding and this thread's box decoding and NMS all overlap. A
    job returning None marks the end of the source (a video shorter than its header said).
    """
    summary = summary if summary is not None else RunSummary()
    start = time.perf_counter()
    batch = max(1, int(batch))
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="detect-load")
    pending: deque[Future] = deque()
    depth = max(1, detector.backend.in_flight // batch)
    in_flight: deque[tuple[list, Pending | None]] = deque()

    ended = False  # a job returned None: the source (a video) has no more frames

    def fill() -> None:
        while not ended and len(pending) < max(prefetch, batch * (depth + 1)):
            job = next(jobs, None)
            if job is None:
                return
            pending.append(pool.submit(job))

    def take_group() -> list | None:
        """Up to `batch` readable images (and the unreadable ones between), None on cancel."""
        nonlocal ended
        group: list[tuple[ImageResult, np.ndarray | None]] = []
        while pending and sum(blob is not None for _, blob in group) < batch:
            if cancel is not None and cancel.is_set():
                return None
            loaded = pending.popleft().result()
            if loaded is None:  # end of the source: the jobs after this one have nothing
                ended = True
                for future in pending:
                    future.cancel()
                pending.clear()
                break
            group.append(loaded)
            fill()
        return group

    try:
        fill()
        while pending or in_flight:
            while pending and len(in_flight) < depth:
                group = take_group()
                if group is None:
                    summary.cancelled = True
                    return
                if not group:
                    break
                blobs = [blob for _, blob in group if blob is not None]
                started = (detector.backend.start(blobs[0] if len(blobs) == 1
                                                  else np.concatenate(blobs, axis=0))
                           if blobs else None)
                in_flight.append((group, started))
            if not in_flight:
                break
            group, started = in_flight.popleft()
            n_good = sum(blob is not None for _, blob in group)
            heads = iter(detector.split(started.result(), n_good) if started else [])
            for result, blob in group:
                if blob is not None:
                    result.detections = _detections(detector, next(heads), result, conf, nms)
                yield _finish(result, summary, start, progress, total)
            if cancel is not None and cancel.is_set() and (pending or in_flight):
                summary.cancelled = True
                return
    finally:
        _release(in_flight, pending, pool)
        summary.seconds = time.perf_counter() - start


def _detections(detector: Detects, heads: list[np.ndarray], result: ImageResult, conf: float,
                nms: float) -> Detections:
    """One image's detections in its full size's pixels, also when the network saw a
    reduced decode (boxes found in that decode's pixels, then mapped to the image's)."""
    r = result.reduced
    if r is None:
        return suppress(detector.decode(heads, result.width, result.height, conf), nms,
                        detector.merge_boxes)
    found = suppress(detector.decode(heads, r.width, r.height, conf), nms, detector.merge_boxes)
    return to_full_size(found, r.scale, (r.offset_x, r.offset_y),
                        (result.width, result.height))


def _finish(result: ImageResult, summary: RunSummary, start: float,
            progress: Callable[[int, int], None] | None, total: int) -> ImageResult:
    """Count a result in and report progress."""
    summary.count(result)
    summary.seconds = time.perf_counter() - start
    if progress is not None:
        progress(summary.images, total)
    return result


def _release(in_flight: deque, pending: deque[Future], pool: ThreadPoolExecutor) -> None:
    """A stopping run's clean-up: the engine's requests given back, the workers stopped."""
    for _, started in in_flight:
        if started is not None:
            try:
                started.result()
            except Exception:  # noqa: BLE001 - already stopping; the first error counts
                pass
    for future in pending:
        future.cancel()
    pool.shutdown(wait=True, cancel_futures=True)
