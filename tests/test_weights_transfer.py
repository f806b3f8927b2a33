"""Start weights as users have them: a full file for another class count loads every layer
whose shape fits (backbone and neck), the heads start fresh; `workbench weights partial`."""

from __future__ import annotations

import numpy as np
import pytest
from model_factory import random_cfg

from workbench.cli import main
from workbench.darknet.cfg import format_cfg
from workbench.darknet.weights import (
    conv_layer_sizes,
    random_weights,
    read_weights,
    read_weights_for_transfer,
    source_classes,
    transfer_layouts,
    truncate,
    weights_to_bytes,
    write_weights,
)
from workbench.errors import ModelError


def _same(a, b) -> None:
    np.testing.assert_array_equal(a.kernel, b.kernel)
    np.testing.assert_array_equal(a.biases, b.biases)
    if a.batch_normalized:
        for x, y in ((a.scales, b.scales), (a.mean, b.mean), (a.variance, b.variance)):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize(("template", "source", "target", "heads"),
                         [("yolov3-tiny", 80, 3, 2), ("yolov3-tiny", 80, 1, 2),
                          ("yolov3-reduced", 2, 5, 3)])
def test_full_file_for_another_class_count_loads_all_but_the_heads(tmp_path, template, source,
                                                                   target, heads):
    coco = random_cfg(template, classes=source, size=64)
    full = random_weights(coco, seed=4)
    write_weights(full, tmp_path / "full.weights")
    cfg = random_cfg(template, classes=target, size=64)
    with pytest.raises(ModelError, match="cfg needs"):  # the plain reader refuses it
        read_weights(tmp_path / "full.weights", cfg)
    assert source_classes(tmp_path / "full.weights", cfg) == source
    report = read_weights_for_transfer(tmp_path / "full.weights", cfg)
    n_conv = len(conv_layer_sizes(cfg))
    assert len(report.fresh_heads) == heads and report.source_classes == source
    assert sorted(report.weights.layers) == sorted(set(full.layers) - set(report.fresh_heads))
    assert max(report.weights.layers) > min(report.fresh_heads)  # the neck after head 1 loads
    for i, w in report.weights.layers.items():
        _same(w, full.layers[i])
    assert report.summary(target) == (f"loaded {n_conv - heads} of {n_conv} conv layers; "
                                      f"{heads} [yolo] heads start fresh: {source} -> {target} "
                                      "classes")


def test_a_file_for_the_same_cfg_or_a_partial_one_loads_as_before(tmp_path):
    cfg = random_cfg("yolov3-tiny", classes=3, size=64)
    full = random_weights(cfg, seed=1)
    write_weights(full, tmp_path / "same.weights")
    report = read_weights_for_transfer(tmp_path / "same.weights", cfg)
    assert not report.fresh_heads and len(report.weights.layers) == 13
    assert report.summary(3) == "loaded 13 of 13 conv layers"
    write_weights(truncate(full, 15), tmp_path / "conv.15")
    report = read_weights_for_transfer(tmp_path / "conv.15", cfg)
    assert len(report.weights.layers) == 9 and report.partial


def test_a_file_no_class_count_explains_is_still_refused(tmp_path):
    cfg = random_cfg("yolov3-tiny", classes=3, size=64)
    data = weights_to_bytes(random_weights(cfg, seed=1))
    (tmp_path / "odd.weights").write_bytes(data + b"\0" * 4 * 7)  # 7 stray floats
    with pytest.raises(ModelError, match="cfg needs"):
        read_weights_for_transfer(tmp_path / "odd.weights", cfg)


# yolov3-tiny-3l's 16 convolutions: yolov3-tiny's 13 (heads at layers 15 and 22), then the
# stride-8 branch's 1x1 and 3x3 convolutions and its head (layers 25, 28, 29)
TINY_HEADS, BRANCH = [15, 22], [25, 28, 29]


@pytest.mark.parametrize(("source", "target"), [(80, 3), (80, 1), (2, 5)])
def test_a_tiny_file_loads_into_tiny_3l_but_its_heads(tmp_path, source, target):
    tiny = random_cfg("yolov3-tiny", classes=source, size=64)
    write_weights(random_weights(tiny, seed=5), tmp_path / "tiny.weights")
    file = read_weights(tmp_path / "tiny.weights", tiny)  # what the file holds, per layer
    cfg = random_cfg("yolov3-tiny-3l", classes=target, size=64)
    with pytest.raises(ModelError, match="cfg needs"):  # the plain reader refuses it
        read_weights(tmp_path / "tiny.weights", cfg)
    assert transfer_layouts(tmp_path / "tiny.weights", cfg) == [(source, 13)]
    assert source_classes(tmp_path / "tiny.weights", cfg) is None  # not a full 3l file
    report = read_weights_for_transfer(tmp_path / "tiny.weights", cfg)
    assert report.fresh_heads == TINY_HEADS and report.missing == BRANCH and report.partial
    assert sorted(report.weights.layers) == sorted(set(file.layers) - set(TINY_HEADS))
    shapes = {i: (o, c, k, k) for i, o, _, c, k in conv_layer_sizes(cfg)}
    for i, w in report.weights.layers.items():
        _same(w, file.layers[i])
        assert w.kernel.shape == shapes[i]
    assert report.summary(target) == (f"loaded 11 of 16 conv layers; 2 [yolo] heads start "
                                      f"fresh: {source} -> {target} classes; 3 conv layers "
                                      "the file lacks start fresh (from layer 25)")


