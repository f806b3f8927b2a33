"""The ONNX Runtime engine: the Darknet model exported to ONNX once, then run by onnxruntime.

The ONNX file is made on first use and cached, keyed by the content of the cfg, the weights and
the names plus the input size, so editing or retraining a model makes a new file. The cache
lives in ``$WORKBENCH_CACHE_DIR/onnx`` when that is set, else
``${XDG_CACHE_HOME:-~/.cache}/detection-workbench/onnx``.

On a CPU-only machine this is the fastest engine (about 1.7x OpenCV DNN for yolov3-tiny on two
cores); ``onnxruntime-gpu`` brings CUDA with a plain pip install.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.detect.backends import Backend
from workbench.errors import BackendUnavailable, ModelError

GPU_HOWTO = ("pip install onnxruntime-gpu (in place of onnxruntime, with a CUDA and cuDNN it "
             "supports) to run ONNX Runtime on CUDA")


def available_providers() -> list[str]:
    """The execution providers this onnxruntime offers; empty when it is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return []
    return list(onnxruntime.get_available_providers())


def cache_dir() -> Path:
    """Where exported ONNX files are kept (see the module docstring)."""
    root = os.environ.get("WORKBENCH_CACHE_DIR")
    if root:
        return Path(root) / "onnx"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "detection-workbench" / "onnx"


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, not the whole machine)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def model_key(bundle: ModelBundle, width: int, height: int) -> str:
    """Hash of the cfg, weights and names content, the input size and the exporter version."""
    from workbench.darknet.onnx_export import EXPORTER_VERSION

    digest = hashlib.sha256(f"exporter {EXPORTER_VERSION} size {width}x{height}\n".encode())
    for path in (bundle.cfg, bundle.weights, bundle.names):
        try:
            with open(path, "rb") as f:
                digest.update(f"{os.fstat(f.fileno()).st_size}\n".encode())
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise ModelError(f"{path}: cannot read model file: {exc}") from None
    return digest.hexdigest()


def cached_onnx(bundle: ModelBundle, width: int, height: int) -> Path:
    """The ONNX file for ``bundle`` at ``width`` x ``height`` (dynamic batch), made if missing."""
    try:
        from workbench.darknet.onnx_export import export_files
    except ImportError as exc:
        raise BackendUnavailable(f"exporting to ONNX needs the onnx package ({exc}): "
                                 "pip install onnx") from None
    folder = cache_dir()
    key = model_key(bundle, width, height)[:20]
    path = folder / f"{Path(bundle.cfg).stem}-{width}x{height}-{key}.onnx"
    if path.is_file():
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{folder}: cannot create the ONNX cache folder: {exc}") from None
    # written atomically: a second process racing us sees either nothing or a whole file
    try:
        return export_files(bundle.cfg, bundle.weights, path, class_names=bundle.class_names(),
                            width=width, height=height, dynamic_batch=True)
    except OSError as exc:
        raise ModelError(f"{path}: cannot write the exported model: {exc}") from None


class OnnxRuntimeBackend(Backend):
    """``OnnxRuntimeBackend(bundle, width, height, device="cpu"|"cuda")``.

    All graph optimizations on, intra-op threads = the cores this process may use. CUDA only
    where ``onnxruntime.get_available_providers()`` lists CUDAExecutionProvider.
    """

    def __init__(self, bundle: ModelBundle, width: int, height: int, device: str = "cpu",
                 reason: str = "") -> None:
        if device not in ("cpu", "cuda"):
            raise BackendUnavailable(f"unknown ONNX Runtime device {device!r} (cpu or cuda)")
        try:
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
