"""YOLO text: ``STEM.txt`` per image, lines ``class cx cy w h confidence``, and ``classes.txt``."""

from __future__ import annotations

from pathlib import Path

from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.names import Naming, make_folder, target
from workbench.formats.yolo import format_classes, format_yolo_detections
from workbench.storage.atomic import atomic_write_text


class YoloSink:
    def __init__(self, out: Path, class_names: list[str], naming: Naming) -> None:
        self.out, self.names, self.naming = make_folder(out), class_names, naming

    def write(self, result: ImageResult) -> None:
        d = result.found
        atomic_write_text(target(self.out, self.naming, result, ".txt"), format_yolo_detections(
            d.to_boxes(), d.scores.tolist(), result.width, result.height))

    def close(self, summary: RunSummary) -> None:
        atomic_write_text(self.out / "classes.txt", format_classes(self.names))

    def abort(self, error: BaseException) -> None:
        pass
