"""Darknet weights into a Keras model built by :func:`workbench.network.keras_model.build_model`, and back.

Darknet kernels are ``[out][in][kh][kw]``, Keras ``[kh][kw][in][out]``. Batch norm: darknet
stores beta (as the bias), gamma, mean, variance; Keras wants gamma, beta, mean, variance.
OpenCV normalizes with ``sqrt(variance + 1e-6)``; a model built with another epsilon gets the
difference folded into the variance on the way in and out, so the exported files still give the
Keras numbers through cv2.dnn. With the default epsilon (1e-6) nothing is folded and a round
trip is byte-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.darknet.bundle import ModelBundle, write_bundle
from workbench.darknet.cfg import DarknetCfg
from workbench.darknet.weights import ConvWeights, DarknetWeights, conv_layer_sizes
from workbench.errors import ModelError
from workbench.network.keras_model import OPENCV_BN_EPSILON


def _layer(model: Any, name: str) -> Any:
    try:
        return model.get_layer(name)
    except ValueError:
        raise ModelError(f"the Keras model has no layer {name!r}: was it built from this cfg?") \
            from None


def load_darknet_weights(model: Any, cfg: DarknetCfg, weights: DarknetWeights) -> int:
    """Copy every layer ``weights`` covers into ``model``; returns how many layers were loaded.

    A partial file (the first N convolutions, e.g. darknet53.conv.74) loads what it has; the
    layers it does not cover (the heads, for new classes) keep their fresh initialization.
    """
    loaded = 0
    for i, out, bn, cin, size in conv_layer_sizes(cfg):
        w = weights.layers.get(i)
        if w is None:
            continue
        expected = (out, cin, size, size)
        if tuple(w.kernel.shape) != expected or w.batch_normalized != bn:
            raise ModelError(f"layer {i}: weights hold a kernel {tuple(w.kernel.shape)}"
                             f"{' with' if w.batch_normalized else ' without'} batch norm, the "
                             f"cfg needs {expected}{' with' if bn else ' without'} batch norm")
        conv = _layer(model, f"conv_{i}")
        kernel = np.transpose(w.kernel, (2, 3, 1, 0))
        stats = w.batch_norm()
        if stats is not None:
            scales, mean, variance = stats
            conv.set_weights([kernel])
            norm = _layer(model, f"bn_{i}")
            if norm.epsilon != OPENCV_BN_EPSILON:
                variance = np.maximum(
                    variance.astype(np.float64) + OPENCV_BN_EPSILON - norm.epsilon, 0.0
                ).astype(np.float32)
            norm.set_weights([scales, w.biases, mean, variance])
        else:
            conv.set_weights([kernel, w.biases])
        loaded += 1
    return loaded


def model_to_darknet_weights(model: Any, cfg: DarknetCfg, *,
                             header: DarknetWeights | None = None,
                             progress=None) -> DarknetWeights:
    """Every convolution of ``model`` in darknet's layout (header copied from ``header``);
    ``progress(done, total)`` after each layer."""
    layers: dict[int, ConvWeights] = {}
    convs = list(conv_layer_sizes(cfg))
    for i, _out, bn, _cin, _size in convs:
        if progress is not None:
            progress(len(layers), len(convs))
        params = _layer(model, f"conv_{i}").get_weights()
        kernel = np.ascontiguousarray(np.transpose(params[0], (3, 2, 0, 1)), dtype=np.float32)
        if bn:
            norm = _layer(model, f"bn_{i}")
            gamma, beta, mean, variance = (np.asarray(p, np.float32) for p in norm.get_weights())
            if norm.epsilon != OPENCV_BN_EPSILON:
                variance = np.maximum(
                    variance.astype(np.float64) + norm.epsilon - OPENCV_BN_EPSILON, 0.0
                ).astype(np.float32)
            layers[i] = ConvWeights(beta, kernel, gamma, mean, variance)
        else:
            layers[i] = ConvWeights(np.asarray(params[1], np.float32), kernel)
    if progress is not None:
        progress(len(layers), len(convs))
    if header is None:
        return DarknetWeights(layers, 0, 2, 0, 0)
    return DarknetWeights(layers, header.major, header.minor, header.revision, header.seen)


def export_bundle(model: Any, cfg: DarknetCfg, class_names: list[str], folder: str | Path,
                  name: str = "model", progress=None) -> ModelBundle:
    """Write ``name.cfg``/``.weights``/``.names`` to ``folder``: a bundle OpenCV runs.

    The cfg's [net] size is set to the model's input size when the model has a fixed one.
    """
    if len(class_names) != cfg.classes:
        raise ModelError(f"{len(class_names)} class names for a cfg with classes={cfg.classes}")
    out_cfg = cfg.copy()
    _, h, w, _ = model.inputs[0].shape
    if h is not None and w is not None:
        out_cfg.net.options["width"], out_cfg.net.options["height"] = str(w), str(h)
    weights = model_to_darknet_weights(model, cfg, progress=progress)
    return write_bundle(folder, name, out_cfg, weights, class_names)
