"""The training events and settings, each defined once: every event round-trips through its
JSON line, and the CLI's defaults are TrainSettings' (no TensorFlow needed)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from workbench.cli import build_parser
from workbench.train import events as ev
from workbench.train.protocol import EVENTS, HumanReporter, JsonLinesReporter, encode_event
from workbench.train.settings import KEPT, LEGACY, RUN_SETTINGS, TrainSettings

# one event of each kind, every field set as the trainer sets it
EXAMPLES = [
    ev.Started(run_dir="runs/x", dataset="data", template="yolov3-tiny", classes=["a", "b"],
               width=416, height=416, epochs=3, start_epoch=1, step=0, steps_per_epoch=5,
               batch=8, images_train=40, images_valid=4, strategy="default", replicas=1,
               resumed=False, optimizer="adam", lr=0.001, policy="cosine", freeze_epochs=0,
               frozen_layers=0, skipped_images=["x.jpg: cannot decode"], precision="float32",
               ema=0.9998, weights_report=None, anchors_report="anchors ...",
               resume_note=None),
    ev.StepProgress(epoch=1, batch=2, step=2, box=1.5, obj=2.25, cls=0.5, loss=4.25,
                    lr=1e-4, images_per_s=12.5, eta_s=100.0),
    ev.EpochEnded(epoch=1, step=5, loss=4.0, box=1.0, obj=2.0, cls=1.0, lr=1e-3,
                  val_map50=0.5, val_map50_95=None, images_per_s=10.0, seconds=3.5,
                  best_map50=0.5, best_map50_95=None, best_epoch=1, frozen=False, eta_s=7.0),
    ev.Checkpointed(kind="epoch", path="runs/x/checkpoints/ckpt-5", epoch=1, step=5),
    ev.Checkpointed(kind="best", path="runs/x/best/ckpt-5", epoch=1, step=5,
                    bundle="runs/x/bundle", val_map50=0.5, val_map50_95=None),
    ev.Finished(status="finished", run_dir="runs/x", bundle="runs/x/bundle", best_map50=0.5,
                best_map50_95=0.25, best_epoch=1, epoch=3, step=15,
                metrics_csv="runs/x/metrics.csv", plot="runs/x/metrics.png",
                best_f1_conf=0.3, best_f1=0.6, recall_at_best_f1=0.7,
                recall_at_default_conf=0.65, default_conf=0.25, conf_stored=False),
    # interrupted before the run started: fewer keys, none written as null
    ev.Finished(status="interrupted", run_dir="runs/x", bundle=None, best_map50=None,
                best_epoch=0, epoch=0, step=0),
    ev.Finished(status="finished", run_dir="runs/x", weights_sha256="ab" * 32, bundle=None,
                best_map50=None, best_map50_95=None, best_epoch=0, epoch=1, step=3,
                metrics_csv="m.csv", plot="m.png"),
    ev.Failed(message="data: no labeled images to train on"),
]


def test_every_event_kind_has_an_example():
    assert {type(e) for e in EXAMPLES} == set(ev.EVENT_TYPES.values())
    assert EVENTS == ("start", "batch", "epoch", "checkpoint", "done", "error")


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.event)
def test_every_event_round_trips_through_its_json_line(event):
    line = event.to_json()
    assert "\n" not in line
    assert ev.from_json(line) == event
    obj = json.loads(line)
    assert obj["event"] == event.event and list(obj)[1:] == list(event.fields())
    # the protocol's functions write and read the same line
    assert encode_event(event.event, **event.fields()) == line
    assert ev.from_dict(obj) == event


def test_a_line_is_what_the_protocol_wrote_before_events_were_typed():
    """Key order, separators and absent keys as ``json.dumps({"event": ..., **fields})``."""
    interrupted = EXAMPLES[6]
    assert interrupted.to_json() == json.dumps(
        {"event": "done", "status": "interrupted", "run_dir": "runs/x", "bundle": None,
         "best_map50": None, "best_epoch": 0, "epoch": 0, "step": 0}, separators=(",", ":"))
    best = EXAMPLES[4]
    assert list(json.loads(best.to_json())) == ["event", "kind", "path", "epoch", "step",
                                                "bundle", "val_map50", "val_map50_95"]
    assert "bundle" not in json.loads(EXAMPLES[3].to_json())


def test_nan_and_numpy_numbers_are_written_as_json():
    np = pytest.importorskip("numpy")
    line = ev.StepProgress(epoch=1, loss=float("nan"), lr=np.float32(0.5),
                           step=np.int64(3)).to_json()
    assert json.loads(line) == {"event": "batch", "epoch": 1, "step": 3, "loss": None,
                                "lr": 0.5}


def test_events_read_like_their_json_objects():
    best = EXAMPLES[4]
    assert best["kind"] == "best" and best["event"] == "checkpoint"
    assert best.get("bundle") == "runs/x/bundle"
    epoch = EXAMPLES[3]
    assert epoch.get("bundle") is None and epoch.get("bundle", "-") == "-"
    with pytest.raises(KeyError):
        epoch["bundle"]


def test_lines_that_are_no_event_are_refused():
    for line in ('{"event": "bogus"}', "[1, 2]", "not json", '{"no": "event"}'):
        with pytest.raises(ValueError):
            ev.from_json(line)
    with pytest.raises(ValueError):
        ev.make("batch", nonsense=1)  # the trainer's own events are checked
    # a newer trainer's extra field does not stop the window from reading the line
    assert ev.from_json('{"event":"error","message":"m","new":1}') == ev.Failed(message="m")


def test_the_reporters_take_the_events(tmp_path):
    path = tmp_path / "out.txt"
    with path.open("w") as stream:
        json_lines = JsonLinesReporter(stream)
        for event in EXAMPLES:
            json_lines.report(event)
        json_lines.emit("error", message="again")  # the untyped call the CLI makes
    lines = path.read_text().splitlines()
    assert [ev.from_json(line) for line in lines] == [*EXAMPLES, ev.Failed(message="again")]
    with path.open("w") as stream:
        human = HumanReporter(stream)
        for event in EXAMPLES:
            human.report(event)
    text = path.read_text()
    assert "training 40 images (4 for validation), 3 epochs of 5 steps" in text
    assert "epoch 1: loss 4.0000 (box 1.000 obj 2.000 cls 1.000) lr 1.00e-03 mAP@0.5 0.5000" \
        in text
    assert "finished: best epoch 1: mAP@0.5 0.5000, mAP@[.5:.95] 0.2500; model bundle " \
        "runs/x/bundle" in text
    assert "error: data: no labeled images to train on" in text


# --- the settings ---------------------------------------------------------------------


def _train_args(*flags: str):
    return build_parser().parse_args(["train", "DATA", *flags])


def test_the_cli_defaults_are_the_settings_defaults():
    from workbench.commands.train import _settings

    args = _train_args()
    settings = _settings(args)
    assert settings == TrainSettings(dataset=Path("DATA"), explicit=frozenset())
    assert args.strategy == TrainSettings.strategy  # the one flag with an argparse default


def test_the_help_states_the_settings_defaults():
    import argparse

    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in train.choices["train"]._actions}
    d = TrainSettings(dataset=Path("."))
    for key, shown in (("template", d.template), ("size", d.size), ("epochs", d.epochs),
                       ("batch", d.batch), ("lr", "0.001"), ("optimizer", d.optimizer),
                       ("policy", d.policy), ("patience", d.patience), ("ema", "0.9998"),
                       ("name", d.name), ("seed", d.seed), ("rotate", "0"), ("zoom", "0")):
        assert f"(default {shown}" in helps[key], key


def test_the_run_file_is_the_settings(tmp_path):
    settings = TrainSettings(dataset=tmp_path, weights=tmp_path / "w.weights", epochs=7)
    run = settings.to_run_file()
    assert "explicit" not in run and run["weights"] == str(tmp_path / "w.weights")
    back = TrainSettings.from_run_file(run)
    assert back == dataclasses.replace(settings, explicit=None)
    # a run file from before a setting existed: what those runs trained with
    old = {k: v for k, v in run.items() if k not in LEGACY}
    back = TrainSettings.from_run_file(old, dataset=tmp_path)
    assert (back.objectness, back.best_by, back.ema, back.precision) == ("one", "map50", 0.0,
                                                                          "float32")
    # today's default differs from what the old run files meant, on purpose
    assert TrainSettings.objectness == "iou" and LEGACY["objectness"] == "one"
    assert set(RUN_SETTINGS) <= {f.name for f in dataclasses.fields(TrainSettings)}
    assert "epochs" not in KEPT and "template" in KEPT and "strategy" not in KEPT
