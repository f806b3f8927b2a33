"""Detection: one backend interface (OpenCV DNN, ONNX Runtime, OpenVINO, TensorFlow), vectorized
decoding, class-aware NMS, and folder and video runs with prefetch, progress and cancel.

    from workbench.detect import Detector
    detector = Detector("path/to/bundle", backend="auto", size=416)
    detections = detector.detect(image_bgr, conf=0.25, nms=0.45)
    print(detector.backend.name, detector.backend.reason)
"""

from workbench.detect.backends import (
    BACKEND_CHOICES,
    PRECISION_CHOICES,
    Backend,
    available_backends,
    make_backend,
)
from workbench.detect.decode import Candidates, decode
from workbench.detect.detector import Detections, Detector
from workbench.detect.pipeline import ImageResult, RunSummary, detect_images, resolve_sources

__all__ = ["BACKEND_CHOICES", "PRECISION_CHOICES", "Backend", "available_backends", "Candidates", "Detections", "Detector", "ImageResult",
           "RunSummary", "decode", "detect_images", "make_backend", "resolve_sources"]
