"""Calibrated scores: the pooled best-F1 operating point, and `detect` using the threshold a
training run stored in the bundle (thresholds.json) when --conf is not given."""

from __future__ import annotations

import numpy as np
import pytest
from data_factory import random_box_array

from workbench.cli import main
from workbench.darknet.bundle import find_bundle, read_model_conf, write_model_conf
from workbench.data.images import list_images, load_bgr
from workbench.data.synth import make_demo_dataset
from workbench.detect.detector import Detector
from workbench.errors import ModelError
from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate
from workbench.evaluation.operating_point import operating_point


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    gt, pred = {}, {}
    for k in range(12):
        n = int(rng.integers(0, 5))
        boxes = random_box_array(rng, n, 200, (20, 60))
        classes = rng.integers(0, 3, n)
        gt[f"im{k}"] = GroundTruth(boxes, classes)
        # some detections near the truths, some anywhere, scores at random
        near = boxes + rng.normal(0, 6, boxes.shape) if n else np.zeros((0, 4))
        m = int(rng.integers(0, 4))
        xy2 = rng.uniform(0, 200, (m, 2))
        far = np.c_[xy2, xy2 + 40]
        det = np.r_[near, far]
        pred[f"im{k}"] = Predictions(det, rng.uniform(0.01, 1, len(det)).round(2),
                                     np.r_[classes, rng.integers(0, 3, m)])
    return gt, pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_f1_point_matches_a_brute_force_over_thresholds(seed):
    gt, pred = _random_case(seed)
    result = evaluate(gt, pred, 3, iou_threshold=0.5, metric="voc")
    point = operating_point(result, pred, 0.25)
    n_gt = sum(len(g.boxes) for g in gt.values())

    def counts(t):  # a full evaluation of the detections kept at threshold t
        kept = {k: Predictions(p.boxes[p.scores >= t], p.scores[p.scores >= t],
                               p.class_ids[p.scores >= t]) for k, p in pred.items()}
        r = evaluate(gt, kept, 3, iou_threshold=0.5, metric="voc")
        tp = sum(im.tp for im in r.per_image.values())
        fp = sum(im.fp for im in r.per_image.values())
        return tp, fp

    best = (-1.0, None)
    for t in sorted({float(s) for p in pred.values() for s in p.scores}):
        tp, fp = counts(t)
        f1 = 2 * tp / max(2 * tp + fp + (n_gt - tp), 1)
        if f1 > best[0] + 1e-12:
            best = (f1, t)
    assert point.f1 == pytest.approx(best[0])
    tp, _ = counts(point.conf)
    assert 2 * tp / (2 * tp + counts(point.conf)[1] + n_gt - tp) == pytest.approx(best[0])
    assert point.recall_at == pytest.approx(counts(0.25)[0] / n_gt)


def test_detect_uses_the_bundles_calibrated_conf_and_says_so(model, tmp_path, capsys):
    root = make_demo_dataset(tmp_path / "ds", images=2, seed=1, size=192)
    image = list_images(root)[0]
    folder = model.cfg.parent
    scores = Detector(model, "cpu", size=160).detect(load_bgr(image), conf=0.001).scores
    conf = float(np.quantile(scores, 0.5))  # keeps about half of what 0.001 keeps
    write_model_conf(folder, conf, "test")
    try:
        assert read_model_conf(find_bundle(folder)) == pytest.approx(conf, abs=1e-4)
        assert main(["detect", str(image), "--model", str(folder), "--backend", "cpu"]) == 0
        captured = capsys.readouterr()
        assert f"using the model's calibrated --conf {round(conf, 4):g}" in captured.err
        lines = [ln for ln in captured.out.splitlines() if "\t" in ln]
        expected = Detector(model, "cpu", size=160).detect(load_bgr(image), conf=round(conf, 4))
        assert len(lines) == len(expected.scores) > 0
        # --conf given: the user's threshold, no note
        assert main(["detect", str(image), "--model", str(folder), "--backend", "cpu",
                     "--conf", "0.999"]) == 0
        captured = capsys.readouterr()
        assert "calibrated" not in captured.err
        assert not [ln for ln in captured.out.splitlines() if "\t" in ln]
    finally:
        (folder / "thresholds.json").unlink()


def test_a_broken_thresholds_file_names_the_file(model, tmp_path):
    (tmp_path / "thresholds.json").write_text('{"conf": 3}')
    bundle = find_bundle(model.cfg.parent)
    import shutil

    for f in (bundle.cfg, bundle.weights, bundle.names):
        shutil.copy(f, tmp_path / f.name)
    with pytest.raises(ModelError, match="thresholds.json: conf 3.0 is not between 0 and 1"):
        read_model_conf(find_bundle(tmp_path))
