"""The yolov3-tiny-3l template end to end: a short run from yolov3-tiny's start weights (an
80-class file: its shared layers load, the rest start fresh), the exported darknet bundle and
its ONNX export, and every detection engine running the bundle (those not here are skipped with
the registry's own reason). The ONNX-vs-OpenCV parity at 416 is in test_onnx_export.py."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from model_factory import random_cfg

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.slow  # about 60 s on a busy 2-core machine (a training run)

from test_onnx_export import export, opencv_outputs, ort_outputs  # noqa: E402

from workbench.darknet.bundle import ModelBundle, find_bundle  # noqa: E402
from workbench.darknet.weights import random_weights, write_weights  # noqa: E402
from workbench.data.synth import make_demo_dataset  # noqa: E402
from workbench.detect import engines  # noqa: E402
from workbench.train.loop import TrainSettings, train  # noqa: E402
from workbench.train.protocol import Reporter  # noqa: E402

SIZE = 64  # heads of 2x2, 4x4 and 8x8 cells: the stride-8 head is there, the run is cheap
# fp32 engines against OpenCV's darknet forward, as test_onnx_export compares an unscaled
# random model: a step from random heads leaves some w/h in the tens, so relative there
ATOL, RTOL = 2e-4, 1e-4


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: str, **fields: Any) -> None:
        self.events.append({"event": event, **fields})


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Recorder, ModelBundle]:
    folder = tmp_path_factory.mktemp("tiny-3l")
    data = make_demo_dataset(folder / "data", images=12, seed=3, size=SIZE, valid_fraction=0.25)
    start = folder / "yolov3-tiny.weights"  # as the COCO file: yolov3-tiny for 80 classes
    write_weights(random_weights(random_cfg("yolov3-tiny", 80, SIZE), seed=2), start)
    rec = Recorder()
    result = train(TrainSettings(dataset=data, template="yolov3-tiny-3l", weights=start,
                                 size=SIZE, epochs=1, batch=3, out=folder / "run", patience=0,
                                 augment=False), rec)
    assert result.status == "finished" and result.bundle is not None
    return rec, find_bundle(result.bundle)


def test_a_run_starts_from_tiny_weights_and_exports_three_heads(trained):
    rec, bundle = trained
    start = next(e for e in rec.events if e["event"] == "start")
    assert start["template"] == "yolov3-tiny-3l"
    assert start["weights_report"] == ("loaded 11 of 16 conv layers; 2 [yolo] heads start "
                                       "fresh: 80 -> 4 classes; 3 conv layers the file lacks "
                                       "start fresh (from layer 25)")
    epochs = [e for e in rec.events if e["event"] == "epoch"]
    assert len(epochs) == 1 and np.isfinite(epochs[0]["loss"])
    cfg = bundle.read_cfg()
    assert len(cfg.yolo_layers()) == 3 and cfg.classes == 4 == len(bundle.class_names())


def test_the_bundle_exports_to_onnx_with_opencvs_outputs(trained):
    _, bundle = trained
    blob = np.random.default_rng(0).random((2, 3, SIZE, SIZE), dtype=np.float32)
    reference = opencv_outputs(bundle, blob, SIZE, SIZE)
    got = ort_outputs(export(bundle, SIZE, SIZE), blob)
    assert [g.shape for g in got] == [(2, n * n * 3, 9) for n in (2, 4, 8)]
    for ours, theirs in zip(got, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("name", engines.names())
def test_every_engine_runs_the_trained_bundle(trained, name):
    engine = engines.find(name)
    ok, why = engine.check()
    if not ok:
        pytest.skip(f"{name}: {why}")
    _, bundle = trained
    precision = "fp32" if "fp32" in engine.precisions else "auto"
    backend = engines.create(bundle, name, SIZE, SIZE, precision=precision)
    blob = np.random.default_rng(1).random((1, 3, SIZE, SIZE), dtype=np.float32)
    reference = opencv_outputs(bundle, blob, SIZE, SIZE)
    got = backend.forward(blob)
    assert [g.shape for g in got] == [r.shape for r in reference]
    fp16 = "fp16" in f"{name} {backend.precision}"
    for ours, theirs in zip(got, reference, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=5e-2 if fp16 else RTOL,
                                   atol=5e-2 if fp16 else ATOL)
