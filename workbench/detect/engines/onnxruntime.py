"""The ONNX Runtime engine: the Darknet model exported to ONNX once, then run by onnxruntime.

The ONNX file is made on first use and cached (``onnx_cache``: keyed by the model's content and
the input size).

On a CPU-only machine this is the fastest engine (about 1.7x OpenCV DNN for yolov3-tiny on two
cores); ``onnxruntime-gpu`` brings CUDA with a plain pip install.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.detect.engines.base import Backend
from workbench.detect.engines.onnx_cache import cached_onnx, cpu_cores
from workbench.detect.engines.registry import Engine, register
from workbench.errors import BackendUnavailable, ModelError

GPU_HOWTO = ("pip install onnxruntime-gpu (in place of onnxruntime, with a CUDA and cuDNN it "
             "supports) to run ONNX Runtime on CUDA")


def available_providers() -> list[str]:
    """The execution providers this onnxruntime offers; empty when it is not installed."""
    try:  # onnxruntime is heavy: imported when an engine is probed or built
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


class OnnxRuntimeBackend(Backend):
    """``OnnxRuntimeBackend(bundle, width, height, device="cpu"|"cuda")``.

    All graph optimizations on, intra-op threads = the cores this process may use. CUDA only
    where ``onnxruntime.get_available_providers()`` lists CUDAExecutionProvider.
    """

    def __init__(self, bundle: ModelBundle, width: int, height: int, device: str = "cpu",
                 reason: str = "") -> None:
        if device not in ("cpu", "cuda"):
            raise BackendUnavailable(f"unknown ONNX Runtime device {device!r} (cpu or cuda)")
        try:  # onnxruntime is heavy: imported when this engine is built
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailable(
                "the ONNX Runtime backend needs onnxruntime: pip install onnxruntime "
                "(or onnxruntime-gpu for CUDA)") from None
        providers = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in providers:
            raise BackendUnavailable(f"onnxruntime {ort.__version__} here has no "
                                     f"CUDAExecutionProvider: {GPU_HOWTO}")
        self.onnx_path = cached_onnx(bundle, width, height)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = cpu_cores()
        options.inter_op_num_threads = 1
        # Idle ORT threads spin by default, taking the cores the image-decoding threads of a
        # folder run (and the GUI) need: measured 1.4x images/s end to end without it here.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only; ORT warns about unused initializers etc.
        wanted = (["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda"
                  else ["CPUExecutionProvider"])
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), options, providers=wanted)
        except Exception:  # onnxruntime raises its own Fail/InvalidGraph classes
            # a damaged cache file (disk trouble, a hand edit): export once more and retry
            self.onnx_path.unlink(missing_ok=True)
            self.onnx_path = cached_onnx(bundle, width, height)
            try:
                self.session = ort.InferenceSession(str(self.onnx_path), options,
                                                    providers=wanted)
            except Exception as exc:
                raise ModelError(f"{self.onnx_path}: ONNX Runtime cannot load the exported "
                                 f"model: {str(exc).strip().splitlines()[-1]}") from None
        if device == "cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            # onnxruntime-gpu falls back to CPU when the CUDA libraries fail to load
            raise BackendUnavailable("onnxruntime lists CUDAExecutionProvider but could not "
                                     "start it (CUDA or cuDNN libraries missing or mismatched); "
                                     f"{GPU_HOWTO}")
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.width, self.height = width, height
        self.device = device
        self.name = f"onnxruntime-{device}"
        self.reason = reason or (f"asked for ONNX Runtime on {device.upper()}"
                                 + (f" ({options.intra_op_num_threads} threads)"
                                    if device == "cpu" else ""))

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        if blob.ndim != 4 or blob.shape[2:] != (self.height, self.width):
            raise ModelError(f"blob of shape {tuple(blob.shape)} does not fit the network "
                             f"input (N, 3, {self.height}, {self.width})")
        return self.session.run(self.output_names,
                                {self.input_name: np.ascontiguousarray(blob, np.float32)})


def check(device: str) -> tuple[bool, str]:
    """Whether ONNX Runtime runs on ``device`` here, and why not (the registry's check)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return False, "the onnxruntime package is not installed"
    if device == "cuda" and "CUDAExecutionProvider" not in available_providers():
        return False, "onnxruntime here has no CUDAExecutionProvider"
    return True, ""


def build(device: str, bundle: ModelBundle, width: int, height: int, precision: str = "auto",
          calibrate: Sequence[Path] = ()) -> OnnxRuntimeBackend:
    """The registry's factory (fp32 only)."""
    if device == "cuda" and "CUDAExecutionProvider" not in available_providers():
        raise BackendUnavailable(
            "onnxruntime here has no CUDAExecutionProvider: install onnxruntime-gpu "
            "(with a matching CUDA and cuDNN) in place of onnxruntime")
    return OnnxRuntimeBackend(bundle, width, height, device=device)


def auto_reason(device: str, backend: Backend, skipped: Mapping[str, str]) -> str:
    """Why ``auto`` took ONNX Runtime: its CUDA, or the fastest CPU engine that ran."""
    if device == "cuda":
        return "auto: OpenCV has no CUDA target; onnxruntime has CUDA"
    why_not_ov = skipped.get("openvino", "openvino is not installed")
    return ("auto: no CUDA here (OpenCV build and onnxruntime lack it) and "
            f"{why_not_ov}; onnxruntime is the fastest CPU engine left")


def _engine(device: str, rank: int, aliases: tuple[str, ...] = ()) -> Engine:
    return Engine("onnxruntime" + ("-cuda" if device == "cuda" else ""), partial(build, device),
                  partial(check, device), rank=rank, label="ONNX Runtime", aliases=aliases,
                  install="pip install onnxruntime (onnxruntime-gpu for CUDA)",
                  # a model the ONNX exporter cannot take may still run in OpenCV
                  auto_errors=(BackendUnavailable, ModelError, ImportError),
                  auto_reason=partial(auto_reason, device))


register(_engine("cpu", 50, ("onnxruntime-cpu",)), _engine("cuda", 30))
