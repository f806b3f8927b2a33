"""The training loop on a micro model: it learns, exports what OpenCV runs, resumes, freezes,
stops early, and runs under tf.distribute on two logical CPU devices."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

tf = pytest.importorskip("tensorflow")

from workbench.darknet.cfg import read_cfg  # noqa: E402
from workbench.darknet.weights import random_weights, truncate, write_weights  # noqa: E402
from workbench.data.synth import make_demo_dataset  # noqa: E402
from workbench.train.loop import TrainSettings, train  # noqa: E402
from workbench.train.protocol import Reporter, read_metrics_csv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# the micro model every training test uses (see the file's header)
MICRO_CFG = (ROOT / "tests" / "data" / "micro.cfg").read_text()


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, event: str, **fields) -> None:
        self.events.append({"event": event, **fields})

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    folder = tmp_path_factory.mktemp("micro")
    cfg = folder / "micro.cfg"
    cfg.write_text(MICRO_CFG)
    data = make_demo_dataset(folder / "data", images=24, seed=3, size=64, valid_fraction=0.25)
    return cfg, data


def _settings(micro, out, **kw) -> TrainSettings:
    cfg, data = micro
    base = dict(dataset=data, template=str(cfg), size=64, epochs=2, batch=6, lr=3e-3,
                out=out, patience=0, augment=False)
    base.update(kw)
    return TrainSettings(**base)


@pytest.fixture(scope="module")
def trained(micro, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    rec = Recorder()
    result = train(_settings(micro, out, epochs=8, augment=True, policy="cosine"), rec)
    return result, rec


def test_micro_model_loss_decreases(trained):
    result, rec = trained
    assert result.status == "finished" and result.steps == 8 * 3
    losses = [e["loss"] for e in rec.of("epoch")]
    assert len(losses) == 8 and all(np.isfinite(losses))
    # the fresh heads start from the objectness prior, so the first epoch's loss is already
    # far below objectness 0.5's; what is left still falls by more than 15 %
    assert np.mean(losses[-2:]) < 0.85 * losses[0]
    batches = rec.of("batch")
    assert [b["step"] for b in batches] == list(range(1, 25))
    assert all(b["lr"] > 0 and b["images_per_s"] > 0 for b in batches)


def test_run_folder_has_checkpoints_bundle_metrics_and_plot(trained):
    result, rec = trained
    run = result.run_dir
    rows = read_metrics_csv(run / "metrics.csv")
    assert [r["epoch"] for r in rows] == list(range(1, 9))
    assert all(r["val_map50"] is not None and 0 <= r["val_map50"] <= 1 for r in rows)
    assert Image.open(run / "metrics.png").size == (800, 360)
    assert {p.suffix for p in (run / "bundle").iterdir()} >= {".cfg", ".weights", ".names"}
    assert (run / "bundle" / "model.names").read_text().split() == [
        "circle", "square", "triangle", "star"]
    assert tf.train.latest_checkpoint(str(run / "checkpoints"))
    best = max(rows, key=lambda r: r["val_map50"])
    assert result.best_epoch == best["epoch"]
    assert rec.events[-1]["event"] == "done" and rec.events[0]["event"] == "start"


def _best_keras_model(run: Path):
    from workbench.darknet.cfg import read_cfg
    from workbench.network.keras_model import build_model
    from workbench.train.ema import WeightAverage

    cfg = read_cfg(run / "model.cfg")
    model = build_model(cfg)
    # what the bundle holds is the checkpoint's weight average, not its live weights
    average = WeightAverage(model.trainable_variables)
    tf.train.Checkpoint(model=model, weight_average=average.module).restore(
        tf.train.latest_checkpoint(str(run / "best"))).expect_partial()
    for v, shadow in zip(average.variables, average.shadows, strict=True):
        v.assign(shadow)
    return cfg, model


def test_exported_bundle_runs_in_opencv_like_the_best_checkpoint(trained, tmp_path):
    import cv2

    from workbench.network.keras_model import decode_outputs, heads_info

    run = trained[0].run_dir
    cfg, model = _best_keras_model(run)
    # OpenCV zeroes class scores under [yolo] thresh; a copy with thresh=0 shows them all
    text = (run / "bundle" / "model.cfg").read_text().replace("[yolo]", "[yolo]\nthresh=0")
    (tmp_path / "m.cfg").write_text(text)
    net = cv2.dnn.readNetFromDarknet(str(tmp_path / "m.cfg"), str(run / "bundle" / "model.weights"))
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    net.setInput(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    ours = decode_outputs([o.numpy() for o in model(x, training=False)], heads_info(cfg), 64, 64)
    theirs = net.forward(net.getUnconnectedOutLayersNames())
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.reshape(-1, 9), b.reshape(-1, 9), atol=1e-4)


def test_validation_map_equals_the_detectors(trained):
    from workbench.data.folder import open_dataset
    from workbench.data.images import load_bgr
    from workbench.detect.detector import Detector
    from workbench.evaluation.evaluate import Predictions, evaluate
    from workbench.train.loop import _ground_truth

    result, rec = trained
    best_row = [e for e in rec.of("epoch") if e["epoch"] == result.best_epoch][0]
    dataset = open_dataset(Path(rec.of("start")[0]["dataset"]))
    valid = dataset.split["valid"]
    detector = Detector(result.bundle, backend="cpu", size=64)
    preds = {}
    for r in valid:
        d = suppress_all(detector, load_bgr(r.path))
        preds[str(r.path)] = Predictions(d.boxes, d.scores, d.class_ids)
    ours = evaluate(_ground_truth(valid), preds, 4, iou_threshold=0.5, metric="voc").map50
    assert ours == pytest.approx(best_row["val_map50"], abs=2e-3)


def suppress_all(detector, image):
    from workbench.detect.detector import suppress

    return suppress(detector.candidates(image, conf=0.005), 0.45)


def test_resume_restores_step_optimizer_and_schedule(micro, tmp_path):
    out = tmp_path / "run"
    first = train(_settings(micro, out, epochs=1))
    assert first.steps == 3
    rec = Recorder()
    second = train(_settings(micro, out, epochs=3, resume=True), rec)
    start = rec.of("start")[0]
    assert start["resumed"] and start["step"] == 3 and start["start_epoch"] == 2
    assert second.steps == 9 and second.epochs_done == 3
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(out / "checkpoints")))
    iterations = [k for k in reader.get_variable_to_shape_map() if k.startswith("optimizer/")
                  and "iterations" in k]
    assert iterations and reader.get_tensor(iterations[0]) == 9
    # the schedule is the run's, saved at the start: 3 epochs resumed on a 1-epoch schedule
    config = json.loads((out / "config.json").read_text())
    rows = read_metrics_csv(out / "metrics.csv")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert config["schedule"]["total_steps"] == 3
    with pytest.raises(Exception, match="already holds a training run"):
        train(_settings(micro, out))


def test_freeze_first_epochs_then_unfreeze(micro, tmp_path):
    cfg_path, _ = micro
    from workbench.darknet.cfg import customize

    cfg = customize(read_cfg(cfg_path), 4, 64, 64)
    start = truncate(random_weights(cfg, seed=1), 5)  # the first 5 layers: a "conv.5" file
    write_weights(start, tmp_path / "start.weights")
    out = tmp_path / "run"
    rec = Recorder()
    train(_settings(micro, out, weights=tmp_path / "start.weights", freeze_epochs=1), rec)
    assert rec.of("start")[0]["frozen_layers"] == 5
    assert [e["frozen"] for e in rec.of("epoch")] == [True, False]
    # the ETA at the end of the frozen epoch prices the unfrozen epoch's steps higher (until
    # they are timed): 3 steps at UNFROZEN_STEP_COST times the frozen step time
    from workbench.train.loop import UNFROZEN_STEP_COST

    last_frozen = [b for b in rec.of("batch") if b["epoch"] == 1][-1]
    frozen_step = 6 / last_frozen["images_per_s"]  # batch 6
    assert last_frozen["eta_s"] == pytest.approx(3 * UNFROZEN_STEP_COST * frozen_step, rel=1e-6)
    from workbench.network.keras_model import build_model

    paths = sorted(tf.train.get_checkpoint_state(str(out / "checkpoints")).all_model_checkpoint_paths,
                   key=lambda p: int(p.rsplit("-", 1)[1]))
    kernels = []
    for path in paths:
        model = build_model(cfg)
        tf.train.Checkpoint(model=model).restore(path).expect_partial()
        kernels.append((model.get_layer("conv_0").get_weights()[0],
                        model.get_layer("bn_0").get_weights()[3],
                        model.get_layer("conv_9").get_weights()[0]))
    loaded = np.transpose(start.layers[0].kernel, (2, 3, 1, 0))
    np.testing.assert_array_equal(kernels[0][0], loaded)  # frozen: untouched
    np.testing.assert_array_equal(kernels[0][1], start.layers[0].variance)  # BN stats too
    assert not np.array_equal(kernels[1][0], loaded)  # unfrozen: trained
    assert not np.array_equal(kernels[0][2], kernels[1][2])  # heads train in both phases


def test_early_stopping_on_map_with_patience(micro, tmp_path):
    import shutil

    cfg, data = micro
    # validation images labeled empty: mAP stays 0, so no epoch after the first is better
    flat = shutil.copytree(data, tmp_path / "data")
    for name in (flat / "valid.txt").read_text().split():
        (flat / name).with_suffix(".txt").write_text("")
    rec = Recorder()
    result = train(_settings((cfg, flat), tmp_path / "run", epochs=6, patience=2), rec)
    assert result.status == "early_stopped"
    # patience ran out after epoch 3, but the stop waits for the learning rate's decay
    from workbench.train.schedule import LearningRateSchedule

    config = json.loads((tmp_path / "run" / "config.json").read_text())
    schedule = LearningRateSchedule.from_dict(config["schedule"])
    steps_per_epoch = rec.of("start")[0]["steps_per_epoch"]
    first_allowed = max(3, -(-schedule.decay_step() // steps_per_epoch))
    assert first_allowed > 3  # the old rule stopped at epoch 3, before the decay
    assert schedule.rate(schedule.decay_step()) < schedule.rate(schedule.decay_step() - 1)
    assert result.epochs_done == first_allowed < 6 and result.best_epoch == 1
    assert rec.of("done")[0]["status"] == "early_stopped"


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(micro, tmp_path):
    cfg, data = micro
    script = textwrap.dedent(f"""
        import json, sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from workbench.train.loop import TrainSettings, train
        from workbench.train.protocol import JsonLinesReporter
        train(TrainSettings(dataset={str(data)!r}, template={str(cfg)!r}, size=64, epochs=1,
                            batch=6, out={str(tmp_path / "run")!r}, strategy="mirrored",
                            augment=False), JsonLinesReporter())
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=240, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    start = events[0]
    assert start["event"] == "start" and start["replicas"] == 2 and start["batch"] == 6
    assert events[-1]["event"] == "done" and events[-1]["status"] == "finished"
    assert all(np.isfinite(e["loss"]) for e in events if e["event"] == "batch")


