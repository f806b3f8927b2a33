"""Weights -> Keras -> exported bundle: cv2.dnn gives the Keras numbers, bytes round-trip."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
cv2 = pytest.importorskip("cv2")

from model_factory import random_bundle, random_cfg  # noqa: E402

from workbench.darknet.cfg import write_cfg  # noqa: E402
from workbench.darknet.weights import (  # noqa: E402
    DarknetWeights,
    random_weights,
    read_weights,
    truncate,
    weights_to_bytes,
)
from workbench.errors import ModelError  # noqa: E402
from workbench.network.darknet_io import (  # noqa: E402
    export_bundle,
    load_darknet_weights,
    model_to_darknet_weights,
)
from workbench.network.keras_model import build_model, decode_outputs, heads_info  # noqa: E402

SIZE = 160


def _opencv_rows(bundle, folder: Path, image: np.ndarray) -> list[np.ndarray]:
    """cv2.dnn forward of the exported files, with a cfg copy whose [yolo] thresh is 0."""
    cfg = bundle.read_cfg()
    for i in cfg.yolo_layers():
        cfg.layers[i].options["thresh"] = "0"
    write_cfg(cfg, folder / "opencv.cfg")
    net = cv2.dnn.readNetFromDarknet(str(folder / "opencv.cfg"), str(bundle.weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setInput(np.ascontiguousarray(image.transpose(0, 3, 1, 2)))
    return list(net.forward(net.getUnconnectedOutLayersNames()))


def _keras_rows(model, cfg, image: np.ndarray) -> list[np.ndarray]:
    raw = model(image, training=False)
    return decode_outputs([np.asarray(r) for r in raw], heads_info(cfg), SIZE, SIZE)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((1, SIZE, SIZE, 3)).astype(np.float32)


@pytest.mark.parametrize("template", ["yolov3-tiny", "yolov3-reduced"])
@pytest.mark.parametrize("epsilon", [1e-6, 1e-3])
def test_exported_bundle_through_opencv_gives_the_keras_outputs(tmp_path, template, epsilon):
    cfg = random_cfg(template, 3, SIZE)
    # 0.8 keeps the random heads' raw w/h in the range trained models give (|raw| < ~2), so
    # exp() does not magnify float32 rounding beyond 1e-4
    weights = random_weights(cfg, seed=7, scale=0.8)
    model = build_model(cfg, batch_norm_epsilon=epsilon)
    assert load_darknet_weights(model, cfg, weights) == len(weights.layers)
    bundle = export_bundle(model, cfg, ["a", "b", "c"], tmp_path / "out")
    image = _image()
    ours = _keras_rows(model, cfg, image)
    theirs = _opencv_rows(bundle, tmp_path, image)
    assert len(ours) == len(theirs) == len(cfg.yolo_layers())
    for k, cv in zip(ours, theirs, strict=True):
        assert cv.shape == k[0].shape
        assert np.abs(cv - k[0]).max() <= 1e-4
        assert np.abs(k[0][:, 4]).max() > 0.05  # not a trivially zero output


@pytest.mark.parametrize("scale_xy", ["1.05", "2"])
def test_scale_xy_decodes_as_opencv_does(tmp_path, scale_xy):
    """A model trained with --scale-xy exports a cfg whose [yolo] scale_x_y OpenCV applies:
    the Keras decode (the TF engine, training's IoU terms) gives the same centres."""
    cfg = random_cfg("yolov3-tiny", 3, SIZE)
    for i in cfg.yolo_layers():
        cfg.layers[i].options["scale_x_y"] = scale_xy
    model = build_model(cfg)
    load_darknet_weights(model, cfg, random_weights(cfg, seed=7, scale=0.8))
    bundle = export_bundle(model, cfg, ["a", "b", "c"], tmp_path / "out")
    image = _image()
    ours = _keras_rows(model, cfg, image)
    raw = [np.asarray(r) for r in model(image, training=False)]
    unscaled = decode_outputs(raw, [dataclasses.replace(h, scale_xy=1.0)
                                    for h in heads_info(cfg)], SIZE, SIZE)
    for k, cv, plain in zip(ours, _opencv_rows(bundle, tmp_path, image), unscaled,
                            strict=True):
        assert np.abs(cv - k[0]).max() <= 1e-4
        assert np.abs(plain[0][:, :2] - k[0][:, :2]).max() > 1e-3  # the scale is applied


def test_parity_with_large_activations(tmp_path):
    """Full-scale random weights drive heads to |raw| ~ 15: logistic columns stay within 1e-4,
    the exp() columns within float32 relative rounding."""
    bundle = random_bundle(tmp_path / "src", "yolov3-reduced", 3, SIZE, seed=2)
    cfg = bundle.read_cfg()
    model = build_model(cfg)
    load_darknet_weights(model, cfg, read_weights(bundle.weights, cfg))
    image = _image(1)
    for k, cv in zip(_keras_rows(model, cfg, image), _opencv_rows(bundle, tmp_path, image),
                     strict=True):
        logistic = [0, 1] + list(range(4, cv.shape[1]))
        assert np.abs(cv[:, logistic] - k[0][:, logistic]).max() <= 1e-4
        np.testing.assert_allclose(cv[:, 2:4], k[0][:, 2:4], rtol=2e-4, atol=1e-4)


@pytest.mark.parametrize("template", ["yolov3-tiny", "yolov3-reduced"])
def test_darknet_weights_round_trip_byte_identical(tmp_path, template):
    bundle = random_bundle(tmp_path, template, 3, SIZE, seed=5)
    cfg = bundle.read_cfg()
    original = bundle.weights.read_bytes()
    weights = read_weights(bundle.weights, cfg)
    model = build_model(cfg)
    load_darknet_weights(model, cfg, weights)
    assert weights_to_bytes(model_to_darknet_weights(model, cfg)) == original
    exported = export_bundle(model, cfg, bundle.class_names(), tmp_path / "again")
    assert exported.weights.read_bytes() == original
    assert exported.class_names() == bundle.class_names()
    # an AlexeyAB header (0.2.5, seen as int64) is carried over when given
    header = DarknetWeights({}, 0, 2, 5, 123456)
    again = model_to_darknet_weights(model, cfg, header=header)
    assert weights_to_bytes(again)[20:] == original[20:]
    assert (again.major, again.minor, again.revision, again.seen) == (0, 2, 5, 123456)


def test_partial_weights_load_the_backbone_and_leave_the_heads_fresh(tmp_path):
    cfg = random_cfg("yolov3-tiny", 3, SIZE)
    full = random_weights(cfg, seed=3)
    partial = truncate(full, 15)  # like yolov3-tiny.conv.15
    path = tmp_path / "tiny.conv.15"
    path.write_bytes(weights_to_bytes(partial))
    from_file = read_weights(path, cfg)
    model = build_model(cfg)
    fresh = {i: model.get_layer(f"conv_{i}").get_weights()[0].copy() for i in (15, 22)}
    assert load_darknet_weights(model, cfg, from_file) == len(partial.layers) == 9
    exported = model_to_darknet_weights(model, cfg)
    for i in partial.layers:  # the covered layers are exactly the file's
        assert np.array_equal(exported.layers[i].kernel, full.layers[i].kernel)
        assert np.array_equal(exported.layers[i].variance, full.layers[i].variance)
    for i, kernel in fresh.items():  # the rest keep their fresh initialization
        assert np.array_equal(model.get_layer(f"conv_{i}").get_weights()[0], kernel)
        assert not np.array_equal(exported.layers[i].kernel, full.layers[i].kernel)


def test_weights_for_another_cfg_are_refused(tmp_path):
    cfg3 = random_cfg("yolov3-tiny", 3, SIZE)
    cfg5 = random_cfg("yolov3-tiny", 5, SIZE)
    model = build_model(cfg5)
    with pytest.raises(ModelError, match="layer 15"):
        load_darknet_weights(model, cfg5, random_weights(cfg3))
    with pytest.raises(ModelError, match="class names"):
        export_bundle(model, cfg5, ["only", "two"], tmp_path)
