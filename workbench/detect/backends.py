"""One interface for every inference engine, and the choice of engine (``make_backend``).

A backend takes a float32 NCHW RGB blob in [0, 1] (batch N) and returns, for each [yolo] head
in cfg order, a float32 array (N, rows, 5 + classes) in OpenCV's row convention: cx, cy, w, h
normalized to the network input, objectness, then class score = objectness x class
probability, never zeroed below a threshold.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.errors import BackendUnavailable, ModelError

#: what ``--backend`` accepts; "opencv-*" and "*-cpu" spellings are accepted too
BACKEND_CHOICES = ("auto", "cpu", "cuda", "cuda-fp16", "onnxruntime", "onnxruntime-cuda",
                   "tensorflow")

_ALIASES = {
    "opencv": "cpu", "opencv-cpu": "cpu", "opencv-cuda": "cuda",
    "opencv-cuda-fp16": "cuda-fp16", "onnxruntime-cpu": "onnxruntime",
    "tensorflow-cpu": "tensorflow",
}


class Backend(ABC):
    """An inference engine for one model at one input size.

    ``name`` says which engine runs (e.g. "opencv-cpu", "onnxruntime-cuda") and ``reason`` why
    it was chosen, in words for the CLI summary and the GUI.
    """

    name: str = ""
    reason: str = ""
    width: int = 0
    height: int = 0

    @abstractmethod
    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the network on ``blob`` (N, 3, height, width); one (N, rows, 5+C) array per head."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.width}x{self.height}: {self.reason}>"


def _onnxruntime_module():
    """The ONNX Runtime backend module, or None while it is not installed or not written yet."""
    try:
        return importlib.import_module("workbench.detect.onnxruntime_backend")
    except ImportError:
        return None


def make_backend(bundle: ModelBundle, name: str = "auto", width: int = 416,
                 height: int = 416) -> Backend:
    """The backend called ``name`` (see BACKEND_CHOICES), or the best one here for "auto".

    ``auto`` order: OpenCV CUDA FP16, OpenCV CUDA (when this OpenCV build lists the target),
    ONNX Runtime CUDA (when its CUDA provider is there), ONNX Runtime CPU (fastest on a CPU-only
    machine), OpenCV CPU. An explicit name that cannot run here raises BackendUnavailable.
    """
    choice = _ALIASES.get(name, name)
    if choice not in BACKEND_CHOICES:
        raise BackendUnavailable(f"unknown backend {name!r} (choose from "
                                 f"{', '.join(BACKEND_CHOICES)})")
    if choice == "auto":
        return _auto(bundle, width, height)
    if choice in ("cpu", "cuda", "cuda-fp16"):
        from workbench.detect.opencv_backend import OpenCvBackend

        return OpenCvBackend(bundle, width, height, choice)
    if choice in ("onnxruntime", "onnxruntime-cuda"):
        module = _onnxruntime_module()
        if module is None:
            raise BackendUnavailable("the ONNX Runtime backend needs the onnxruntime package "
                                     "(pip install onnxruntime, or onnxruntime-gpu for CUDA)")
        device = "cuda" if choice == "onnxruntime-cuda" else "cpu"
        if device == "cuda" and "CUDAExecutionProvider" not in module.available_providers():
            raise BackendUnavailable(
                "onnxruntime here has no CUDAExecutionProvider: install onnxruntime-gpu "
                "(with a matching CUDA and cuDNN) in place of onnxruntime")
        return module.OnnxRuntimeBackend(bundle, width, height, device=device)
    try:
        module = importlib.import_module("workbench.detect.tensorflow_backend")
    except ImportError as exc:
        raise BackendUnavailable(f"the TensorFlow backend cannot load ({exc}); install the "
                                 "train extra: pip install 'detection-workbench[train]'") from None
    return module.TensorFlowBackend(bundle, width, height)


def _auto(bundle: ModelBundle, width: int, height: int) -> Backend:
    from workbench.detect.opencv_backend import OpenCvBackend, check_opencv, cuda_targets

    check_opencv()
    targets = cuda_targets()
    if targets:
        target = targets[0]
        return OpenCvBackend(bundle, width, height, target,
                             reason=f"auto: this OpenCV build has a {target.upper()} target")
    why_not_ort = "the ONNX Runtime backend is not available"
    module = _onnxruntime_module()
    if module is not None:
        providers = module.available_providers()
        device = "cuda" if "CUDAExecutionProvider" in providers else "cpu"
        try:
            backend = module.OnnxRuntimeBackend(bundle, width, height, device=device)
        except (BackendUnavailable, ModelError, ImportError) as exc:
            # a model the ONNX exporter cannot take may still run in OpenCV
            why_not_ort = f"onnxruntime failed: {exc}"
        else:
            backend.reason = (
                "auto: OpenCV has no CUDA target; onnxruntime has CUDA" if device == "cuda"
                else "auto: no CUDA here (OpenCV build and onnxruntime lack it); onnxruntime "
                "is the fastest CPU engine")
            return backend
    return OpenCvBackend(bundle, width, height, "cpu",
                         reason=f"auto: no CUDA target in this OpenCV build and {why_not_ort}")
