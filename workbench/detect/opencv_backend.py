"""Kept for old imports: the OpenCV DNN engine is ``workbench.detect.engines.opencv``."""

from workbench.detect.engines.opencv import (
    CUDA_HOWTO,
    TARGETS,
    OpenCvBackend,
    check_opencv,
    check_weights_size,
    cuda_targets,
    low_threshold_cfg,
)

__all__ = ["CUDA_HOWTO", "TARGETS", "OpenCvBackend", "check_opencv", "check_weights_size",
           "cuda_targets", "low_threshold_cfg"]
