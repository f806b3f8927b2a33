"""Where a detection run's results go: one sink per output, all behind :class:`Sink`.

``workbench.detect.run.run_detection(config, sources, sinks)`` hands every image it read to
each sink's ``write`` (in input order, in the order of ``sinks``), then calls ``close`` once
with the run's :class:`~workbench.detect.pipeline.RunSummary`; when the run fails it calls
``abort`` instead (a sink whose ``close`` failed is not aborted; the sinks after it are).

The sinks: :class:`YoloSink`, :class:`VocSink`, :class:`CocoSink`, :class:`CsvSink` (the
``--format`` files, :data:`FORMATS`), :class:`AnnotatedImagesSink` (``--save-images``),
:class:`VideoSink` (``--save-video``), :class:`LinesSink` (the lines printed without
``--out``) and :class:`RunFolder` (the ``--out`` folder published whole; the last sink of a
run). The Detect dock's prediction sets have theirs above this package, in
``workbench.predictions.sink`` (``PredictionSetSink``: predictions sit above detect).

Recipe: a new output format
---------------------------

1. One module here, one class with the three methods::

       class JsonLinesSink:
           def __init__(self, out: Path, class_names: list[str], naming: Naming) -> None:
               self.out, self.names, self.naming = make_folder(out), class_names, naming
           def write(self, result: ImageResult) -> None:     # one image's detections
               ...  # result.found.to_boxes(), .scores; self.naming.stem(result)
           def close(self, summary: RunSummary) -> None:     # after the last image
               ...
           def abort(self, error: BaseException) -> None:    # the run failed
               pass

   ``naming`` says where each image's files go (``stem``) and how it is named inside a file
   (``file_name``); write files with ``workbench.storage.atomic``.
2. To offer it as ``workbench detect --format NAME`` (and the Detect dock's export), add it
   to :data:`FORMAT_SINKS` below and its name to ``workbench.detect.config.FORMATS`` (the
   CLI's choices, read without loading this package); ``docs/cli.md`` then needs
   ``python scripts/make_cli_docs.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from workbench.detect.config import DEFAULT_FORMAT, FORMATS, STDOUT_FORMATS
from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.annotated import AnnotatedImagesSink, draw_detections
from workbench.detect.sinks.coco import CocoSink
from workbench.detect.sinks.csv import CsvSink
from workbench.detect.sinks.lines import LinesSink
from workbench.detect.sinks.names import ImageNames, Naming, VideoNames, output_stems
from workbench.detect.sinks.run_folder import RUN_MARKER, RunFolder
from workbench.detect.sinks.video import VideoSink
from workbench.detect.sinks.voc import VocSink
from workbench.detect.sinks.yolo import YoloSink


class Sink(Protocol):
    """Receives a run's results: ``write`` each image read (``result.ok``), then ``close``
    once, or ``abort`` when the run fails."""

    def write(self, result: ImageResult) -> None: ...

    def close(self, summary: RunSummary) -> None: ...

    def abort(self, error: BaseException) -> None: ...


#: ``--format`` NAME -> its sink class (``cls(out, class_names, naming)``)
FORMAT_SINKS: dict[str, type] = {"yolo": YoloSink, "voc": VocSink, "coco": CocoSink,
                                 "csv": CsvSink}


def format_sink(fmt: str, out: Path | None, class_names: list[str], naming: Naming,
                video: str | None = None) -> Sink:
    """The sink of ``--format fmt`` writing into ``out`` (None: a STDOUT_FORMATS document on
    stdout at close). ``video``: the video's file name (COCO and CSV then give each image's
    frame index)."""
    if out is None and fmt not in STDOUT_FORMATS:
        raise ValueError(f"{fmt} detections need an output folder")
    cls = FORMAT_SINKS[fmt]
    if fmt in STDOUT_FORMATS:
        return cls(out, class_names, naming, video=video)
    return cls(out, class_names, naming)


def folder_sinks(folder: RunFolder, fmt: str, class_names: list[str], naming: Naming, *,
                 save_images: bool = False, video: str | None = None) -> list[Sink]:
    """The sinks of an ``--out`` run: the ``--format`` writer, the annotated images when
    asked, and the folder itself last (it publishes at close). The folder's private build
    folder exists from here: a writer that cannot start drops it."""
    try:
        out = folder.open()
        sinks: list[Sink] = [format_sink(fmt, out, class_names, naming, video)]
        if save_images:
            sinks.append(AnnotatedImagesSink(out, class_names, naming))
    except BaseException as exc:
        folder.abort(exc)
        raise
    return [*sinks, folder]


__all__ = ["DEFAULT_FORMAT", "FORMATS", "FORMAT_SINKS", "RUN_MARKER", "STDOUT_FORMATS",
           "AnnotatedImagesSink", "CocoSink", "CsvSink", "ImageNames", "LinesSink", "Naming",
           "RunFolder", "Sink", "VideoNames", "VideoSink", "VocSink",
           "YoloSink", "draw_detections", "folder_sinks", "format_sink", "output_stems"]
