"""Darknet -> ONNX: the exported graph gives OpenCV's raw outputs, in ONNX Runtime and in
OpenCV's own ONNX importer; bad models fail with errors that name the section."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from model_factory import random_bundle, random_cfg

from workbench.cli import main
from workbench.darknet.bundle import write_bundle
from workbench.darknet.cfg import format_cfg, parse_cfg, read_cfg, write_cfg
from workbench.darknet.onnx_export import (
    export_files,
    export_onnx,
    read_class_names,
    write_onnx,
)
from workbench.darknet.weights import random_weights, read_weights, truncate
from workbench.errors import ModelError

TOLERANCE = 2e-4
# Weight scales that keep head outputs in the tens: with scale 1 the random deep models reach
# exp(20) in w/h, where float32 rounding alone exceeds any absolute tolerance.
WELL_SCALED = {"yolov3-tiny": 0.9, "yolov3-tiny-3l": 0.9, "yolov3-reduced": 0.86}


def scaled_bundle(folder: Path, template: str, size: int, classes: int = 3, seed: int = 1):
    cfg = random_cfg(template, classes, size)
    weights = random_weights(cfg, seed, scale=WELL_SCALED[template])
    return write_bundle(folder, "model", cfg, weights, [f"c{i}" for i in range(classes)])


def opencv_outputs(bundle, blob: np.ndarray, width: int, height: int) -> list[np.ndarray]:
    """readNetFromDarknet on a cfg copy with thresh=0 in each [yolo], so nothing is zeroed."""
    cfg = read_cfg(bundle.cfg)
    cfg.net.options.update(width=str(width), height=str(height))
    for i in cfg.yolo_layers():
        cfg.layers[i].options["thresh"] = "0"
    path = Path(bundle.cfg).with_name("opencv-thresh0.cfg")
    write_cfg(cfg, path)
    net = cv2.dnn.readNetFromDarknet(str(path), str(bundle.weights))
    net.setInput(blob)
    outs = net.forward(net.getUnconnectedOutLayersNames())
    return [o.reshape(blob.shape[0], -1, o.shape[-1]) for o in outs]


def opencv_reference(folder: Path, template: str, width: int, height: int, batch: int):
    """A well-scaled random bundle of ``template``, a random blob of ``batch`` images at
    ``width`` x ``height`` and OpenCV's raw outputs on it."""
    bundle = scaled_bundle(folder, template, 160 if template == "yolov3-reduced" else 416)
    blob = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
    return bundle, blob, opencv_outputs(bundle, blob, width, height)


def assert_same_raw_outputs(got: list[np.ndarray], reference: list[np.ndarray]) -> None:
    """Every head's outputs OpenCV's, within TOLERANCE, on outputs that test the decoding."""
    for ours, theirs in zip(got, reference, strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)
    # the comparison really exercises exp(w), exp(h) and objectness far from 0.5
    assert max(np.abs(t[..., 2:4]).max() for t in reference) > 2
    assert max(t[..., 4].max() for t in reference) > 0.8


def export(bundle, width: int, height: int, dynamic_batch: bool = True) -> Path:
    out = Path(bundle.cfg).with_suffix(".onnx")
    return export_files(bundle.cfg, bundle.weights, out, class_names=bundle.class_names(),
                        width=width, height=height, dynamic_batch=dynamic_batch)


