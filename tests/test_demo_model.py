"""The bundled demo model detects the demo shapes: mAP@0.5 >= 0.9 on a fresh dataset, through
the OpenCV backend (no TensorFlow needed)."""

from __future__ import annotations

from workbench.darknet.bundle import find_bundle
from workbench.darknet.weights import read_weights
from workbench.data.folder import open_dataset
from workbench.data.images import load_bgr
from workbench.data.synth import CLASS_NAMES, make_demo_dataset
from workbench.detect.detector import Detector
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate


def test_demo_bundle_is_small_and_names_the_demo_classes():
    bundle = find_bundle("demo")
    assert bundle.class_names() == CLASS_NAMES
    total = sum(p.stat().st_size for p in (bundle.cfg, bundle.weights, bundle.names))
    assert total < 5 * 1024 * 1024
    cfg = bundle.read_cfg()
    assert len(read_weights(bundle.weights, cfg, allow_partial=False).layers) > 0


def test_demo_model_finds_the_shapes_of_a_fresh_dataset(tmp_path):
    bundle = find_bundle("demo")
    cfg = bundle.read_cfg()
    # a seed the model never saw in training (it was trained on seed 0)
    root = make_demo_dataset(tmp_path / "fresh", images=60, seed=20240917, valid_fraction=0.0)
    dataset = open_dataset(root)
    detector = Detector(bundle, backend="cpu", size=(cfg.width, cfg.height))
    assert detector.backend.name.startswith("opencv")
    gt, pred = {}, {}
    for record in dataset.images:
        found = detector.detect(load_bgr(record.path), conf=0.005, nms=0.45)
        gt[record.name] = GroundTruth.from_boxes(record.boxes)
        pred[record.name] = Predictions(found.boxes, found.scores, found.class_ids)
    result = evaluate(gt, pred, len(CLASS_NAMES), iou_threshold=0.5, metric="voc")
    assert result.map50 >= 0.9, {k: round(v.ap, 3) for k, v in result.per_class.items()}
