"""The TensorFlow engine: the trainer's Keras model of a bundle, decoded to OpenCV's rows.

Runs on a GPU when TensorFlow sees one. TensorFlow itself is imported only when this engine is
built, so the detection CLI never loads it unless asked to.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.darknet.bundle import ModelBundle
from workbench.darknet.cfg import check_supported
from workbench.darknet.weights import read_weights
from workbench.detect.engines.base import Backend
from workbench.detect.engines.registry import Engine, register
from workbench.errors import ModelError
from workbench.network.darknet_io import load_darknet_weights
from workbench.network.keras_model import build_model, decode_outputs, heads_info, run_heads
from workbench.tf_runtime import import_tensorflow


def _gpus(tf: Any) -> list[Any]:
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            # share the GPU with OpenCV/ONNX Runtime instead of taking all its memory up front
            tf.config.experimental.set_memory_growth(gpu, True)
        except (RuntimeError, ValueError):
            pass  # already initialized by an earlier model in this process
    return gpus


class TensorFlowBackend(Backend):
    """The bundle's network as a Keras model, called inside a ``tf.function``."""

    def __init__(self, bundle: ModelBundle, width: int = 416, height: int = 416,
                 reason: str = "") -> None:
        tf = import_tensorflow(purpose="the tensorflow backend")
        if width % 32 or height % 32 or width <= 0 or height <= 0:
            raise ModelError(f"input size must be positive multiples of 32, got {width}x{height}")
        cfg = bundle.read_cfg()
        check_supported(cfg)
        weights = read_weights(bundle.weights, cfg, allow_partial=False)
        gpus = _gpus(tf)
        self.width, self.height = width, height
        self.name = "tensorflow-gpu" if gpus else "tensorflow-cpu"
        self.reason = reason or (
            f"TensorFlow sees {len(gpus)} GPU(s)" if gpus
            else "TensorFlow sees no GPU: runs on the CPU")
        self.model = build_model(cfg, width, height)
        load_darknet_weights(self.model, cfg, weights)
        heads = heads_info(cfg)
        model = self.model

        @tf.function(input_signature=[tf.TensorSpec([None, 3, height, width], tf.float32)])
        def run(blob: Any) -> list[Any]:
            raw = run_heads(model, tf.transpose(blob, [0, 2, 3, 1]))
            return decode_outputs(raw, heads, width, height)

        self._run = run

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        """(N, 3, height, width) RGB in [0, 1] -> one (N, rows, 5+C) array per [yolo] head."""
        blob = np.asarray(blob, np.float32)
        if blob.ndim != 4 or blob.shape[1:] != (3, self.height, self.width):
            raise ModelError(f"blob of shape {blob.shape} for a {self.width}x{self.height} "
                             "network (expected N, 3, height, width)")
        return [out.numpy() for out in self._run(blob)]


def check() -> tuple[bool, str]:
    """Whether TensorFlow is installed (the registry's check; it is not imported)."""
    if importlib.util.find_spec("tensorflow") is None:
        return False, "TensorFlow is not installed (the train extra)"
    return True, ""


def build(bundle: ModelBundle, width: int, height: int, precision: str = "auto",
          calibrate: Sequence[Path] = ()) -> TensorFlowBackend:
    """The registry's factory (fp32 only)."""
    return TensorFlowBackend(bundle, width, height)


register(Engine("tensorflow", build, check, label="TensorFlow", aliases=("tensorflow-cpu",),
                install="the train extra: pip install 'detection-workbench[train]'"))
