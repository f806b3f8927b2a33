"""The OpenVINO backend: fp32 equals OpenCV's raw outputs, bf16/fp16/int8 keep the detections,
``auto`` follows what this machine reports, exports and int8 models are cached."""

from __future__ import annotations

import numpy as np
import pytest
from model_factory import random_bundle
from test_onnx_export import (
    assert_same_raw_outputs,
    opencv_outputs,
    opencv_reference,
    scaled_bundle,
)

from workbench.darknet.bundle import find_bundle
from workbench.data.synth import make_demo_dataset
from workbench.detect.agreement import matched_detections
from workbench.detect.backends import available_backends, make_backend
from workbench.detect.detector import Detector
from workbench.detect.engines.opencv import cuda_targets
from workbench.errors import BackendUnavailable, ModelError, WorkbenchError

ov = pytest.importorskip("openvino")
from workbench.detect.engines.openvino import (  # noqa: E402 - after the importorskip
    OpenVinoBackend,
    auto_precision,
    cpu_flags,
    kept_in_float,
    supported_precisions,
)

TOLERANCE = 2e-4


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def demo_images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-data")
    make_demo_dataset(folder, images=24, seed=5, size=192)
    return sorted(folder.glob("*.jpg"))


@pytest.mark.parametrize("template,width,height", [
    ("yolov3-tiny", 416, 416),
    ("yolov3-reduced", 160, 160),
    ("yolov3-reduced", 224, 160),  # not square: catches any x/y or width/height swap
])
def test_fp32_equals_opencv_raw_outputs(tmp_path, template, width, height):
    # a batch of 3: more images than infer requests on 2 cores
    bundle, blob, reference = opencv_reference(tmp_path, template, width, height, batch=3)
    backend = OpenVinoBackend(bundle, width, height, "fp32")
    assert backend.name == "openvino-cpu" and backend.precision == "fp32"
    got = backend.forward(blob)
    assert len(got) == len(reference) and all(o.dtype == np.float32 for o in got)
    assert_same_raw_outputs(got, reference)


def test_started_forwards_in_flight_return_their_own_outputs(tmp_path):
    bundle = scaled_bundle(tmp_path, "yolov3-tiny", 416)
    backend = OpenVinoBackend(bundle, 416, 416, "fp32", requests=2)
    rng = np.random.default_rng(1)
    blobs = [rng.random((1, 3, 416, 416), dtype=np.float32) for _ in range(2)]
    pending = [backend.start(b) for b in blobs]  # both run at once
    for blob, p in zip(blobs, pending, strict=True):
        want = opencv_outputs(bundle, blob, 416, 416)
        for ours, theirs in zip(p.result(), want, strict=True):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)


def test_bad_blob_shape_is_a_model_error(tmp_path):
    backend = OpenVinoBackend(random_bundle(tmp_path, "yolov3-tiny", size=160), 160, 160, "fp32")
    with pytest.raises(ModelError, match="does not fit"):
        backend.forward(np.zeros((1, 3, 128, 160), np.float32))


def test_precisions_follow_openvinos_capabilities():
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    assert ("bf16" in supported_precisions()) == ("BF16" in caps)
    assert ("fp16" in supported_precisions()) == ("FP16" in caps)
    precision, why = auto_precision()
    if "BF16" in caps:
        assert precision == "bf16"
        if "amx_bf16" in cpu_flags():
            assert why.startswith("AMX present")
    else:
        assert precision == "fp32" and "no BF16" in why


def test_auto_precision_is_printed_with_its_reason(tmp_path):
    backend = OpenVinoBackend(random_bundle(tmp_path, "yolov3-tiny", size=160), 160, 160)
    precision, why = auto_precision()
    assert backend.precision == precision
    assert backend.engine == f"openvino-cpu {precision}"
    assert backend.reason == f"auto: {why}"


def test_a_precision_the_cpu_lacks_is_refused_in_one_line(tmp_path):
    bundle = random_bundle(tmp_path, "yolov3-tiny", size=160)
    missing = [p for p in ("bf16", "fp16") if p not in supported_precisions()]
    for precision in missing:
        with pytest.raises(BackendUnavailable, match=f"cannot run {precision}"):
            OpenVinoBackend(bundle, 160, 160, precision)
    with pytest.raises(BackendUnavailable, match="only the openvino backend"):
        make_backend(bundle, "onnxruntime", 160, 160, precision="bf16")
    with pytest.raises(BackendUnavailable, match="unknown precision"):
        make_backend(bundle, "openvino", 160, 160, precision="fp8")


@pytest.mark.skipif(bool(cuda_targets()), reason="an OpenCV CUDA target is available here")
def test_auto_order_follows_what_this_machine_reports(tmp_path):
    import onnxruntime

    bundle = random_bundle(tmp_path, "yolov3-tiny", size=160)
    backend = make_backend(bundle, "auto", 160, 160)
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        assert backend.name == "onnxruntime-cuda"
    else:  # OpenVINO is importable here (importorskip above) and lists a CPU
        assert "CPU" in ov.Core().available_devices
        assert backend.name == "openvino-cpu"
        assert backend.precision == auto_precision()[0]
        assert backend.reason.startswith("auto:") and "fastest CPU engine" in backend.reason
    assert "openvino" in available_backends()
    # an explicit reduced precision picks OpenVINO under auto as well
    if "bf16" in supported_precisions():
        assert make_backend(bundle, "auto", 160, 160, precision="bf16").engine == \
            "openvino-cpu bf16"