def ort_outputs(path: Path, blob: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": blob})


@pytest.mark.parametrize("template,width,height", [
    ("yolov3-tiny", 416, 416),
    ("yolov3-tiny-3l", 416, 416),  # three heads, the third at stride 8 (52x52)
    ("yolov3-reduced", 160, 160),
    ("yolov3-reduced", 224, 160),  # not square: catches any x/y or width/height swap
])
def test_onnxruntime_equals_opencv_raw_outputs(tmp_path, template, width, height):
    bundle, blob, reference = opencv_reference(tmp_path, template, width, height, batch=2)
    got = ort_outputs(export(bundle, width, height), blob)
    assert len(got) == len(reference) == len(read_cfg(bundle.cfg).yolo_layers())
    assert_same_raw_outputs(got, reference)


def test_scale_xy_of_a_trained_model_decodes_as_opencv_does(tmp_path):
    # `train --scale-xy 2` writes darknet's scale_x_y into every [yolo]: centres reach half a
    # cell beyond their own, in OpenCV's darknet reader and in the exported graph alike
    bundle = scaled_bundle(tmp_path, "yolov3-reduced", 160)
    blob = np.random.default_rng(0).random((2, 3, 160, 160), dtype=np.float32)
    plain = opencv_outputs(bundle, blob, 160, 160)
    cfg_path = Path(bundle.cfg)
    cfg_path.write_text(cfg_path.read_text().replace("[yolo]", "[yolo]\nscale_x_y=2"))
    reference = opencv_outputs(bundle, blob, 160, 160)
    assert_same_raw_outputs(ort_outputs(export(bundle, 160, 160), blob), reference)
    assert max(np.abs(r[..., :2] - p[..., :2]).max() for r, p in zip(reference, plain,
                                                                       strict=True)) > 1e-3


@pytest.mark.parametrize("template", ["yolov3-tiny", "yolov3-tiny-3l", "yolov3-reduced"])
def test_opencv_onnx_importer_gives_the_same_outputs(tmp_path, template):
    size = 160 if template == "yolov3-reduced" else 416
    bundle = scaled_bundle(tmp_path, template, size)
    blob = np.random.default_rng(1).random((1, 3, size, size), dtype=np.float32)
    reference = opencv_outputs(bundle, blob, size, size)
    net = cv2.dnn.readNetFromONNX(str(export(bundle, size, size, dynamic_batch=False)))
    net.setInput(blob)
    got = net.forward(net.getUnconnectedOutLayersNames())
    for ours, theirs in zip(got, reference, strict=True):
        np.testing.assert_allclose(ours.reshape(theirs.shape), theirs, rtol=0, atol=TOLERANCE)


def test_unscaled_random_model_matches_opencv_within_float_rounding(tmp_path):
    # the model the detector tests use: w/h reach hundreds, so compare relatively there
    bundle = random_bundle(tmp_path, "yolov3-tiny", classes=3, size=416, seed=0)
    blob = np.random.default_rng(2).random((1, 3, 416, 416), dtype=np.float32)
    reference = opencv_outputs(bundle, blob, 416, 416)
    for ours, theirs in zip(ort_outputs(export(bundle, 416, 416), blob), reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=TOLERANCE)


def test_rows_follow_opencvs_y_x_anchor_order(tmp_path):
    bundle = scaled_bundle(tmp_path, "yolov3-reduced", 160)
    blob = np.zeros((1, 3, 160, 224), np.float32)
    heads = ort_outputs(export(bundle, 224, 160), blob)
    cfg = read_cfg(bundle.cfg)
    for head, i in zip(heads, cfg.yolo_layers(), strict=True):
        stride = {0: 32, 1: 16, 2: 8}[len([j for j in cfg.yolo_layers() if j < i])]
        rows, cols, anchors = 160 // stride, 224 // stride, 3
        cells = head[0].reshape(rows, cols, anchors, -1)
        # cx rises along x (axis 1), cy along y (axis 0), each within its cell
        cx, cy = cells[..., 0], cells[..., 1]
        assert np.all((cx * cols >= np.arange(cols)[None, :, None])
                      & (cx * cols <= np.arange(cols)[None, :, None] + 1))
        assert np.all((cy * rows >= np.arange(rows)[:, None, None])
                      & (cy * rows <= np.arange(rows)[:, None, None] + 1))


def test_graph_passes_checker_and_carries_names_and_shapes(tmp_path):
    bundle = random_bundle(tmp_path, "yolov3-reduced", classes=4, size=160)
    path = export(bundle, 160, 160, dynamic_batch=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert read_class_names(path) == ["class0", "class1", "class2", "class3"]
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 160, 160]
    outs = [(o.name, [d.dim_value for d in o.type.tensor_type.shape.dim][1:])
            for o in model.graph.output]
    heads = read_cfg(bundle.cfg).yolo_layers()
    assert [name for name, _ in outs] == [f"yolo{i}" for i in heads]  # cfg order
    assert [shape for _, shape in outs] == [[5 * 5 * 3, 9], [10 * 10 * 3, 9], [20 * 20 * 3, 9]]


def test_static_batch_by_default(tmp_path):
    bundle = random_bundle(tmp_path, "yolov3-tiny", size=160)
    model = export_onnx(read_cfg(bundle.cfg), read_weights(bundle.weights, read_cfg(bundle.cfg)))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1


def test_stride1_maxpool_pads_bottom_right_only(tmp_path):
    bundle = random_bundle(tmp_path, "yolov3-tiny", size=416)
    cfg = read_cfg(bundle.cfg)
    model = export_onnx(cfg, read_weights(bundle.weights, cfg))
    pools = {n.name: {a.name: list(a.ints) for a in n.attribute}
             for n in model.graph.node if n.op_type == "MaxPool"}
    stride1 = [p for p in pools.values() if p["strides"] == [1, 1]]
    assert stride1 and all(p["pads"] == [0, 0, 1, 1] for p in stride1)
    assert all(p["pads"] == [0, 0, 1, 1] and p["kernel_shape"] == [2, 2] for p in pools.values())


def _cfg_with(extra: str) -> str:
    text = format_cfg(random_cfg("yolov3-tiny", 3, 160))
    return text.replace("[yolo]", extra + "\n[yolo]", 1)


@pytest.mark.parametrize("extra,needle", [
    ("[dropout]\nprobability=.5\n", "[dropout]"),
    ("[convolutional]\nfilters=24\nsize=1\nactivation=mish\n", "activation=mish"),
])
def test_unsupported_layer_is_a_model_error_naming_the_section(tmp_path, extra, needle):
    cfg = parse_cfg(_cfg_with(extra), tmp_path / "odd.cfg")
    with pytest.raises(ModelError, match=r"odd\.cfg:\d+: layer \d+ ") as err:
        export_onnx(cfg, random_weights(random_cfg("yolov3-tiny", 3, 160)))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_yolo_options_the_decode_cannot_express_are_errors(tmp_path):
    text = format_cfg(random_cfg("yolov3-tiny", 3, 160))
    text = text.replace("[yolo]\n", "[yolo]\nnew_coords=1\n", 1)
    cfg = parse_cfg(text, tmp_path / "v4.cfg")
    with pytest.raises(ModelError, match=r"v4\.cfg:\d+: layer \d+ \[yolo\]: new_coords"):
        export_onnx(cfg, random_weights(cfg))
    wrong = random_cfg("yolov3-tiny", 3, 160)
    head = wrong.yolo_layers()[0]
    wrong.layers[head].options["classes"] = "4"  # filters no longer (classes + 5) x 3
    with pytest.raises(ModelError, match=r"\[yolo\]: the layer before has 24 channels"):
        export_onnx(wrong, random_weights(wrong))


def test_route_groups_and_weighted_shortcuts_are_rejected(tmp_path):
    cfg = random_cfg("yolov3-reduced", 3, 160)
    route = next(i for i, s in enumerate(cfg.layers) if s.kind == "route")
    cfg.layers[route].options["groups"] = "2"
    with pytest.raises(ModelError, match=rf"layer {route} \[route\]: groups=2"):
        export_onnx(cfg, random_weights(cfg))
    cfg = random_cfg("yolov3-reduced", 3, 160)
    shortcut = next(i for i, s in enumerate(cfg.layers) if s.kind == "shortcut")
    cfg.layers[shortcut].options["weights_type"] = "per_channel"
    with pytest.raises(ModelError, match=rf"layer {shortcut} \[shortcut\]: weighted"):
        export_onnx(cfg, random_weights(cfg))


def test_partial_weights_cannot_be_exported(tmp_path):
    cfg = random_cfg("yolov3-tiny", 3, 160)
    with pytest.raises(ModelError, match=r"layer \d+ \[convolutional\]: the weights file has no"):
        export_onnx(cfg, truncate(random_weights(cfg), 10))


def test_size_must_be_multiple_of_32(tmp_path):
    cfg = random_cfg("yolov3-tiny", 3, 160)
    with pytest.raises(ModelError, match="multiples of 32"):
        export_onnx(cfg, random_weights(cfg), width=100, height=96)


def test_read_class_names_of_a_bad_file_is_a_model_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all \xff\xfe")
    with pytest.raises(ModelError, match="bad.onnx"):
        read_class_names(bad)


# --- the `workbench export` verb ------------------------------------------------------------

def test_export_verb_writes_onnx_with_names(tmp_path, capsys):
    bundle = random_bundle(tmp_path / "m", "yolov3-tiny", classes=2, size=160)
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--model", str(tmp_path / "m"), "--to", "onnx", "--out", str(out),
                 "--size", "320", "--dynamic-batch"]) == 0
    assert "320x320" in capsys.readouterr().out
    model = onnx.load(str(out))
    assert read_class_names(out) == bundle.class_names()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[2].dim_value == dims[3].dim_value == 320
    # same content from the three files, at the cfg's own size with a static batch
    out2 = tmp_path / "tiny2.onnx"
    assert main(["export", "--cfg", str(bundle.cfg), "--weights", str(bundle.weights),
                 "--names", str(bundle.names), "--out", str(out2)]) == 0
    dims = onnx.load(str(out2)).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 1 and dims[2].dim_value == 160


