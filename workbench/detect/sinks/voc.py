"""Pascal VOC XML: ``STEM.xml`` per image, a ``<score>`` per object (labelImg ignores it; eval
ranks the detections by it)."""

from __future__ import annotations

from pathlib import Path

from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.names import Naming, make_folder, target
from workbench.formats.voc import format_voc
from workbench.storage.atomic import atomic_write_bytes


class VocSink:
    def __init__(self, out: Path, class_names: list[str], naming: Naming) -> None:
        self.out, self.names, self.naming = make_folder(out), class_names, naming

    def write(self, result: ImageResult) -> None:
        d = result.found
        atomic_write_bytes(target(self.out, self.naming, result, ".xml"), format_voc(
            d.to_boxes(), self.names, result.path, result.width, result.height,
            scores=d.scores.tolist()))

    def close(self, summary: RunSummary) -> None:
        pass

    def abort(self, error: BaseException) -> None:
        pass
