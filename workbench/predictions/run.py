"""Detection runs into a prediction set, and a set written out in a ``detect --format``.

A run is ``workbench detect``'s own (``workbench.detect.run.run_detection``) with one sink,
``workbench.predictions.sink.PredictionSetSink``: the files ``detect --out`` writes by
default (YOLO + confidence, paths relative to the set's root, clashing names made unique the
same way) and ``run.json``. An export reads the set back and hands each image to the
``--format`` sinks.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from workbench.data.images import load_bgr
from workbench.detect.config import DetectConfig
from workbench.detect.decode import Detections
from workbench.detect.detector import Detector
from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.run import close_sinks, run_detection
from workbench.detect.sinks import AnnotatedImagesSink, ImageNames, format_sink, output_stems
from workbench.detect.sources import resolve_sources
from workbench.predictions.sets import (
    RunInfo,
    check_set_dir,
    confined,
    read_info,
    read_names,
    read_predictions,
)
from workbench.predictions.sink import PredictionSetSink
from workbench.storage.atomic import writes_inside


def detect_into_set(detector: Detector, sources, root: str | Path, set_dir: Path, conf: float,
                    nms: float, info: RunInfo, *,
                    progress: Callable[[int, int], None] | None = None,
                    cancelled: Callable[[], bool] = lambda: False,
                    replace: bool = False) -> RunInfo:
    """Run ``detector`` over ``sources`` at ``conf`` and ``nms`` into ``set_dir``, the
    images' paths relative to ``root``; ``run.json`` last.

    ``cancelled()`` is asked after each image; a cancelled run keeps what it wrote and says
    so in ``run.json``. ``replace`` empties an existing set first.
    """
    set_dir = check_set_dir(set_dir)
    paths = resolve_sources(sources)
    naming = ImageNames(output_stems(paths, Path(root)), Path(root))  # detect --out's names
    if replace and set_dir.is_dir():
        shutil.rmtree(set_dir)
    info.started = info.started or time.strftime("%Y-%m-%d %H:%M:%S")
    info.classes = list(detector.class_names)
    info.engine, info.reason = detector.backend.name, detector.backend.reason
    info.size = (detector.width, detector.height)
    info.conf, info.nms = conf, nms
    config = DetectConfig(model=detector.bundle, conf=conf, nms=nms)
    with writes_inside(set_dir):  # a file of the set linked out is not written through
        sink = PredictionSetSink(set_dir, Path(root), info, detector.class_names, naming)
        run_detection(config, paths, [sink], progress, cancelled, detector=detector)
    return info


def export_set(set_dir: Path, root: str | Path, out: str | Path, fmt: str,
               save_images: bool = False, progress=None) -> int:
    """Write a set in any format ``workbench detect --format`` writes (its own sinks), to
    ``out``; ``save_images`` draws the boxes on copies as ``--save-images`` does. Returns
    the number of images written."""
    info = read_info(set_dir)
    names = read_names(set_dir) or info.classes
    root = Path(root)
    # detect's rule for names that clash once their suffix is dropped (a.jpg, a.png)
    paths = [root / rel for rel, _, _ in info.images]
    naming = ImageNames(output_stems(paths, root), root,
                        files={root / rel: rel for rel, _, _ in info.images})
    sinks = [format_sink(fmt, Path(out), names, naming)]
    if save_images:
        sinks.append(AnnotatedImagesSink(Path(out), names, naming))
    summary = RunSummary()
    for done, (rel, width, height) in enumerate(info.images, 1):
        found = read_predictions(set_dir, rel, width, height, len(names), info.renamed)
        detections = Detections.from_boxes(found.boxes if found else [],
                                           found.scores if found else [])
        path = root / rel
        # the image is read only when drawn on; it must be one of the data set's
        image = load_bgr(confined(path, root, "data set folder")) if save_images else None
        result = ImageResult(path, width, height, detections, image=image)
        summary.count(result)
        for sink in sinks:
            sink.write(result)
        if progress is not None:
            progress(done, len(info.images))
    close_sinks(sinks, summary)
    return len(info.images)