@pytest.mark.parametrize("args,message", [
    (["--size", "300"], "multiples of 32"),
    (["--size", "big"], "expected N or WxH"),
    (["--cfg", "x.cfg"], "not both"),
])
def test_export_verb_bad_input_is_one_line_exit_2(tmp_path, capsys, args, message):
    random_bundle(tmp_path / "m", "yolov3-tiny", size=160)
    code = main(["export", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o.onnx"),
                 *args])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.startswith("workbench export: error:")
    assert len(err.splitlines()) == 1 and not (tmp_path / "o.onnx").exists()


def test_export_verb_weights_that_do_not_fit(tmp_path, capsys):
    bundle = random_bundle(tmp_path / "m", "yolov3-tiny", size=160)
    Path(bundle.weights).write_bytes(Path(bundle.weights).read_bytes()[:-8])
    code = main(["export", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o.onnx")])
    assert code == 2 and "does not fit" in capsys.readouterr().err


def test_export_verb_names_count_must_match_classes(tmp_path, capsys):
    bundle = random_bundle(tmp_path / "m", "yolov3-tiny", classes=3, size=160)
    Path(bundle.names).write_text("only\ntwo\n")
    code = main(["export", "--model", str(tmp_path / "m"), "--out", str(tmp_path / "o.onnx")])
    assert code == 2 and "2 class names" in capsys.readouterr().err


def test_write_onnx_is_atomic_and_overwrites(tmp_path):
    bundle = random_bundle(tmp_path, "yolov3-tiny", size=160)
    cfg = read_cfg(bundle.cfg)
    out = tmp_path / "m.onnx"
    out.write_bytes(b"old")
    write_onnx(export_onnx(cfg, read_weights(bundle.weights, cfg)), out)
    assert onnx.load(str(out)).graph.output
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
