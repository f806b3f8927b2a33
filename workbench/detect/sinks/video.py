"""An annotated video: every result's image with its boxes drawn, one frame each
(``workbench detect VIDEO --save-video OUT.mp4``), moved into place at ``close``."""

from __future__ import annotations

from pathlib import Path

from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.annotated import draw_detections
from workbench.detect.video import VideoWriter


class VideoSink:
    """``fps`` may be set until the first frame is written (a video source's fps / every).
    Needs the run's ``keep_images``."""

    def __init__(self, video: VideoWriter | str | Path, class_names: list[str]) -> None:
        # a path is checked now (suffix, folder): give a VideoWriter made before the model loads
        self.writer = video if isinstance(video, VideoWriter) else VideoWriter(video)
        self.names = class_names

    @property
    def path(self) -> Path:
        return self.writer.path

    @property
    def fps(self) -> float:
        return self.writer.fps

    @fps.setter
    def fps(self, value: float) -> None:
        self.writer.fps = value

    def write(self, result: ImageResult) -> None:
        if result.image is None:
            raise ValueError(f"{result.path}: no image to draw on (the run needs keep_images)")
        self.writer.write(draw_detections(result.image, result.found, self.names))

    def close(self, summary: RunSummary) -> None:
        self.writer.close()

    def abort(self, error: BaseException) -> None:
        self.writer.abort()
