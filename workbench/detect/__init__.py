"""Detection: one backend interface (OpenCV DNN, ONNX Runtime, OpenVINO, TensorFlow), vectorized
decoding, class-aware NMS, and folder and video runs with prefetch, progress and cancel.

    from workbench.detect import Detector
    detector = Detector("path/to/bundle", backend="auto", size=416)
    detections = detector.detect(image_bgr, conf=0.25, nms=0.45)
    print(detector.backend.name, detector.backend.reason)

A whole run (images, a folder, a list file or a video into output sinks) is
``workbench.detect.run.run_detection(DetectConfig(...), sources, sinks)``.

The names below load on first use (PEP 562): ``workbench.detect.config``, which the CLI reads
to build its parser, is imported without numpy or any engine.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BACKEND_CHOICES": "backends", "PRECISION_CHOICES": "backends", "Backend": "backends",
    "available_backends": "backends", "make_backend": "backends",
    "Candidates": "decode", "decode": "decode",
    "Detections": "detector", "Detector": "detector",
    "ImageResult": "pipeline", "RunSummary": "pipeline", "detect_images": "pipeline",
    "resolve_sources": "pipeline",
    "DetectConfig": "config", "DEFAULT_CONF": "config", "DEFAULT_NMS": "config",
    "run_detection": "run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