def demo_map(detector: Detector, images) -> float:
    """mAP@0.5 (VOC all-point, conf 0.005) of ``detector`` on demo images with YOLO labels."""
    from workbench.data.images import load_bgr
    from workbench.evaluation.evaluate import evaluate
    from workbench.evaluation.inputs import GroundTruth, Predictions
    from workbench.formats.yolo import read_yolo

    gt, pred = {}, {}
    for path in images:
        image = load_bgr(path)
        h, w = image.shape[:2]
        gt[path.name] = GroundTruth.from_boxes(read_yolo(path.with_suffix(".txt"), w, h))
        d = detector.detect(image, 0.005, 0.45)
        pred[path.name] = Predictions(np.asarray(d.boxes, float), d.scores, d.class_ids)
    return 100 * evaluate(gt, pred, len(detector.class_names)).map50


def _agreement(reference: Detector, other: Detector, images) -> tuple[int, int]:
    from workbench.data.images import load_bgr

    matched = total = 0
    for path in images:
        image = load_bgr(path)
        want = reference.detect(image, 0.25, 0.45)
        matched += matched_detections(want, other.detect(image, 0.25, 0.45))
        total += len(want)
    return matched, total


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_keeps_the_demo_models_detections(demo_images, precision):
    if precision not in supported_precisions():
        pytest.skip(f"this CPU has no {precision}")
    reference = Detector("demo", "cpu")
    other = Detector("demo", "openvino", precision=precision)
    assert other.backend.engine == f"openvino-cpu {precision}"
    matched, total = _agreement(reference, other, demo_images)
    assert total > 40  # enough detections for the figure to mean something
    assert matched >= 0.95 * total


@pytest.mark.slow
def test_int8_calibrates_on_the_given_images_keeps_detections_and_is_cached(
        demo_images, cache_in_tmp, tmp_path):
    pytest.importorskip("nncf")
    calibration = tmp_path / "calib"
    make_demo_dataset(calibration, images=32, seed=11, size=192)
    reference = Detector("demo", "cpu")
    int8 = Detector("demo", "openvino", precision="int8", calibrate=calibration)
    assert int8.backend.engine == "openvino-cpu int8"
    model = int8.backend.model_path
    assert model.suffix == ".xml" and model.is_relative_to(cache_in_tmp)
    # quantized for real: int8 FakeQuantize ops, and the first and head convolutions kept out
    compiled_model = ov.Core().read_model(str(model))
    kinds = {op.get_type_name() for op in compiled_model.get_ordered_ops()}
    assert "FakeQuantize" in kinds
    original = ov.Core().read_model(str(int8.backend.onnx_path))
    assert len(kept_in_float(original)) == 3  # conv 0 and the two heads of the tiny demo
    # int8 moves scores more than bf16 (docs/engines.md): judged on the boxes found at all
    # (IoU >= 0.5, score within 0.2) and on mAP@0.5 against the demo labels
    from workbench.data.images import load_bgr

    found = total = 0
    for path in demo_images:
        image = load_bgr(path)
        want, got = reference.detect(image), int8.detect(image)
        found += matched_detections(want, got, iou=0.5, score_tol=0.2)
        total += len(want)
    assert total > 40 and found >= 0.7 * total
    assert demo_map(int8, demo_images) >= demo_map(reference, demo_images) - 2.0
    stamp = model.stat().st_mtime_ns
    again = Detector("demo", "openvino", precision="int8", calibrate=calibration)
    assert again.backend.model_path == model and model.stat().st_mtime_ns == stamp


def test_int8_without_calibration_images_is_refused():
    with pytest.raises(WorkbenchError, match="--calibrate"):
        Detector("demo", "openvino", precision="int8")
    with pytest.raises(WorkbenchError, match="only used by --precision int8"):
        Detector("demo", "openvino", precision="fp32", calibrate=[find_bundle("demo").cfg])


def test_uint8_bgr_input_gives_the_blobs_outputs(tmp_path, demo_images):
    """The pipeline hands OpenVINO resized uint8 BGR (the blob is made in its graph)."""
    from workbench.data.images import load_bgr

    bundle = scaled_bundle(tmp_path, "yolov3-tiny", 416)
    detector = Detector(bundle, "openvino", 416, precision="fp32")
    assert detector.backend.input_layout == "bgr8"
    images = [load_bgr(p) for p in demo_images[:3]]
    prepared = np.concatenate([detector.prepare(im) for im in images])
    assert prepared.dtype == np.uint8 and prepared.shape == (3, 416, 416, 3)
    blob = np.concatenate([detector.preprocess(im) for im in images])
    reference = opencv_outputs(bundle, blob, 416, 416)
    for ours, theirs in zip(detector.backend.forward(prepared), reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOLERANCE)
    # and the folder pipeline (uint8 inputs, requests in flight) gives Detector.detect's boxes
    demo = Detector("demo", "openvino", precision="fp32")
    results = list(demo.detect_many(demo_images[:8]))
    assert [r.path for r in results] == demo_images[:8]
    assert sum(len(r.detections) for r in results) > 10
    for r in results:
        want = demo.detect(load_bgr(r.path))
        np.testing.assert_array_equal(r.detections.class_ids, want.class_ids)
        np.testing.assert_allclose(r.detections.boxes, want.boxes, atol=1e-2)