def test_a_cfg_with_a_single_yolo_head_trains_and_exports(micro, tmp_path):
    # Keras returns a bare tensor for a one-output model; every caller must still see a list
    cfg, data = micro
    one_head = MICRO_CFG[:MICRO_CFG.index("[route]\nlayers=-3")]
    path = tmp_path / "one_head.cfg"
    path.write_text(one_head)
    assert len(read_cfg(path).yolo_layers()) == 1
    result = train(_settings((path, data), tmp_path / "run", epochs=1), Recorder())
    from workbench.detect.detector import Detector

    assert len(list(result.bundle.glob("*.weights"))) == 1
    detector = Detector(result.bundle, backend="tensorflow", size=64)
    found = detector.detect(np.zeros((64, 64, 3), np.uint8), conf=0.001)
    assert found.boxes.shape[1] == 4


def test_validation_map_equals_workbench_detect_plus_eval(trained, micro, tmp_path, capsys):
    # the figure the trainer reports for its best epoch is what a user gets from the CLI on
    # the same bundle, images and thresholds (conf 0.005, NMS 0.45, VOC all-point); the
    # merged-boxes figures of its calibration are detect --merge-boxes + eval's
    from workbench.cli import main

    result, rec = trained
    _, data = micro
    best_row = [e for e in rec.of("epoch") if e["epoch"] == result.best_epoch][0]
    done = rec.of("done")[0]
    for flag, want50, want95 in (
            ("--no-merge-boxes", best_row["val_map50"], best_row["val_map50_95"]),
            ("--merge-boxes", done["merged_map50"], done["merged_map50_95"])):
        pred = tmp_path / f"pred{flag}"
        assert main(["detect", str(data / "valid.txt"), "--model", str(result.bundle),
                     "--conf", "0.005", "--nms", "0.45", flag, "--out", str(pred)]) == 0
        capsys.readouterr()
        assert main(["eval", "--gt", str(data), "--pred", str(pred), "--split", "valid",
                     "--metric", "voc", "--json"]) == 0
        figures = json.loads(capsys.readouterr().out)
        assert figures["images"] == len((data / "valid.txt").read_text().split())
        assert figures["map50"] == pytest.approx(want50, abs=1e-4)
        assert main(["eval", "--gt", str(data), "--pred", str(pred), "--split", "valid",
                     "--metric", "coco", "--json"]) == 0
        coco = json.loads(capsys.readouterr().out)
        assert coco["map50_95"] == pytest.approx(want95, abs=1e-4)


