import os
import sys
import tempfile
from pathlib import Path

# Real Qt widgets, offscreen; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Exported ONNX models are cached; keep the tests' cache out of the user's home.
os.environ.setdefault("WORKBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="workbench-test-cache-"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


import pytest  # noqa: E402
from model_factory import random_bundle, random_cfg  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A random-weight yolov3-tiny bundle, 4 classes at 160 (test modules may define their own)."""
    return random_bundle(tmp_path_factory.mktemp("model"), "yolov3-tiny", classes=4, size=160,
                         seed=4)


@pytest.fixture(scope="module")
def reduced(tmp_path_factory):
    """A random-weight yolov3-reduced bundle (every YOLOv3 layer kind, three heads), 3 classes
    at 160."""
    return random_bundle(tmp_path_factory.mktemp("reduced"), "yolov3-reduced", classes=3,
                         size=160, seed=1)


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    """A random-weight yolov3-tiny at 160 whose classes are the demo data's (by name)."""
    from workbench.darknet.bundle import write_bundle
    from workbench.darknet.weights import random_weights
    from workbench.data.synth import CLASS_NAMES

    cfg = random_cfg("yolov3-tiny", len(CLASS_NAMES), 160)
    return write_bundle(tmp_path_factory.mktemp("demo-model"), "model", cfg,
                        random_weights(cfg, 7), CLASS_NAMES)


@pytest.fixture(scope="module")
def demo_shapes(tmp_path_factory):
    """Four demo-data images at 192 (labels beside them)."""
    from workbench.data.synth import make_demo_dataset

    return make_demo_dataset(tmp_path_factory.mktemp("demo-data") / "shapes", images=4,
                             size=192, seed=3)
