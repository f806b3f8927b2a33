"""One detection run: a DetectConfig, sources and sinks; the one entry point of the CLI verb
(local and on Ray), prediction sets and the Detect dock.

    from workbench.detect.config import DetectConfig
    from workbench.detect.detector import Detector
    from workbench.detect.run import run_detection
    from workbench.detect.sinks import ImageNames, YoloSink
    from workbench.detect.sources import resolve_sources

    config = DetectConfig(model="demo", conf=0.3)
    paths = resolve_sources("images/")
    detector = Detector.from_config(config)  # or leave it to run_detection
    sinks = [YoloSink(Path("out"), detector.class_names, ImageNames.of(paths, Path("images")))]
    summary = run_detection(config, paths, sinks, detector=detector)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING, Protocol

from workbench.detect.config import DetectConfig
from workbench.detect.detector import Detector
from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sources import resolve_sources
from workbench.detect.tta import load_detector
from workbench.detect.video import VideoSource, detect_video
from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from workbench.detect.sinks import Sink

#: a run's images: an image, a folder, a list file or paths; or an opened video
Sources = str | Path | Iterable[str | Path] | VideoSource


class Runner(Protocol):
    """Runs the detector elsewhere (a Ray cluster): one ImageResult per path, in order."""

    def __call__(self, config: DetectConfig, paths: list[Path]) -> Iterator[ImageResult]: ...


def run_detection(config: DetectConfig, sources: Sources, sinks: Sequence[Sink],
                  progress: Callable[[int, int], None] | None = None,
                  cancel: Callable[[], bool] | Event | None = None, *,
                  detector: Detector | None = None,
                  runner: Runner | None = None) -> RunSummary:
    """Detect on ``sources`` with ``config`` and hand each image read to every sink; the run's
    totals (the skipped images' errors in ``errors``).

    ``detector``: a loaded Detector to use (else ``load_detector(config)`` builds one, with
    test-time augmentation when ``config.tta``; a caller that loads the model before opening
    its outputs passes it). ``runner``: run elsewhere
    instead (``workbench.detect.ray_runner.RayRunner``; images only). ``progress(done,
    total)`` is called after each image (total 0 when a video does not say); ``cancel`` (a
    callable or an Event) is asked after each image: the run stops there, its sinks closed
    with ``summary.cancelled``. On any other exception (Ctrl+C included) every sink is
    aborted, unless the runner keeps what it finished (``runner.keep_partial``: the sinks are
    closed with ``summary.cancelled``), and the exception goes on.
    """
    summary = RunSummary()
    stop = cancel.is_set if isinstance(cancel, Event) else cancel
    results: Iterator[ImageResult] | None = None
    start = time.perf_counter()
    try:
        results, total = _results(config, sources, detector, runner)
        for result in results:
            summary.count(result)
            summary.seconds = time.perf_counter() - start
            if progress is not None:
                progress(summary.images, total)
            if result.ok:
                for sink in sinks:
                    sink.write(result)
            if stop is not None and stop():
                summary.cancelled = True
                break
    except BaseException as exc:
        _stop(results)  # a Ray job stops now; local workers are shut down
        summary.seconds = time.perf_counter() - start
        if getattr(runner, "keep_partial", False):
            summary.cancelled = True
            close_sinks(sinks, summary)
        else:
            for sink in sinks:
                sink.abort(exc)
        raise
    _stop(results)
    summary.seconds = time.perf_counter() - start
    close_sinks(sinks, summary)
    return summary


def _results(config: DetectConfig, sources: Sources, detector: Detector | None,
             runner: Runner | None) -> tuple[Iterator[ImageResult], int]:
    """The run's results as they come, and how many are expected."""
    if isinstance(sources, VideoSource):
        detector = detector or load_detector(config)
        return detect_video(detector, sources.path, config.conf, config.nms,
                            every=config.every, batch=config.batch,
                            keep_images=config.keep_images, video=sources), \
            sources.kept(config.every)
    paths = resolve_sources(sources)
    if runner is not None:
        if config.tta:  # its actors build plain Detectors
            raise WorkbenchError("--tta runs locally, not on Ray")
        return runner(config, paths), len(paths)
    detector = detector or load_detector(config)
    return detector.detect_many(paths, config.conf, config.nms, batch=config.batch,
                                keep_images=config.keep_images,
                                full_decode=config.full_decode), len(paths)


def _stop(results: Iterator[ImageResult] | None) -> None:
    close = getattr(results, "close", None)
    if close is not None:
        close()


def close_sinks(sinks: Sequence[Sink], summary: RunSummary) -> None:
    """Close each sink in order; when one fails, the sinks after it are aborted (a run folder
    after the writers drops the run) and the error goes on."""
    for i, sink in enumerate(sinks):
        try:
            sink.close(summary)
        except BaseException as exc:
            for later in sinks[i + 1:]:
                later.abort(exc)
            raise
