"""One interface for every inference engine, and the choice of engine (``make_backend``).

A backend takes a float32 NCHW RGB blob in [0, 1] (batch N) and returns, for each [yolo] head
in cfg order, a float32 array (N, rows, 5 + classes) in OpenCV's row convention: cx, cy, w, h
normalized to the network input, objectness, then class score = objectness x class
probability, never zeroed below a threshold.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.errors import BackendUnavailable, ModelError
from workbench.extras import install_hint

#: what ``--backend`` accepts; "opencv-*" and "*-cpu" spellings are accepted too
BACKEND_CHOICES = ("auto", "cpu", "cuda", "cuda-fp16", "onnxruntime", "onnxruntime-cuda",
                   "openvino", "tensorflow")
#: what ``--precision`` accepts; only OpenVINO runs other than fp32 (OpenCV has "cuda-fp16")
PRECISION_CHOICES = ("auto", "fp32", "bf16", "fp16", "int8")

_ALIASES = {
    "opencv": "cpu", "opencv-cpu": "cpu", "opencv-cuda": "cuda",
    "opencv-cuda-fp16": "cuda-fp16", "onnxruntime-cpu": "onnxruntime",
    "tensorflow-cpu": "tensorflow", "openvino-cpu": "openvino",
}


class Pending(ABC):
    """A forward started by :meth:`Backend.start`; ``result()`` waits and returns the heads."""

    @abstractmethod
    def result(self) -> list[np.ndarray]:
        """Wait for the forward; one (N, rows, 5+C) array per head, as ``forward`` returns."""


class Done(Pending):
    """A forward that already ran (engines without asynchronous requests)."""

    def __init__(self, outputs: list[np.ndarray]) -> None:
        self.outputs = outputs

    def result(self) -> list[np.ndarray]:
        return self.outputs


class Backend(ABC):
    """An inference engine for one model at one input size.

    ``name`` says which engine runs (e.g. "opencv-cpu", "onnxruntime-cuda") and ``reason`` why
    it was chosen, in words for the CLI summary and the GUI.
    """

    name: str = ""
    reason: str = ""
    precision: str = "fp32"
    width: int = 0
    height: int = 0
    #: forwards that may be in flight at once (``start`` without ``result``); 1: synchronous
    in_flight: int = 1
    #: what ``Detector.prepare`` hands ``start``: "blob" (the float blob above) or "bgr8"
    #: (uint8 (N, height, width, 3) BGR resized to the input; the engine makes the blob)
    input_layout: str = "blob"

    @abstractmethod
    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """Run the network on ``blob`` (N, 3, height, width); one (N, rows, 5+C) array per head."""

    def start(self, blob: np.ndarray) -> Pending:
        """Start a forward; engines with asynchronous requests return before it finishes, so
        the caller can prepare the next images meanwhile (at most ``in_flight`` at once)."""
        return Done(self.forward(blob))

    @property
    def engine(self) -> str:
        """Engine and precision, e.g. "openvino-cpu bf16", for the summary line."""
        return f"{self.name} {self.precision}"

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.engine} {self.width}x{self.height}: "
                f"{self.reason}>")


def _onnxruntime_module():
    """The ONNX Runtime backend module, or None while it is not installed or not written yet."""
    try:
        return importlib.import_module("workbench.detect.onnxruntime_backend")
    except ImportError:
        return None


def _openvino_module():
    """The OpenVINO backend module when openvino is installed and has a CPU device, else None."""
    try:
        module = importlib.import_module("workbench.detect.openvino_backend")
    except ImportError:
        return None
    return module if module.available() else None


def available_backends() -> list[str]:
    """The BACKEND_CHOICES that can run here (for menus such as the GUI's Detect panel)."""
    from workbench.detect.opencv_backend import cuda_targets

    found = ["auto", "cpu"]
    found += [t for t in ("cuda", "cuda-fp16") if t in cuda_targets()]
    ort = _onnxruntime_module()
    if ort is not None and ort.available_providers():
        found.append("onnxruntime")
        if "CUDAExecutionProvider" in ort.available_providers():
            found.append("onnxruntime-cuda")
    if _openvino_module() is not None:
        found.append("openvino")
    if importlib.util.find_spec("tensorflow") is not None:
        found.append("tensorflow")
    return found


def make_backend(bundle: ModelBundle, name: str = "auto", width: int = 416,
                 height: int = 416, precision: str = "auto",
                 calibrate: Sequence[Path] = ()) -> Backend:
    """The backend called ``name`` (see BACKEND_CHOICES), or the best one here for "auto".

    ``auto`` order: OpenCV CUDA FP16, OpenCV CUDA (when this OpenCV build lists the target),
    ONNX Runtime CUDA (when its CUDA provider is there), OpenVINO CPU (the fastest CPU engine:
    docs/engines.md), ONNX Runtime CPU, OpenCV CPU. An explicit name that cannot run here raises
    BackendUnavailable.

    ``precision`` (PRECISION_CHOICES): "auto" lets the engine pick (OpenVINO: bf16 where the
    CPU has it); bf16/fp16/int8 run on OpenVINO only; int8 is calibrated on ``calibrate``.
    """
    choice = _ALIASES.get(name, name)
    if choice not in BACKEND_CHOICES:
        raise BackendUnavailable(f"unknown backend {name!r} (choose from "
                                 f"{', '.join(BACKEND_CHOICES)})")
    if precision not in PRECISION_CHOICES:
        raise BackendUnavailable(f"unknown precision {precision!r} (choose from "
                                 f"{', '.join(PRECISION_CHOICES)})")
    reduced = precision not in ("auto", "fp32")
    if choice == "auto" and reduced:
        if _openvino_module() is None:
            raise BackendUnavailable(f"--precision {precision} needs the OpenVINO backend "
                                     "(pip install openvino)")
        choice = "openvino"
    if reduced and choice != "openvino":
        raise BackendUnavailable(
            f"--precision {precision}: only the openvino backend runs {precision}"
            + (" (OpenCV's half precision is --backend cuda-fp16)" if precision == "fp16"
               else ""))
    if choice == "auto":
        return _auto(bundle, width, height, precision)
    if choice == "openvino":
        module = _openvino_module()
        if module is None:
            raise BackendUnavailable("the OpenVINO backend needs the openvino package with a "
                                     "CPU device: pip install openvino")
        return module.OpenVinoBackend(bundle, width, height, precision, calibrate)
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
                                 f"train extra: {install_hint('train')}") from None
    return module.TensorFlowBackend(bundle, width, height)


