"""The Detect dock's work on worker threads: load the model, run into a prediction set (the
``workbench detect`` service, ``workbench.predictions.run.detect_into_set``), export a set.

The Detector is built once per model, engine and size and kept in the panel's ``holder``
(a dict used by one worker at a time)."""

from __future__ import annotations

from pathlib import Path

from ui import workers
from workbench.detect.config import DetectConfig
from workbench.detect.detector import Detector
from workbench.predictions import run as prediction_runs
from workbench.predictions.sets import RunInfo


def detector_for(holder: dict, config: DetectConfig) -> Detector:
    """The Detector ``config`` describes, built once and kept (worker threads only)."""
    key = config.detector_key()
    if holder.get("key") != key:
        holder.clear()
        holder["detector"] = Detector.from_config(config)
        holder["key"] = key
    return holder["detector"]


def load_model(job: workers.Job, holder: dict, config: DetectConfig
               ) -> tuple[str, str, list[str]]:
    """Worker: build the detector; (engine, reason, class names)."""
    d = detector_for(holder, config)
    return d.backend.name, d.backend.reason, list(d.class_names)


def run_into_set(job: workers.Job, holder: dict, config: DetectConfig, sources, root: Path,
                 set_dir: Path, info: RunInfo, replace_set: bool) -> RunInfo:
    """Worker: one run into a prediction set (the pipeline of ``workbench detect``)."""
    detector = detector_for(holder, config)
    return prediction_runs.detect_into_set(detector, sources, root, set_dir, config.conf,
                                           config.nms, info, progress=job.progress,
                                           cancelled=lambda: job.cancelled,
                                           replace=replace_set)


def export_job(job: workers.Job, set_dir: Path, root: Path, out: Path, fmt: str,
               save_images: bool) -> int:
    return prediction_runs.export_set(set_dir, root, out, fmt, save_images,
                                      progress=job.progress)
