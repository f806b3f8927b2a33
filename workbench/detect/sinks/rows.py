"""The detections of a whole run, collected for the formats written once at the end (COCO,
CSV): one row per detection and the images in order."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from pathlib import Path

from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.names import Naming, make_folder
from workbench.formats.coco import coco_document
from workbench.labels.dataset import ImageRecord


class CollectedRows(ABC):
    """Base of the sinks that write at ``close``: ``rows`` (one dict per detection: image_id,
    file_name, frame, width, height, category_id = class index + 1, class_id, bbox xywh,
    score), ``images`` ((file name, ImageRecord) in order) and their ``frames``.

    ``out`` None prints ``document()`` on stdout at ``close`` instead of writing ``write_files``
    (see ``workbench detect --format coco|csv`` without --out). ``video`` (the video's file
    name) adds each image's frame index to the output.
    """

    def __init__(self, out: Path | None, class_names: list[str], naming: Naming,
                 video: str | None = None) -> None:
        self.out = make_folder(out) if out is not None else None
        self.names, self.naming, self.video = class_names, naming, video
        self.rows: list[dict] = []
        self.images: list[tuple[str, ImageRecord]] = []
        self.frames: list[int | None] = []

    def write(self, result: ImageResult) -> None:
        file_name = self.naming.file_name(result)
        image_id = len(self.images) + 1
        self.images.append((file_name, ImageRecord(result.path, result.width, result.height)))
        self.frames.append(result.frame)
        d = result.found
        for b, s in zip(d.to_boxes(), d.scores.tolist(), strict=True):
            self.rows.append({"image_id": image_id, "file_name": file_name,
                              "frame": result.frame,
                              "width": result.width, "height": result.height,
                              "category_id": b.class_id + 1, "class_id": b.class_id,
                              "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1], "score": s})

    def close(self, summary: RunSummary) -> None:
        if self.out is None:
            sys.stdout.write(self.document())
        else:
            self.write_files(self.out)

    def abort(self, error: BaseException) -> None:  # noqa: B027 - nothing written before close
        """Rows are kept in memory until ``close``: a failed run leaves no file to remove."""

    @abstractmethod
    def document(self) -> str:
        """What this format prints on stdout without an output folder."""

    @abstractmethod
    def write_files(self, out: Path) -> None:
        """Write this format's files into ``out``."""

    def images_document(self) -> dict:
        """COCO images (a video's frames with their index) and categories."""
        doc = coco_document(self.images, self.names)
        if self.video is not None:  # one image entry per frame, in frame order
            for entry, frame in zip(doc["images"], self.frames, strict=True):
                entry["frame_id"] = frame
                entry["video"] = self.video
        return doc
