"""Detector, backend choice and folder runs on the real OpenCV DNN (CPU-only build here)."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
from model_factory import random_bundle

from workbench.darknet.bundle import bundle_from_files
from workbench.detect.backends import Backend, make_backend
from workbench.detect.detector import Detector, preprocess
from workbench.detect.engines.opencv import OpenCvBackend, check_opencv, cuda_targets
from workbench.detect.pipeline import RunSummary, resolve_sources
from workbench.errors import BackendUnavailable, ModelError


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return random_bundle(tmp_path_factory.mktemp("tiny"), "yolov3-tiny", classes=3, size=160)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h) in enumerate([(200, 150), (120, 240), (160, 160), (333, 111), (64, 64)]):
        path = folder / ("sub" if i % 2 else "") / f"img{i}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        paths.append(path)
    return folder, sorted(paths)


def test_backend_reports_opencv_cpu_on_this_build(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))  # where auto's ONNX file goes
    assert cuda_targets() == []  # PyPI wheels have no CUDA
    backend = make_backend(tiny, "cpu", 160, 160)
    assert backend.name == "opencv-cpu" and backend.reason
    auto = make_backend(tiny, "auto", 160, 160)
    assert "cuda" not in auto.name and auto.reason.startswith("auto:")
    assert auto.name in ("openvino-cpu", "onnxruntime-cpu", "opencv-cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda-fp16", "opencv-cuda"])
def test_explicit_cuda_without_support_says_how_to_get_it(tiny, name):
    with pytest.raises(BackendUnavailable, match="-DWITH_CUDA=ON -DOPENCV_DNN_CUDA=ON"):
        make_backend(tiny, name, 160, 160)


def test_unknown_backend_is_a_clear_error(tiny):
    with pytest.raises(BackendUnavailable, match="unknown backend 'gpu'"):
        make_backend(tiny, "gpu", 160, 160)


def test_opencv_5_is_refused_with_the_versions_that_work(monkeypatch):
    monkeypatch.setattr(cv2, "__version__", "5.0.0")
    with pytest.raises(BackendUnavailable, match=r"removed.*opencv-python-headless>=4.10,<5"):
        check_opencv()


def test_forward_returns_batch_rows_per_head_and_batches_agree(reduced):
    backend = OpenCvBackend(reduced, 160, 160)
    rng = np.random.default_rng(3)
    blob = rng.random((3, 3, 160, 160), dtype=np.float32)
    outs = backend.forward(blob)
    # three heads: 5x5, 10x10, 20x20 cells x 3 anchors, 5 + 3 columns
    assert [o.shape for o in outs] == [(3, 75, 8), (3, 300, 8), (3, 1200, 8)]
    for i in range(3):
        single = backend.forward(blob[i:i + 1])
        for o, s in zip(outs, single, strict=True):
            np.testing.assert_allclose(o[i], s[0], rtol=1e-4, atol=1e-4)


def test_weights_that_do_not_fit_the_cfg_are_a_clear_error(tiny, reduced):
    wrong = bundle_from_files(reduced.cfg, tiny.weights, reduced.names)
    with pytest.raises(ModelError, match=r"cfg needs \d+ floats, file has \d+"):
        OpenCvBackend(wrong, 160, 160)


def test_size_must_be_a_multiple_of_32(tiny):
    with pytest.raises(ModelError, match="multiples of 32"):
        Detector(tiny, "cpu", size=100)


def test_detect_equals_book_pipeline_with_opencv_nms(reduced):
    det = Detector(reduced, "cpu", size=160)
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    got = det.detect(image, conf=0.3, nms=0.45)
    # the book: blobFromImage, forward, loop over rows, NMSBoxes per class
    net = cv2.dnn.readNetFromDarknet(str(det.bundle.cfg), str(det.bundle.weights))
    net.setInput(cv2.dnn.blobFromImage(image, 1 / 255, (160, 160), swapRB=True, crop=False))
    boxes, scores, classes = [], [], []
    for out in net.forward(net.getUnconnectedOutLayersNames()):
        for row in out:
            for c, s in enumerate(row[5:]):
                if s > 0.3 and np.isfinite(row[:4]).all():
                    cx, cy, w, h = row[:4] * [320, 240, 320, 240]
                    x1, y1 = max(cx - w / 2, 0), max(cy - h / 2, 0)
                    x2, y2 = min(cx + w / 2, 320), min(cy + h / 2, 240)
                    boxes.append([x1, y1, x2 - x1, y2 - y1])
                    scores.append(float(s))
                    classes.append(c)
    keep = np.asarray(cv2.dnn.NMSBoxesBatched(boxes, scores, classes, 0.3, 0.45)).reshape(-1)
    assert len(got) == len(keep) > 0
    want = sorted((classes[k], round(scores[k], 4)) for k in keep)
    rounded = np.round(got.scores.astype(float), 4).tolist()
    assert sorted(zip(got.class_ids.tolist(), rounded, strict=True)) == want
    assert np.all(np.diff(got.scores) <= 0)  # highest score first


def test_candidates_go_down_to_low_confidence(reduced):
    det = Detector(reduced, "cpu", size=160)
    image = np.full((100, 100, 3), 90, np.uint8)
    low, high = det.candidates(image, conf=0.001), det.candidates(image, conf=0.2)
    assert len(low) > len(high)
    assert low.scores.min() < 0.2


def test_letterbox_blob_keeps_aspect_and_pads_grey():
    image = np.zeros((50, 100, 3), np.uint8)
    blob = preprocess(image, 64, 64, letterbox=True)
    assert blob.shape == (1, 3, 64, 64)
    assert np.allclose(blob[0, :, :16], 127 / 255) and np.allclose(blob[0, :, 16:48], 0)


def test_folder_run_in_order_with_progress_and_batches_agree(reduced, images):
    folder, paths = images
    det = Detector(reduced, "cpu", size=160)
    calls = []
    summary = RunSummary()
    one = list(det.detect_many(folder, conf=0.3, progress=lambda d, t: calls.append((d, t)),
                               summary=summary))
    assert [r.path for r in one] == paths
    assert calls == [(i, 5) for i in range(1, 6)]
    assert (summary.images, summary.skipped) == (5, 0)
    assert summary.detections == sum(len(r.detections) for r in one)
    assert [(r.width, r.height) for r in one][:1] == [(200, 150)]
    three = list(det.detect_many(paths, conf=0.3, batch=3, workers=1, prefetch=1))
    for a, b in zip(one, three, strict=True):
        np.testing.assert_allclose(a.detections.scores, b.detections.scores, rtol=1e-4)
        np.testing.assert_allclose(a.detections.boxes, b.detections.boxes, rtol=1e-3, atol=0.05)


def test_unreadable_images_are_skipped_and_listed(reduced, images, tmp_path):
    _, paths = images
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "missing.png"
    det = Detector(reduced, "cpu", size=160)
    results = list(det.detect_many([paths[0], broken, missing, paths[1]], batch=2))
    assert [r.ok for r in results] == [True, False, False, True]
    assert "broken.jpg" in results[1].error and "missing.png" in results[2].error


def test_cancel_stops_the_run_and_closing_stops_the_workers(reduced, images):
    folder, _ = images
    det = Detector(reduced, "cpu", size=160)
    cancel = threading.Event()
    summary = RunSummary()
    done = []
    for r in det.detect_many(folder, cancel=cancel, summary=summary):
        done.append(r)
        cancel.set()
    assert len(done) == 1 and summary.cancelled
    before = threading.active_count()
    run = det.detect_many(folder)
    next(run)
    run.close()
    assert threading.active_count() <= before


def test_list_file_paths_are_relative_to_the_list(images, tmp_path):
    folder, paths = images
    listing = folder / "list.txt"
    listing.write_text("# images\n" + "\n".join(str(p.relative_to(folder)) for p in paths))
    assert resolve_sources(listing) == paths
    assert resolve_sources(paths[0]) == [paths[0]]
    with pytest.raises(Exception, match="no such image, folder or list file"):
        resolve_sources(tmp_path / "nothing")


def test_batch_option_sends_several_images_per_forward(reduced, images):
    folder, paths = images
    inner = OpenCvBackend(reduced, 160, 160)

    class Recording(Backend):  # wraps the real one, counting images per forward
        name, reason, width, height = "recording", "test", 160, 160
        sizes: list[int] = []

        def forward(self, blob):
            self.sizes.append(blob.shape[0])
            return inner.forward(blob)

    backend = Recording()
    det = Detector(reduced, backend, size=160)
    assert det.backend is backend
    results = list(det.detect_many(paths, batch=2))
    assert backend.sizes == [2, 2, 1] and len(results) == 5


def test_size_defaults_to_the_cfgs_net_size(tmp_path):
    bundle = random_bundle(tmp_path, "yolov3-tiny", classes=2, size=224)
    det = Detector(bundle, "cpu")
    assert (det.width, det.height) == (224, 224)
    assert (det.backend.width, det.backend.height) == (224, 224)
    assert Detector(bundle, "cpu", size=(320, 256)).width == 320