def test_a_tiny_file_for_the_same_classes_is_a_partial_tiny_3l_file(tmp_path):
    tiny = random_cfg("yolov3-tiny", classes=3, size=64)
    write_weights(random_weights(tiny, seed=6), tmp_path / "tiny.weights")
    file = read_weights(tmp_path / "tiny.weights", tiny)
    report = read_weights_for_transfer(tmp_path / "tiny.weights",
                                       random_cfg("yolov3-tiny-3l", classes=3, size=64))
    assert sorted(report.weights.layers) == sorted(file.layers) and not report.fresh_heads
    for i, w in report.weights.layers.items():
        _same(w, file.layers[i])
    assert report.missing == BRANCH
    assert report.summary(3) == ("loaded 13 of 16 conv layers; 3 conv layers the file lacks "
                                 "start fresh (from layer 25)")


def test_a_tiny_file_that_fits_nothing_or_reads_implausibly_is_refused(tmp_path):
    tiny = random_cfg("yolov3-tiny", classes=80, size=64)
    cfg = random_cfg("yolov3-tiny-3l", classes=3, size=64)
    weights = random_weights(tiny, seed=7)
    (tmp_path / "odd.weights").write_bytes(weights_to_bytes(weights) + b"\0" * 4 * 7)
    with pytest.raises(ModelError, match="cfg needs"):
        read_weights_for_transfer(tmp_path / "odd.weights", cfg)
    # the right size, but a negative rolling variance: no darknet file has one, so the layout
    # that explains the size is not trusted
    weights.layers[0].variance[0] = -1.0
    write_weights(weights, tmp_path / "negative.weights")
    with pytest.raises(ModelError, match="cfg needs"):
        read_weights_for_transfer(tmp_path / "negative.weights", cfg)


def test_a_3l_file_does_not_load_into_tiny(tmp_path):
    # the other way round the file is longer than any reading of tiny's convolutions
    three = random_cfg("yolov3-tiny-3l", classes=80, size=64)
    write_weights(random_weights(three, seed=8), tmp_path / "3l.weights")
    with pytest.raises(ModelError, match="cfg needs"):
        read_weights_for_transfer(tmp_path / "3l.weights", random_cfg("yolov3-tiny", 3, 64))


def test_weights_partial_writes_what_darknet_partial_writes(tmp_path, capsys):
    coco = random_cfg("yolov3-tiny", classes=80, size=64)
    (tmp_path / "coco.cfg").write_text(format_cfg(coco))
    full = random_weights(coco, seed=2)
    full.seen = 123456
    write_weights(full, tmp_path / "coco.weights")
    out = tmp_path / "yolov3-tiny.conv.15"
    assert main(["weights", "partial", str(tmp_path / "coco.cfg"), str(tmp_path / "coco.weights"),
                 "15", "--out", str(out)]) == 0
    assert "9 conv layers" in capsys.readouterr().out
    # darknet's partial: header kept with seen reset to 0, the first layers' floats in order
    expected = weights_to_bytes(truncate(read_weights(tmp_path / "coco.weights", coco), 15))
    assert out.read_bytes() == expected
    back = read_weights(out, coco, allow_partial=True)
    assert sorted(back.layers) == [i for i, *_ in conv_layer_sizes(coco) if i < 15]
    # and a cfg with another class count takes it as a start file
    assert len(read_weights_for_transfer(out, random_cfg("yolov3-tiny", 1, 64)).weights.layers) == 9


def test_weights_partial_bad_input_is_one_line_exit_2(tmp_path, capsys):
    coco = random_cfg("yolov3-tiny", classes=80, size=64)
    (tmp_path / "coco.cfg").write_text(format_cfg(coco))
    write_weights(random_weights(coco, seed=2), tmp_path / "coco.weights")
    for n in ("0", "999"):
        code = main(["weights", "partial", str(tmp_path / "coco.cfg"),
                     str(tmp_path / "coco.weights"), n, "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert code == 2 and "N must lie between" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
