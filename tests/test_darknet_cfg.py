"""Darknet .cfg: parse, write, round trip, unsupported layers, customize, shapes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from model_factory import ROOT, TEMPLATES

from workbench.darknet.cfg import (
    check_supported,
    customize,
    format_cfg,
    layer_shapes,
    parse_cfg,
    read_cfg,
    write_cfg,
)
from workbench.darknet.weights import random_weights, write_weights
from workbench.errors import FormatError, ModelError


def as_tuples(cfg):
    return [(s.kind, s.options) for s in cfg.sections]


@pytest.mark.parametrize("name", ["yolov3", "yolov3-tiny", "yolov3-tiny-3l", "yolov3-reduced"])
def test_parse_write_round_trip(name, tmp_path):
    cfg = read_cfg(TEMPLATES[name])
    out = tmp_path / "copy.cfg"
    write_cfg(cfg, out)
    again = read_cfg(out)
    assert as_tuples(again) == as_tuples(cfg)
    assert format_cfg(again) == format_cfg(cfg)


def test_comments_blank_lines_and_repeated_sections():
    text = ("# a comment\n[net]\nwidth=64 # trailing comment\n; semicolon comment\n\n"
            "height = 32\n[convolutional]\nfilters=8\nactivation=leaky\n"
            "[convolutional]\nfilters=16\nactivation=linear\n[yolo]\nmask=0\n")
    cfg = parse_cfg(text)
    assert [s.kind for s in cfg.sections] == ["net", "convolutional", "convolutional", "yolo"]
    assert cfg.width == 64 and cfg.height == 32
    assert [s.get_int("filters") for s in cfg.layers[:2]] == [8, 16]
    assert cfg.layers[0].line == 7 and cfg.yolo_layers() == [2]


def test_yolov3_has_the_known_layer_count_and_head_shapes():
    cfg = read_cfg(ROOT / "darknet_cfg" / "yolov3.cfg")
    assert len(cfg.layers) == 107 and cfg.yolo_layers() == [82, 94, 106]
    shapes = layer_shapes(cfg)
    assert [(shapes[i].height, shapes[i].channels) for i in cfg.yolo_layers()] == [
        (13, 255), (26, 255), (52, 255)]


def test_tiny_stride_one_maxpool_keeps_13x13():
    cfg = read_cfg(TEMPLATES["yolov3-tiny"])
    shapes = layer_shapes(cfg)
    assert (shapes[10].height, shapes[11].height) == (13, 13)  # size=2 stride=1 maxpool


def test_every_training_template_is_a_supported_cfg():
    from workbench.bundled import template_cfg
    from workbench.train.settings import TEMPLATES as BUILT_IN

    for name in BUILT_IN:
        check_supported(read_cfg(template_cfg(name)))


def test_tiny_3l_is_tiny_plus_a_stride_8_head():
    """AlexeyAB's yolov3-tiny_3l.cfg: yolov3-tiny's 24 layers unchanged but the anchors, then
    [route] -3 (the stride-16 neck), 1x1 conv 128, upsample, [route] -1,6, 3x3 conv 128."""
    tiny, three = read_cfg(TEMPLATES["yolov3-tiny"]), read_cfg(TEMPLATES["yolov3-tiny-3l"])
    same = [(s.kind, {k: v for k, v in s.options.items() if k not in ("mask", "anchors", "num")})
            for s in tiny.layers]
    assert [(s.kind, {k: v for k, v in s.options.items() if k not in ("mask", "anchors", "num")})
            for s in three.layers[:24]] == same
    assert [s.kind for s in three.layers[24:]] == [
        "route", "convolutional", "upsample", "route", "convolutional", "convolutional", "yolo"]
    assert three.yolo_layers() == [16, 23, 30]
    assert [three.layers[i].get_ints("mask") for i in three.yolo_layers()] == [
        [6, 7, 8], [3, 4, 5], [0, 1, 2]]
    assert three.layers[30].get_ints("anchors") == [4, 7, 7, 15, 13, 25, 25, 42, 41, 67, 75,
                                                    94, 91, 162, 158, 205, 250, 332]
    shapes = layer_shapes(three)
    assert [(shapes[i].height, shapes[i].channels) for i in three.yolo_layers()] == [
        (13, 255), (26, 255), (52, 255)]
    assert (shapes[27].height, shapes[27].channels) == (52, 256)  # upsampled 128 + layer 6's 128


@pytest.mark.parametrize(("text", "message"), [
    ("[net]\n[convolutional]\nfilters\n", "expected key=value"),
    ("width=3\n[net]\n", "option before the first"),
    ("[net\n", "bad section header"),
    ("[convolutional]\nfilters=1\n", "expected [net]"),
    ("", "no sections"),
    ("[net]\n=5\n", "option with no name"),
])
def test_bad_cfg_text_names_file_and_line(text, message):
    with pytest.raises(FormatError, match="model.cfg") as err:
        parse_cfg(text, "model.cfg")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_unsupported_layer_error_names_the_section_and_line(tmp_path):
    path = tmp_path / "odd.cfg"
    path.write_text("[net]\nwidth=32\nheight=32\n[convolutional]\nfilters=4\nsize=3\n"
                    "activation=leaky\n\n[local]\nfilters=2\n")
    with pytest.raises(ModelError, match=r"odd\.cfg:9: layer 1 \[local\] is not supported"):
        check_supported(read_cfg(path))
    path.write_text("[net]\n[convolutional]\nfilters=4\nactivation=mish\n")
    with pytest.raises(ModelError, match=r"activation=mish is not supported"):
        check_supported(read_cfg(path))


def test_bad_number_names_the_section():
    cfg = parse_cfg("[net]\nwidth=abc\n")
    with pytest.raises(ModelError, match=r"\[net\] at line 1: 'width=abc' is not a number"):
        _ = cfg.width


@pytest.mark.parametrize(("template", "heads"), [("yolov3", 3), ("yolov3-tiny", 2),
                                                  ("yolov3-tiny-3l", 3)])
def test_customize_applies_the_darknet_recipe(template, heads):
    cfg = customize(read_cfg(TEMPLATES[template]), classes=4, width=320, height=256)
    assert (cfg.width, cfg.height) == (320, 256)
    assert cfg.net.get_int("max_batches") == 8000
    assert cfg.net.get_ints("steps") == [6400, 7200]
    assert len(cfg.yolo_layers()) == heads
    for i in cfg.yolo_layers():
        head = cfg.layers[i]
        assert head.get_int("classes") == 4
        assert cfg.layers[i - 1].get_int("filters") == (4 + 5) * len(head.get_ints("mask"))
    # the template itself is untouched
    assert read_cfg(TEMPLATES[template]).classes == 80


def test_customize_max_batches_floor_and_images_and_anchors():
    tiny = read_cfg(TEMPLATES["yolov3-tiny"])
    assert customize(tiny, 1, 416, 416).net.get_int("max_batches") == 6000
    assert customize(tiny, 1, 416, 416, n_images=9000).net.get_int("max_batches") == 9000
    anchors = [(5, 6), (10, 12), (20, 25), (40, 50), (80, 90), (160, 170)]
    cfg = customize(tiny, 2, 416, 416, anchors=anchors)
    assert cfg.layers[cfg.yolo_layers()[0]].get("anchors").replace(" ", "") == \
        "5,6,10,12,20,25,40,50,80,90,160,170"
    with pytest.raises(ModelError, match="3 anchors given"):
        customize(tiny, 2, 416, 416, anchors=anchors[:3])
    with pytest.raises(ModelError, match="multiples of 32"):
        customize(tiny, 2, 400, 416)
    with pytest.raises(ModelError, match="at least 1"):
        customize(tiny, 0, 416, 416)


def test_customized_cfg_loads_in_opencv_with_the_new_head_width(tmp_path):
    cfg = customize(read_cfg(TEMPLATES["yolov3-tiny"]), classes=2, width=96, height=96)
    write_cfg(cfg, tmp_path / "m.cfg")
    write_weights(random_weights(cfg), tmp_path / "m.weights")
    net = cv2.dnn.readNetFromDarknet(str(tmp_path / "m.cfg"), str(tmp_path / "m.weights"))
    net.setInput(np.zeros((1, 3, 96, 96), np.float32))
    outs = net.forward(net.getUnconnectedOutLayersNames())
    assert [o.shape for o in outs] == [(3 * 3 * 3, 7), (6 * 6 * 3, 7)]
