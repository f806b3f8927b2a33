"""Which detection engines can run on this machine, without building any of them.

The GUI's engine list shows only these. Every name in ``backends.BACKEND_CHOICES`` is
listed; the known ones are probed cheaply (no model is loaded, TensorFlow is not imported),
and a name added later without a probe here is listed as runnable: ``make_backend`` gives
its one-line reason if it is not.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Engine:
    name: str           # what --backend takes
    available: bool
    why_not: str = ""   # one line when not available


def device_of(engine_name: str) -> str:
    """The device an engine name runs on: "cuda", "gpu", "npu" or "cpu"."""
    parts = engine_name.lower().split("-")
    for device in ("cuda", "gpu", "npu"):
        if device in parts:
            return device
    return "cpu"


def _probe(name: str) -> str:
    """"" when ``name`` can run here, else why not (one line)."""
    if name in ("cpu", "cuda", "cuda-fp16"):
        from workbench.detect.opencv_backend import check_opencv, cuda_targets
        from workbench.errors import BackendUnavailable

        try:
            check_opencv()
        except BackendUnavailable as exc:
            return str(exc)
        if name != "cpu" and name not in cuda_targets():
            return "this OpenCV build has no CUDA target"
        return ""
    if name in ("onnxruntime", "onnxruntime-cuda"):
        if importlib.util.find_spec("onnxruntime") is None:
            return "the onnxruntime package is not installed"
        if name == "onnxruntime-cuda":
            from workbench.detect.onnxruntime_backend import available_providers

            if "CUDAExecutionProvider" not in available_providers():
                return "onnxruntime here has no CUDAExecutionProvider"
        return ""
    if name == "tensorflow":
        if importlib.util.find_spec("tensorflow") is None:
            return "TensorFlow is not installed (the train extra)"
        return ""
    return ""


def engines_here() -> list[Engine]:
    """Every engine ``--backend`` names except "auto", with whether it runs here."""
    from workbench.detect.backends import BACKEND_CHOICES

    found = []
    for name in BACKEND_CHOICES:
        if name == "auto":
            continue
        why = _probe(name)
        found.append(Engine(name, not why, why))
    return found