def _best_epoch_by(epochs: list[dict], score) -> int:
    # (the micro model may learn nothing in a few epochs: all equal, the first is the best)
    scores = [score(e["val_map50"] or 0.0, e["val_map50_95"] or 0.0) for e in epochs]
    return epochs[int(np.argmax(scores))]["epoch"]  # the first of equals, as the trainer


def test_default_recipe_trains_more_anchors_towards_iou(trained):
    # the defaults measured best on BCCD: iou_thresh 0.213 and scale_x_y 2 (written where
    # darknet and OpenCV read them) and the IoU objectness target
    result, _ = trained
    cfg = read_cfg(next(result.bundle.glob("*.cfg")))
    assert {cfg.layers[i].options["iou_thresh"] for i in cfg.yolo_layers()} == {"0.213"}
    assert {cfg.layers[i].options["scale_x_y"] for i in cfg.yolo_layers()} == {"2"}
    saved = json.loads((result.run_dir / "config.json").read_text())["settings"]
    assert (saved["anchor_iou"], saved["scale_xy"], saved["objectness"],
            saved["best_by"]) == (None, None, "iou", "fitness")


def test_a_templates_own_anchor_iou_and_scale_xy_are_kept(micro, tmp_path):
    cfg_path, data = micro
    own = tmp_path / "own.cfg"
    own.write_text(cfg_path.read_text().replace("[yolo]",
                                                "[yolo]\niou_thresh=0.5\nscale_x_y=1.05"))
    result = train(_settings(micro, tmp_path / "run", template=str(own), epochs=1), Recorder())
    cfg = read_cfg(next(result.bundle.glob("*.cfg")))
    assert {cfg.layers[i].options["iou_thresh"] for i in cfg.yolo_layers()} == {"0.5"}
    assert {cfg.layers[i].options["scale_x_y"] for i in cfg.yolo_layers()} == {"1.05"}


