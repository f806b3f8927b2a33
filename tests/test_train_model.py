"""Keras models built from darknet cfgs: shapes, layer names, heads, freezing, decoding."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from model_factory import TEMPLATES, random_cfg  # noqa: E402

from workbench.darknet.cfg import customize, layer_shapes, parse_cfg, read_cfg  # noqa: E402
from workbench.darknet.weights import floats_needed  # noqa: E402
from workbench.errors import ModelError  # noqa: E402
from workbench.network.keras_model import (  # noqa: E402
    build_model,
    decode_outputs,
    heads_info,
    run_heads,
    set_trainable_prefix,
)


@pytest.mark.parametrize("template, classes, size, grids", [
    ("yolov3-tiny", 80, 416, [13, 26]),
    ("yolov3-tiny", 3, 320, [10, 20]),
    ("yolov3", 80, 416, [13, 26, 52]),
    ("yolov3", 5, 320, [10, 20, 40]),
    ("yolov3-reduced", 4, 160, [5, 10, 20]),
])
def test_build_model_output_shapes(template, classes, size, grids):
    cfg = customize(read_cfg(TEMPLATES[template]), classes, size, size)
    model = build_model(cfg)
    assert tuple(model.inputs[0].shape) == (None, size, size, 3)
    assert [tuple(o.shape) for o in model.outputs] == [
        (None, g, g, 3 * (5 + classes)) for g in grids]
    # every darknet convolution is there under its darknet number, with its batch norm
    for i, s in enumerate(cfg.layers):
        if s.kind == "convolutional":
            assert model.get_layer(f"conv_{i}").filters == s.get_int("filters")
            assert any(layer.name == f"bn_{i}" for layer in model.layers) == \
                bool(s.get_int("batch_normalize", 0))
    # one Keras number per darknet float: kernels, biases and the four BN vectors
    assert sum(int(np.prod(w.shape)) for w in model.weights) == floats_needed(cfg)
    if template == "yolov3" and classes == 80:
        assert floats_needed(cfg) == 62_001_757  # the official yolov3.weights body


def test_layer_shapes_agree_with_the_cfg_reader():
    cfg = random_cfg("yolov3-reduced", 3, 160)
    model = build_model(cfg)
    shapes = layer_shapes(cfg)
    for i, s in enumerate(cfg.layers):
        if s.kind in ("convolutional", "maxpool", "upsample", "route", "shortcut"):
            name = {"convolutional": "conv"}.get(s.kind, s.kind)
            out = model.get_layer(f"{name}_{i}").output.shape
            assert tuple(out[1:]) == (shapes[i].height, shapes[i].width, shapes[i].channels)


def test_non_square_input_size():
    cfg = random_cfg("yolov3-tiny", 2, 160)
    model = build_model(cfg, width=320, height=192)
    assert [tuple(o.shape) for o in model.outputs] == [(None, 6, 10, 21), (None, 12, 20, 21)]


def test_heads_info_reads_masks_anchors_and_thresholds():
    cfg = random_cfg("yolov3-tiny", 3, 416)
    heads = heads_info(cfg)
    assert [h.layer_index for h in heads] == cfg.yolo_layers()
    assert [h.mask for h in heads] == [(3, 4, 5), (0, 1, 2)]
    assert heads[0].anchors == ((81, 82), (135, 169), (344, 319))
    assert heads[1].anchors == ((10, 14), (23, 27), (37, 58))
    assert len(heads[0].all_anchors) == 6
    assert [h.stride for h in heads] == [32, 16]
    assert all(h.classes == 3 and h.ignore_thresh == 0.7 and h.truth_thresh == 1 for h in heads)


def test_set_trainable_prefix_freezes_the_backbone_only():
    cfg = random_cfg("yolov3-tiny", 3, 160)
    model = build_model(cfg)
    total = len(model.trainable_weights)
    changed = set_trainable_prefix(model, cfg, 13, False)
    assert changed > 0
    assert not model.get_layer("conv_12").trainable and not model.get_layer("bn_0").trainable
    assert model.get_layer("conv_13").trainable and model.get_layer("conv_22").trainable
    frozen = total - len(model.trainable_weights)
    # conv kernels + BN gamma/beta of layers 0..12 (7 convolutions between 6 maxpools)
    assert frozen == 7 * 3
    set_trainable_prefix(model, cfg, 13, True)
    assert len(model.trainable_weights) == total


def test_unsupported_maxpool_is_a_clear_error():
    text = ("[net]\nwidth=64\nheight=64\nchannels=3\n[convolutional]\nfilters=8\nsize=3\n"
            "stride=1\npad=1\nactivation=leaky\n[maxpool]\nsize=3\nstride=2\npadding=0\n"
            "[convolutional]\nfilters=18\nsize=1\nstride=1\npad=1\nactivation=linear\n"
            "[yolo]\nmask=0,1,2\nanchors=10,13,16,30,33,23\nclasses=1\nnum=3\n")
    cfg = parse_cfg(text)
    with pytest.raises(ModelError, match=r"layer 1 \[maxpool\]"):
        build_model(cfg)


def test_decode_outputs_numpy_and_tensorflow_agree_with_a_hand_computed_row():
    cfg = random_cfg("yolov3-tiny", 2, 64)
    heads = heads_info(cfg)
    rng = np.random.default_rng(3)
    raw = [rng.normal(0, 1, (2, 2, 2, 21)).astype(np.float32),
           rng.normal(0, 1, (2, 4, 4, 21)).astype(np.float32)]
    rows_np = decode_outputs(raw, heads, 64, 64)
    rows_tf = decode_outputs([tf.constant(r) for r in raw], heads, 64, 64)
    for a, b in zip(rows_np, rows_tf, strict=True):
        assert a.shape == tuple(b.shape)
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-6, atol=1e-6)
    # image 1, head 1, cell y=2 x=3, anchor 1 -> row (2*4 + 3)*3 + 1
    p = raw[1][1, 2, 3].reshape(3, 7)[1]
    sig = 1 / (1 + np.exp(-p))
    aw, ah = heads[1].anchors[1]
    expected = [(3 + sig[0]) / 4, (2 + sig[1]) / 4, np.exp(p[2]) * aw / 64,
                np.exp(p[3]) * ah / 64, sig[4], sig[4] * sig[5], sig[4] * sig[6]]
    np.testing.assert_allclose(rows_np[1][1, (2 * 4 + 3) * 3 + 1], expected, rtol=1e-6)


def test_fresh_heads_start_from_the_objectness_prior():
    from workbench.network.keras_model import OBJECTNESS_PRIOR, init_head_priors

    cfg = random_cfg("yolov3-tiny", classes=3, size=96)
    model = build_model(cfg)
    heads = heads_info(cfg)
    x = np.random.default_rng(0).random((1, 96, 96, 3), dtype=np.float32)

    def objectness():
        rows = decode_outputs([o.numpy() for o in run_heads(model, x)], heads, 96, 96)
        return np.concatenate([r[0, :, 4] for r in rows])

    assert abs(np.median(objectness()) - 0.5) < 0.1  # Keras' zero bias: 0.5 everywhere
    assert init_head_priors(model, cfg, heads) == 2
    after = objectness()
    assert np.median(after) == pytest.approx(OBJECTNESS_PRIOR, rel=0.5)
