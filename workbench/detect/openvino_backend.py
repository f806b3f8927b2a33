"""Kept for old imports: the OpenVINO engine is ``workbench.detect.engines.openvino``."""

from workbench.detect.engines.openvino import (
    CALIBRATION_IMAGES,
    PRECISIONS,
    OpenVinoBackend,
    auto_precision,
    available,
    capabilities,
    cpu_flags,
    kept_in_float,
    quantized_model,
    supported_precisions,
)

__all__ = ["CALIBRATION_IMAGES", "PRECISIONS", "OpenVinoBackend", "auto_precision", "available",
           "capabilities", "cpu_flags", "kept_in_float", "quantized_model",
           "supported_precisions"]