def test_fitness_weighs_map50_95_as_yolov5():
    from workbench.train.loop import epoch_score

    # ultralytics' fitness(): weights [0, 0, 0.1, 0.9] on (P, R, mAP@0.5, mAP@[.5:.95])
    assert epoch_score(0.8, 0.5, "fitness") == pytest.approx(0.1 * 0.8 + 0.9 * 0.5)
    assert epoch_score(0.8, 0.5, "map50") == 0.8
    assert epoch_score(float("nan"), None, "fitness") == 0.0  # no labeled objects


def test_best_epoch_has_the_highest_fitness(trained):
    result, rec = trained
    epochs = rec.of("epoch")
    best = _best_epoch_by(epochs, lambda m50, m95: 0.1 * m50 + 0.9 * m95)
    assert result.best_epoch == best
    done = rec.of("done")[0]
    assert done["best_map50"] == epochs[best - 1]["val_map50"]
    assert done["best_map50_95"] == epochs[best - 1]["val_map50_95"]
    # metrics.csv keeps the new column (written with 6 significant digits)
    saved = read_metrics_csv(result.run_dir / "metrics.csv")
    assert [r["val_map50_95"] for r in saved] == pytest.approx(
        [e["val_map50_95"] for e in epochs], abs=1e-6)


def test_best_by_map50_picks_the_highest_map50(micro, tmp_path):
    rec = Recorder()
    result = train(_settings(micro, tmp_path / "run", epochs=4, best_by="map50"), rec)
    epochs = rec.of("epoch")
    assert result.best_epoch == _best_epoch_by(epochs, lambda m50, m95: m50)
    assert result.best_map50 == max(e["val_map50"] for e in epochs)


