"""Video files as a detection source: frames read by OpenCV's VideoCapture, and annotated output.

Frames are read in order on one worker thread (a capture cannot be read from two threads) and
go through the same pipeline as folder images (:func:`workbench.detect.pipeline.run_jobs`), so
the network overlaps the decoding; ``every`` keeps one frame in N (the others are skipped with
``grab()``, which does not convert them).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING

import numpy as np

from workbench.data.images import decoder_message, quietly
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS
from workbench.detect.pipeline import ImageResult, RunSummary, run_jobs
from workbench.detect.sources import check_source_file
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    import cv2

    from workbench.detect.detector import Detector

#: file suffixes read as videos (what OpenCV's FFmpeg backend opens)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


class VideoSource:
    """An opened video: ``fps``, ``frames`` (the container's count, 0 when it has none), size."""

    def __init__(self, path: str | Path) -> None:
        import cv2

        self.path = Path(path)
        # a FIFO named v.mp4 would block OpenCV's reader: one line instead
        check_source_file(self.path, "no such video file")
        # FFmpeg says why it cannot open a file on fd 2 ("moov atom not found"): caught, and
        # told in our one line instead of above it
        self.capture, printed = quietly(cv2.VideoCapture, str(self.path))
        if not self.capture.isOpened():
            why = f": {decoder_message(printed)}" if printed.strip() else ""
            raise WorkbenchError(f"{self.path}: OpenCV cannot open this video (unknown codec or "
                                 f"container, or not a video){why}")
        self.problems = [f"{self.path}: the decoder warned: {decoder_message(printed)}"] \
            if printed.strip() else []  # reported with the first frame
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS)) or 25.0
        self.frames = max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)))
        self.width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        self.height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self._lock = threading.Lock()
        self._next = 0  # index of the frame the next read returns

    def kept(self, every: int) -> int:
        """How many frames ``every`` keeps (0 when the container does not say)."""
        return math.ceil(self.frames / every) if self.frames else 0

    def read(self, index: int) -> np.ndarray | None:
        """Frame ``index`` (at or after the last one read), or None past the end."""
        return self.read_reporting(index)[0]

    def read_reporting(self, index: int) -> tuple[np.ndarray | None, list[str]]:
        """Frame ``index`` (or None past the end) and what the decoder printed reading it,
        as lines naming the video and the frame (FFmpeg's frame threads may still print
        on their own, later)."""
        with self._lock:
            frame, printed = quietly(self._read, index)
            problems, self.problems = self.problems, []
            if printed.strip():
                problems.append(f"{self.path}: frame {index}: the decoder warned: "
                                f"{decoder_message(printed)}")
            return frame, problems

    def _read(self, index: int) -> np.ndarray | None:
        while self._next < index:
            if not self.capture.grab():
                return None
            self._next += 1
        ok, frame = self.capture.read()
        self._next += 1
        return frame if ok else None

    def close(self) -> None:
        self.capture.release()


def _read_frame(video: VideoSource, index: int, detector: Detector, keep_image: bool
                ) -> tuple[ImageResult, np.ndarray | None] | None:
    """Worker job: read and preprocess frame ``index``; None at the end of the video."""
    frame, problems = video.read_reporting(index)
    if frame is None:
        return None
    try:
        blob = detector.prepare(frame)
    except Exception as exc:  # one odd frame must not end a long run
        return ImageResult(video.path, error=f"{video.path}: frame {index}: {exc}",
                           frame=index), None
    return (ImageResult(video.path, frame.shape[1], frame.shape[0],
                        image=frame if keep_image else None, frame=index,
                        problems=problems), blob)


def detect_video(detector: Detector, path: str | Path, conf: float = DEFAULT_CONF,
                 nms: float = DEFAULT_NMS,
                 *, every: int = 1, batch: int = 1, prefetch: int = 4,
                 progress: Callable[[int, int], None] | None = None,
                 cancel: Event | None = None, keep_images: bool = False,
                 summary: RunSummary | None = None,
                 video: VideoSource | None = None) -> Iterator[ImageResult]:
    """Yield one ImageResult per kept frame (``frame`` set), in order; progress counts frames.

    ``every``: keep frames 0, N, 2N, ... A frame that cannot be decoded ends the video (OpenCV
    cannot seek past it reliably).
    """
    if every < 1:
        raise WorkbenchError(f"--every must be 1 or more, got {every}")
    own = video is None
    video = video or VideoSource(path)

    def jobs():
        index = 0
        while not video.frames or index < video.frames:
            yield lambda i=index: _read_frame(video, i, detector, keep_images)
            index += every

    try:
        # one worker: frames must be read in order; the network still overlaps the reading
        yield from run_jobs(detector, jobs(), video.kept(every), conf, nms, batch=batch,
                            workers=1, prefetch=prefetch, progress=progress, cancel=cancel,
                            summary=summary)
    finally:
        if own:
            video.close()


class VideoWriter:
    """``--save-video OUT``: frames written to a temporary file next to OUT, renamed on close.
    ``fps`` may be set until the first frame is written.

    The codec follows the suffix: mp4v for .mp4/.m4v/.mov, MJPG for .avi, XVID otherwise
    (all in the PyPI OpenCV wheels). ``abort()`` removes the temporary file.
    """

    def __init__(self, path: str | Path, fps: float = 25.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise WorkbenchError(f"{self.path}: --save-video needs a video suffix "
                                 f"({', '.join(VIDEO_SUFFIXES[:3])}, ...)")
        if self.path.parent and not self.path.parent.is_dir():
            raise WorkbenchError(f"{self.path.parent}: no such folder for --save-video")
        self.tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")
        self.fps = fps
        self.writer: cv2.VideoWriter | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        import cv2

        if self.writer is None:
            suffix = self.path.suffix.lower()
            code = ("mp4v" if suffix in (".mp4", ".m4v", ".mov")
                    else "MJPG" if suffix == ".avi" else "XVID")
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter.fourcc(*code),
                                          self.fps, (image.shape[1], image.shape[0]))
            if not self.writer.isOpened():
                self.writer = None
                raise WorkbenchError(f"{self.path}: OpenCV cannot write a {code} video here")
        self.writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise WorkbenchError(f"{self.path}: cannot write the video: {exc}") from None

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        self.tmp.unlink(missing_ok=True)
