"""Darknet .weights: headers 0.1 / 0.2, byte-identical rewrite, partial files, mismatch errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from model_factory import random_cfg

from workbench.darknet.weights import (
    DarknetWeights,
    conv_layer_sizes,
    floats_needed,
    random_weights,
    read_weights,
    truncate,
    weights_to_bytes,
    write_weights,
)
from workbench.errors import ModelError


@pytest.fixture(scope="module")
def cfg():
    return random_cfg("yolov3-reduced", classes=2, size=64)


def test_header_02_has_64_bit_seen_and_rewrite_is_byte_identical(cfg, tmp_path):
    w = random_weights(cfg, seed=1)
    w.major, w.minor, w.revision, w.seen = 0, 2, 5, 2**40 + 7  # needs 64 bits
    path = tmp_path / "a.weights"
    write_weights(w, path)
    data = path.read_bytes()
    assert len(data) == 20 + 4 * floats_needed(cfg)
    assert np.frombuffer(data[12:20], "<i8")[0] == 2**40 + 7
    back = read_weights(path, cfg)
    assert (back.major, back.minor, back.revision, back.seen) == (0, 2, 5, 2**40 + 7)
    write_weights(back, tmp_path / "b.weights")
    assert (tmp_path / "b.weights").read_bytes() == data


def test_header_01_has_32_bit_seen(cfg, tmp_path):
    w = random_weights(cfg, seed=2)
    w.major, w.minor, w.revision, w.seen = 0, 1, 0, 123456
    path = tmp_path / "old.weights"
    write_weights(w, path)
    data = path.read_bytes()
    assert len(data) == 16 + 4 * floats_needed(cfg)
    back = read_weights(path, cfg)
    assert (back.minor, back.seen) == (1, 123456)
    assert weights_to_bytes(back) == data
    for i, layer in w.layers.items():
        np.testing.assert_array_equal(back.layers[i].kernel, layer.kernel)
        np.testing.assert_array_equal(back.layers[i].biases, layer.biases)


def test_layout_is_darknets_bias_bn_then_kernel(tmp_path):
    cfg = random_cfg("yolov3-tiny", classes=1, size=32)
    w = random_weights(cfg, seed=3)
    data = weights_to_bytes(w)
    first = w.layers[0]  # 16 filters, BN, 3 inputs, 3x3
    body = np.frombuffer(data[20:], "<f4")
    np.testing.assert_array_equal(body[:16], first.biases)
    np.testing.assert_array_equal(body[16:32], first.scales)
    np.testing.assert_array_equal(body[32:48], first.mean)
    np.testing.assert_array_equal(body[48:64], first.variance)
    np.testing.assert_array_equal(body[64:64 + 16 * 27], first.kernel.reshape(-1))
    # a head convolution has no BN: biases then kernel
    i, out, bn, cin, size = conv_layer_sizes(cfg)[-1]
    assert not bn and w.layers[i].scales is None and w.layers[i].kernel.shape == (out, cin, 1, 1)


def test_partial_file_holds_the_first_n_layers(cfg, tmp_path):
    full = random_weights(cfg, seed=4)
    full.seen = 999
    part = truncate(full, 10)
    assert part.seen == 0 and sorted(part.layers) == [i for i in sorted(full.layers) if i < 10]
    path = tmp_path / "reduced.conv.10"
    write_weights(part, path)
    back = read_weights(path, cfg)
    assert sorted(back.layers) == sorted(part.layers)
    np.testing.assert_array_equal(back.layers[9].kernel, full.layers[9].kernel)
    with pytest.raises(ModelError, match=r"cfg needs \d+ floats, file has \d+"):
        read_weights(path, cfg, allow_partial=False)


@pytest.mark.parametrize("cut", [4, 1000])
def test_file_that_does_not_fit_says_how_many_floats(cfg, tmp_path, cut):
    data = weights_to_bytes(random_weights(cfg))
    path = tmp_path / "cut.weights"
    path.write_bytes(data[:-cut])
    have = (len(data) - cut - 20) // 4
    with pytest.raises(ModelError, match=f"cfg needs {floats_needed(cfg)} floats, file has {have}"):
        read_weights(path, cfg)


def test_file_too_long_and_header_errors(cfg, tmp_path):
    data = weights_to_bytes(random_weights(cfg))
    path = tmp_path / "long.weights"
    path.write_bytes(data + b"\0\0\0\0")
    with pytest.raises(ModelError, match=f"file has {floats_needed(cfg) + 1}"):
        read_weights(path, cfg)
    path.write_bytes(b"\1\2")
    with pytest.raises(ModelError, match="too short"):
        read_weights(path, cfg)
    path.write_bytes(np.array([7000, 1, 0, 0], "<i4").tobytes())
    with pytest.raises(ModelError, match="not a darknet weights file"):
        read_weights(path, cfg)
    with pytest.raises(ModelError, match="cannot read weights"):
        read_weights(tmp_path / "missing.weights", cfg)


def test_opencv_reads_what_we_write_for_both_headers(tmp_path):
    from workbench.darknet.cfg import write_cfg

    cfg = random_cfg("yolov3-tiny", classes=2, size=64)
    write_cfg(cfg, tmp_path / "m.cfg")
    w = random_weights(cfg, seed=5)
    outs = []
    for minor in (1, 2):
        w.minor = minor
        write_weights(w, tmp_path / f"m{minor}.weights")
        net = cv2.dnn.readNetFromDarknet(str(tmp_path / "m.cfg"), str(tmp_path / f"m{minor}.weights"))
        net.setInput(np.full((1, 3, 64, 64), 0.5, np.float32))
        outs.append(net.forward(net.getUnconnectedOutLayersNames())[0])
    np.testing.assert_array_equal(outs[0], outs[1])


def test_empty_weights_object_writes_only_a_header():
    assert len(weights_to_bytes(DarknetWeights())) == 20


@pytest.mark.parametrize("length", [0, 3, 5, 7])
def test_a_weights_file_shorter_than_its_version_has_no_header(tmp_path, length):
    """np.frombuffer raised ValueError on 5 bytes: a traceback in every caller that catches
    OSError only (model checks, OpenCV's size check, weights fetch)."""
    from workbench.darknet.weights import header_length

    path = tmp_path / "short.weights"
    path.write_bytes(b"\x00" * length)
    assert header_length(path) == (length, None)
