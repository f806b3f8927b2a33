"""The TensorFlow backend gives the OpenCV CPU backend's outputs and detections."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from model_factory import random_cfg  # noqa: E402

from workbench.darknet.bundle import write_bundle  # noqa: E402
from workbench.darknet.weights import random_weights, truncate  # noqa: E402
from workbench.detect.backends import Backend, make_backend  # noqa: E402
from workbench.detect.engines.tensorflow import TensorFlowBackend  # noqa: E402
from workbench.errors import ModelError  # noqa: E402

SIZE = 160


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    cfg = random_cfg("yolov3-reduced", 3, SIZE)
    # scale 0.8: head outputs in the range of a trained model (see the export parity test)
    folder = tmp_path_factory.mktemp("tf_backend")
    return write_bundle(folder, "model", cfg, random_weights(cfg, seed=11, scale=0.8),
                        ["a", "b", "c"])


@pytest.fixture(scope="module")
def tf_backend(bundle):
    return make_backend(bundle, "tensorflow", SIZE, SIZE)


def _images(n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(4)
    images = []
    for _ in range(n):
        h, w = rng.integers(100, 300, 2)
        img = (rng.random((h // 8 + 1, w // 8 + 1, 3)) * 255).astype(np.uint8)
        import cv2

        images.append(cv2.resize(img, (int(w), int(h)), interpolation=cv2.INTER_CUBIC))
    return images


def test_backend_is_named_for_its_device(tf_backend):
    assert isinstance(tf_backend, TensorFlowBackend) and isinstance(tf_backend, Backend)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    assert tf_backend.name == ("tensorflow-gpu" if gpu else "tensorflow-cpu")
    assert tf_backend.reason and (tf_backend.width, tf_backend.height) == (SIZE, SIZE)


def test_forward_equals_opencv_forward_on_a_batch(bundle, tf_backend):
    cpu = make_backend(bundle, "cpu", SIZE, SIZE)
    blob = np.random.default_rng(0).random((2, 3, SIZE, SIZE)).astype(np.float32)
    ours = tf_backend.forward(blob)
    theirs = [cpu.forward(blob[i:i + 1]) for i in range(2)]
    assert [o.shape for o in ours] == [(2,) + t.shape[1:] for t in theirs[0]]
    for i in range(2):
        for head, ref in zip(ours, theirs[i], strict=True):
            assert np.abs(head[i] - ref[0]).max() <= 1e-4


def test_detections_equal_the_opencv_cpu_backend(bundle, tf_backend):
    from workbench.detect.detector import Detector

    ours = Detector(bundle, tf_backend, size=SIZE)
    theirs = Detector(bundle, "cpu", size=SIZE)
    total = 0
    for image in _images():
        a, b = ours.detect(image, conf=0.4, nms=0.45), theirs.detect(image, conf=0.4, nms=0.45)
        assert len(a.scores) == len(b.scores)
        np.testing.assert_array_equal(a.class_ids, b.class_ids)
        assert np.abs(a.boxes - b.boxes).max(initial=0) <= 0.5
        assert np.abs(a.scores - b.scores).max(initial=0) <= 1e-3
        total += len(a.scores)
    assert total > 0


def test_bad_bundle_and_blob_are_clear_errors(tmp_path, bundle, tf_backend):
    cfg = random_cfg("yolov3-tiny", 2, SIZE)
    partial = write_bundle(tmp_path, "partial", cfg, truncate(random_weights(cfg), 10), ["x", "y"])
    with pytest.raises(ModelError, match="partial.weights"):
        TensorFlowBackend(partial, SIZE, SIZE)
    with pytest.raises(ModelError, match="blob of shape"):
        tf_backend.forward(np.zeros((1, 3, 96, 96), np.float32))
