"""The ONNX Runtime backend: same outputs and detections as OpenCV DNN, cached exports."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from model_factory import random_bundle

from workbench.darknet.weights import random_weights, write_weights
from workbench.data.synth import draw_image
from workbench.detect.backends import make_backend
from workbench.detect.engines.onnx_cache import cache_dir, cpu_cores
from workbench.detect.engines.onnxruntime import OnnxRuntimeBackend, available_providers
from workbench.detect.engines.opencv import OpenCvBackend, cuda_targets
from workbench.errors import BackendUnavailable, ModelError


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return random_bundle(tmp_path_factory.mktemp("tiny"), "yolov3-tiny", classes=4, size=416)


def cached_files(folder):
    return sorted(folder.glob("*.onnx")) if folder.is_dir() else []


def test_available_providers_is_onnxruntimes_list():
    assert available_providers() == ort.get_available_providers()
    assert "CPUExecutionProvider" in available_providers()


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "w"))
    assert cache_dir() == tmp_path / "w" / "onnx"
    monkeypatch.delenv("WORKBENCH_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "detection-workbench" / "onnx"


def test_backend_matches_opencv_backend(tiny, cache_in_tmp):
    ours = OnnxRuntimeBackend(tiny, 416, 416)
    assert ours.name == "onnxruntime-cpu" and "CPU" in ours.reason
    assert ours.session.get_providers() == ["CPUExecutionProvider"]
    theirs = OpenCvBackend(tiny, 416, 416, "cpu")
    blob = np.random.default_rng(0).random((2, 3, 416, 416), dtype=np.float32)
    got, want = ours.forward(blob), theirs.forward(blob)
    assert [g.shape for g in got] == [w.shape for w in want] == [(2, 507, 9), (2, 2028, 9)]
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.float32
        # random weights put w/h in the hundreds: relative there, 2e-4 absolute elsewhere
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=2e-4)
    assert cached_files(cache_in_tmp) == [ours.onnx_path]


def test_session_uses_all_optimizations_and_every_core(tiny):
    backend = OnnxRuntimeBackend(tiny, 416, 416)
    options = backend.session.get_session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert options.intra_op_num_threads == cpu_cores() == len(os.sched_getaffinity(0))


def test_export_is_cached_by_content_and_size(tmp_path, cache_in_tmp):
    bundle = random_bundle(tmp_path / "m", "yolov3-tiny", classes=2, size=160)
    first = OnnxRuntimeBackend(bundle, 160, 160).onnx_path
    stamp = first.stat().st_mtime_ns
    assert OnnxRuntimeBackend(bundle, 160, 160).onnx_path == first
    assert first.stat().st_mtime_ns == stamp  # reused, not rewritten
    other_size = OnnxRuntimeBackend(bundle, 224, 160).onnx_path
    write_weights(random_weights(bundle.read_cfg(), seed=5), bundle.weights)  # retrained
    retrained = OnnxRuntimeBackend(bundle, 160, 160).onnx_path
    assert len({first, other_size, retrained}) == 3
    assert cached_files(cache_in_tmp) == sorted({first, other_size, retrained})


def test_batch_is_dynamic(tiny):
    backend = OnnxRuntimeBackend(tiny, 416, 416)
    for n in (1, 3):
        outs = backend.forward(np.zeros((n, 3, 416, 416), np.float32))
        assert [o.shape[0] for o in outs] == [n, n]


def test_blob_of_the_wrong_size_is_a_model_error(tiny):
    backend = OnnxRuntimeBackend(tiny, 416, 416)
    with pytest.raises(ModelError, match=r"does not fit the network input \(N, 3, 416, 416\)"):
        backend.forward(np.zeros((1, 3, 320, 320), np.float32))


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(),
                    reason="this onnxruntime has CUDA")
def test_cuda_without_provider_says_how_to_get_it(tiny, cache_in_tmp):
    with pytest.raises(BackendUnavailable, match="pip install onnxruntime-gpu"):
        OnnxRuntimeBackend(tiny, 416, 416, device="cuda")
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        make_backend(tiny, "onnxruntime-cuda", 416, 416)
    assert cached_files(cache_in_tmp) == []  # nothing exported for a backend that cannot run


def test_unsupported_model_is_a_model_error(tmp_path):
    bundle = random_bundle(tmp_path / "m", "yolov3-tiny", size=160)
    text = bundle.cfg.read_text().replace("[yolo]", "[dropout]\nprobability=.5\n\n[yolo]", 1)
    bundle.cfg.write_text(text)
    with pytest.raises(ModelError, match=r"\[dropout\]"):
        OnnxRuntimeBackend(bundle, 160, 160)


def test_make_backend_names_onnxruntime(tiny):
    assert make_backend(tiny, "onnxruntime", 416, 416).name == "onnxruntime-cpu"
    assert make_backend(tiny, "onnxruntime-cpu", 416, 416).name == "onnxruntime-cpu"


@pytest.mark.skipif(bool(cuda_targets()) or "CUDAExecutionProvider" in available_providers(),
                    reason="a CUDA engine is available here")
def test_auto_prefers_onnxruntime_on_a_cpu_only_machine_without_openvino(tiny, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino raises ImportError
    monkeypatch.delitem(sys.modules, "workbench.detect.engines.openvino", raising=False)
    backend = make_backend(tiny, "auto", 416, 416)
    assert backend.name == "onnxruntime-cpu" and "auto" in backend.reason
    assert "openvino is not installed" in backend.reason


def test_detections_after_nms_equal_opencvs(tiny):
    from workbench.detect.detector import Detector

    ours = Detector(tiny, backend="onnxruntime", size=416)
    theirs = Detector(tiny, backend="cpu", size=416)
    rng = np.random.default_rng(3)
    total = 0
    for _ in range(3):
        image, _objects = draw_image(rng, 416)
        a, b = ours.detect(image, conf=0.25, nms=0.45), theirs.detect(image, conf=0.25, nms=0.45)
        assert len(a) == len(b)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)  # pixels
        total += len(a)
    assert total > 10  # enough boxes for the comparison to mean something



def test_cache_folder_that_cannot_be_made_is_a_model_error(tmp_path, monkeypatch):
    bundle = random_bundle(tmp_path / "m", "yolov3-tiny", size=160)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "onnx").write_text("a file where the cache folder should be")
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "c"))
    with pytest.raises(ModelError, match="cannot create the ONNX cache folder"):
        OnnxRuntimeBackend(bundle, 160, 160)


def test_damaged_cache_file_is_exported_again(tmp_path):
    bundle = random_bundle(tmp_path / "m", "yolov3-tiny", size=160)
    path = OnnxRuntimeBackend(bundle, 160, 160).onnx_path
    path.write_bytes(path.read_bytes()[:1000])  # cut short
    backend = OnnxRuntimeBackend(bundle, 160, 160)
    assert backend.onnx_path == path and path.stat().st_size > 1000
    assert backend.forward(np.zeros((1, 3, 160, 160), np.float32))[0].shape == (1, 75, 8)