def test_full_weights_for_another_class_count_start_the_run(micro, tmp_path):
    cfg_path, _ = micro
    from workbench.darknet.cfg import customize

    seven = customize(read_cfg(cfg_path), 7, 64, 64)  # the data set has 4 classes
    write_weights(random_weights(seven, seed=1), tmp_path / "seven.weights")
    rec = Recorder()
    train(_settings(micro, tmp_path / "run", weights=tmp_path / "seven.weights", epochs=1), rec)
    start = rec.of("start")[0]
    assert start["weights_report"] == ("loaded 5 of 7 conv layers; 2 [yolo] heads start "
                                       "fresh: 7 -> 4 classes")
    assert start["freeze_epochs"] == 0  # auto: at most a fifth of a 1-epoch run


def test_anchors_auto_come_from_the_training_split(micro, tmp_path):
    from workbench.darknet.anchors import kmeans_anchors
    from workbench.darknet.cfg import anchors_of
    from workbench.data.folder import open_dataset
    from workbench.train.data import split_records

    _, data = micro
    rec = Recorder()
    train(_settings(micro, tmp_path / "run", anchors="auto", epochs=1), rec)
    note = rec.of("start")[0]["anchors_report"]
    assert note.startswith("anchors from the training split: mean IoU ")
    before, after = (float(x) for x in note.split("mean IoU ")[1].split(" (the cfg's) -> "))
    assert after > before
    cfg = read_cfg(tmp_path / "run" / "model.cfg")
    got = anchors_of(cfg.layers[cfg.yolo_layers()[0]])
    train_records, _ = split_records(open_dataset(data))
    wh = np.asarray([(b.width * 64 / r.width, b.height * 64 / r.height)
                     for r in train_records for b in r.boxes])
    expected = kmeans_anchors(wh, len(got), seed=0)
    np.testing.assert_allclose(got, np.round(expected.anchors), atol=0)
    assert after == pytest.approx(expected.mean_iou, abs=5e-4)


def test_more_anchors_per_box_and_iou_objectness_train_and_export(micro, tmp_path):
    # iou_thresh is written into the cfg (darknet's key), which OpenCV must still read;
    # the objectness target is a trainer setting, kept in config.json for --resume
    from workbench.detect.detector import Detector

    result = train(_settings(micro, tmp_path / "run", anchor_iou=0.213, objectness="iou",
                             epochs=1), Recorder())
    cfg = read_cfg(next(result.bundle.glob("*.cfg")))
    assert {cfg.layers[i].options["iou_thresh"] for i in cfg.yolo_layers()} == {"0.213"}
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]
    assert (saved["anchor_iou"], saved["objectness"]) == (0.213, "iou")
    assert np.isfinite(result.metrics[-1]["loss"])
    detector = Detector(result.bundle, backend="cpu", size=64)  # OpenCV's darknet reader
    assert detector.detect(np.zeros((64, 64, 3), np.uint8), conf=0.001).boxes.shape[1] == 4


def test_scale_xy_trains_neighbour_cells_and_exports_darknets_key(micro, tmp_path):
    # scale_x_y goes into the cfg, where OpenCV's darknet reader applies it; the Keras decode
    # matches OpenCV's (test_train_export_parity.py)
    from workbench.detect.detector import Detector

    result = train(_settings(micro, tmp_path / "run", scale_xy=2.0, epochs=1), Recorder())
    cfg = read_cfg(next(result.bundle.glob("*.cfg")))
    assert {cfg.layers[i].options["scale_x_y"] for i in cfg.yolo_layers()} == {"2"}
    assert json.loads((tmp_path / "run" / "config.json").read_text())["settings"][
        "scale_xy"] == 2.0
    assert np.isfinite(result.metrics[-1]["loss"])
    detector = Detector(result.bundle, backend="cpu", size=64)
    assert detector.detect(np.zeros((64, 64, 3), np.uint8), conf=0.001).boxes.shape[1] == 4


@pytest.mark.parametrize("flags, message", [(dict(anchor_iou=1.5), "--anchor-iou"),
                                            (dict(scale_xy=0.5), "--scale-xy 0.5"),
                                            (dict(scale_xy=3.0), "--scale-xy 3"),
                                            (dict(objectness="half"), "--objectness"),
                                            (dict(best_by="loss"), "--best-by")])
def test_bad_assignment_settings_are_refused(micro, tmp_path, flags, message):
    from workbench.errors import WorkbenchError

    with pytest.raises(WorkbenchError, match=message):
        train(_settings(micro, tmp_path / "run", **flags), Recorder())