def _auto(bundle: ModelBundle, width: int, height: int, precision: str = "auto") -> Backend:
    from workbench.detect.opencv_backend import OpenCvBackend, check_opencv, cuda_targets

    check_opencv()
    targets = cuda_targets()
    if targets:
        target = targets[0]
        return OpenCvBackend(bundle, width, height, target,
                             reason=f"auto: this OpenCV build has a {target.upper()} target")
    why_not_ort = "the ONNX Runtime backend is not available"
    module = _onnxruntime_module()
    providers = module.available_providers() if module is not None else []
    why_not_ov = "openvino is not installed"
    openvino = _openvino_module()
    if "CUDAExecutionProvider" not in providers and openvino is not None:
        try:
            backend = openvino.OpenVinoBackend(bundle, width, height, precision)
        except (BackendUnavailable, ModelError, RuntimeError) as exc:
            why_not_ov = f"openvino failed: {exc}"
        else:
            backend.reason = (f"{backend.reason}; " if backend.reason.startswith("auto")
                              else "auto: ") + ("no CUDA here; OpenVINO is the fastest CPU "
                                                "engine")
            return backend
    if module is not None:
        device = "cuda" if "CUDAExecutionProvider" in providers else "cpu"
        try:
            backend = module.OnnxRuntimeBackend(bundle, width, height, device=device)
        except (BackendUnavailable, ModelError, ImportError) as exc:
            # a model the ONNX exporter cannot take may still run in OpenCV
            why_not_ort = f"onnxruntime failed: {exc}"
        else:
            backend.reason = (
                "auto: OpenCV has no CUDA target; onnxruntime has CUDA" if device == "cuda"
                else "auto: no CUDA here (OpenCV build and onnxruntime lack it) and "
                f"{why_not_ov}; onnxruntime is the fastest CPU engine left")
            return backend
    return OpenCvBackend(bundle, width, height, "cpu",
                         reason=f"auto: no CUDA target in this OpenCV build and {why_not_ort}")
