"""The OpenCV DNN engine: ``cv2.dnn.readNetFromDarknet`` on CPU, CUDA or CUDA FP16.

OpenCV multiplies class scores by objectness and zeroes every class score at or below the
[yolo] section's ``thresh`` (0.2 when the cfg has none). The inspector and mAP evaluation need
the low-confidence candidates, so the network is built from a copy of the cfg with ``thresh=0``
in every [yolo] section; the user's file is never changed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.darknet.cfg import DarknetCfg, check_supported, format_cfg
from workbench.darknet.weights import floats_needed, header_length
from workbench.detect.engines.base import Backend
from workbench.detect.engines.registry import Engine, register
from workbench.errors import BackendUnavailable, ModelError

#: target name -> (cv2.dnn backend constant name, cv2.dnn target constant name)
TARGETS = {
    "cpu": ("DNN_BACKEND_OPENCV", "DNN_TARGET_CPU"),
    "cuda": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA"),
    "cuda-fp16": ("DNN_BACKEND_CUDA", "DNN_TARGET_CUDA_FP16"),
}

CUDA_HOWTO = (
    "the PyPI OpenCV wheels have no CUDA: build OpenCV from source with -DWITH_CUDA=ON "
    "-DOPENCV_DNN_CUDA=ON (keep opencv-python-headless uninstalled so it does not shadow your "
    "build), or use --backend onnxruntime-cuda with the onnxruntime-gpu package"
)


def check_opencv() -> None:
    """Raise BackendUnavailable when this OpenCV cannot read Darknet models (OpenCV >= 5)."""
    major = int(cv2.__version__.split(".")[0])
    if major >= 5 or not hasattr(cv2.dnn, "readNetFromDarknet"):
        raise BackendUnavailable(
            f"OpenCV {cv2.__version__} has no Darknet importer (OpenCV 5 removed "
            "readNetFromDarknet); install opencv-python-headless>=4.10,<5 (4.14 works)"
        )


def cuda_targets() -> list[str]:
    """The CUDA targets ("cuda", "cuda-fp16") this OpenCV build can really run."""
    try:
        available = set(cv2.dnn.getAvailableTargets(cv2.dnn.DNN_BACKEND_CUDA))
    except (cv2.error, AttributeError):
        return []
    found = []
    if cv2.dnn.DNN_TARGET_CUDA_FP16 in available:
        found.append("cuda-fp16")
    if cv2.dnn.DNN_TARGET_CUDA in available:
        found.append("cuda")
    return found


def low_threshold_cfg(cfg: DarknetCfg, width: int, height: int) -> str:
    """cfg text for OpenCV: ``thresh=0`` in every [yolo] and the requested input size."""
    copy = cfg.copy()
    copy.net.options["width"], copy.net.options["height"] = str(width), str(height)
    copy.net.options["batch"] = copy.net.options["subdivisions"] = "1"
    for s in copy.layers:
        if s.kind == "yolo":
            s.options["thresh"] = "0"
    return format_cfg(copy)


def check_weights_size(bundle: ModelBundle, cfg: DarknetCfg) -> None:
    """Fail clearly, before OpenCV does, when the weights file does not fit the cfg."""
    path = Path(bundle.weights)
    try:
        size, offset = header_length(path)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read weights: {exc}") from None
    if offset is None:
        raise ModelError(f"{path}: {size} bytes do not start with a darknet weights header")
    needed = floats_needed(cfg)
    have = (size - offset) // 4
    if size - offset != needed * 4:  # a few stray bytes too: OpenCV would ignore them
        raise ModelError(f"{path}: does not fit {bundle.cfg}: cfg needs {needed} floats, "
                         f"file has {have}" + (f" and {(size - offset) % 4} bytes"
                                               if (size - offset) % 4 else ""))


class OpenCvBackend(Backend):
    """Darknet cfg + weights run by OpenCV DNN on ``target`` ("cpu", "cuda", "cuda-fp16")."""

    def __init__(self, bundle: ModelBundle, width: int, height: int, target: str = "cpu",
                 reason: str = "") -> None:
        if target not in TARGETS:
            raise BackendUnavailable(f"unknown OpenCV target {target!r} "
                                     f"(choose from {', '.join(TARGETS)})")
        check_opencv()
        if target != "cpu" and target not in cuda_targets():
            raise BackendUnavailable(
                f"OpenCV {cv2.__version__} here has no {target.upper()} target "
                f"(cv2.dnn.getAvailableTargets(DNN_BACKEND_CUDA) does not list it): {CUDA_HOWTO}"
            )
        cfg = bundle.read_cfg()
        check_supported(cfg)
        check_weights_size(bundle, cfg)
        text = low_threshold_cfg(cfg, width, height)
        try:
            net = cv2.dnn.readNetFromDarknet(np.frombuffer(text.encode(), np.uint8),
                                             np.fromfile(str(bundle.weights), np.uint8))
        except cv2.error as exc:
            raise ModelError(f"{bundle.cfg}: OpenCV cannot build the network: "
                             f"{str(exc).strip().splitlines()[-1]}") from None
        backend_id, target_id = (getattr(cv2.dnn, n) for n in TARGETS[target])
        net.setPreferableBackend(backend_id)
        net.setPreferableTarget(target_id)
        self.net = net
        self._lock = threading.Lock()  # a cv2.dnn.Net must not run two forwards at once
        self.output_names = list(net.getUnconnectedOutLayersNames())
        self.width, self.height = width, height
        self.name = f"opencv-{target}"
        self.precision = "fp16" if target == "cuda-fp16" else "fp32"
        self.reason = reason or f"asked for OpenCV DNN on {target.upper()}"

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            self.net.setInput(np.ascontiguousarray(blob, np.float32))
            outputs = self.net.forward(self.output_names)
        n = blob.shape[0]
        # OpenCV drops the batch axis of region outputs when the batch is 1
        return [o.reshape(n, -1, o.shape[-1]) for o in outputs]


def check(target: str) -> tuple[bool, str]:
    """Whether OpenCV DNN runs on ``target`` here, and why not (the registry's check)."""
    try:
        check_opencv()
    except BackendUnavailable as exc:
        return False, str(exc)
    if target != "cpu" and target not in cuda_targets():
        return False, "this OpenCV build has no CUDA target"
    return True, ""


def build(target: str, bundle: ModelBundle, width: int, height: int, precision: str = "auto",
          calibrate: Sequence[Path] = ()) -> OpenCvBackend:
    """The registry's factory: OpenCV runs the precision of its target (cuda-fp16: fp16)."""
    return OpenCvBackend(bundle, width, height, target)


def auto_reason(target: str, backend: Backend, skipped: Mapping[str, str]) -> str:
    """Why ``auto`` took OpenCV on ``target``: a CUDA target, or on CPU nothing faster ran."""
    if target != "cpu":
        return f"auto: this OpenCV build has a {target.upper()} target"
    why_not_ort = skipped.get("onnxruntime", "the ONNX Runtime backend is not available")
    return f"auto: no CUDA target in this OpenCV build and {why_not_ort}"


def _engine(target: str, rank: int, aliases: tuple[str, ...], **more) -> Engine:
    return Engine(target, partial(build, target), partial(check, target), rank=rank,
                  label="OpenCV DNN", aliases=aliases, auto_reason=partial(auto_reason, target),
                  install="pip install 'opencv-python-headless>=4.10,<5'", **more)


register(_engine("cpu", 90, ("opencv", "opencv-cpu")),
         _engine("cuda", 20, ("opencv-cuda",)),
         _engine("cuda-fp16", 10, ("opencv-cuda-fp16",), precision_notes=(
             ("fp16", "OpenCV's half precision is --backend cuda-fp16"),)))
