"""The Train dock driving a REAL `workbench train --json` child (a micro model, 64 px)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ui.panels.train_panel import TrainPanel, default_run_dir
from ui.session import LabelSession
from workbench.data.folder import open_dataset
from workbench.data.synth import make_demo_dataset
from workbench.train.protocol import encode_event

RUN_MS = 120_000  # a micro run takes ~10 s alone; the CPUs are shared

# the micro model of the training tests, read from its file: importing tests/test_train_loop.py
# would load TensorFlow, which this test process, like the GUI, never does
MICRO_CFG = (Path(__file__).resolve().parents[1] / "data" / "micro.cfg").read_text()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def make_panel(qtbot, tmp_path):
    made: list[TrainPanel] = []

    def make(root: Path, epochs: int = 2) -> TrainPanel:
        session = LabelSession()
        session.set_dataset(open_dataset(root))
        panel = TrainPanel(session)
        qtbot.addWidget(panel)
        cfg = tmp_path / "micro.cfg"
        cfg.write_text(MICRO_CFG)
        panel.template.setCurrentText(str(cfg))
        panel.size.setValue(64)
        panel.epochs_box.setValue(epochs)
        panel.batch.setValue(4)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        assert panel.shutdown(5_000)
        assert not panel.running()


def _start(qtbot, panel: TrainPanel) -> int:
    assert panel.start()
    assert panel.running() and not panel.start_button.isEnabled()
    qtbot.waitUntil(lambda: panel.process_id() != 0, timeout=10_000)
    return panel.process_id()


def test_options_build_the_command_and_a_default_run_folder(make_panel, tmp_path):
    root = make_demo_dataset(tmp_path / "shapes", images=2, seed=1, size=64)
    panel = make_panel(root)
    assert panel.run_dir.text() == str(tmp_path / "runs" / "shapes-micro")
    panel.template.setCurrentText("demo-tiny")
    assert panel.size.value() == 192
    assert panel.run_dir.text() == str(default_run_dir(root, "demo-tiny"))
    panel.run_dir.setText(str(tmp_path / "mine"))
    panel.run_dir.textEdited.emit(str(tmp_path / "mine"))  # as typed by the user
    panel.template.setCurrentText("yolov3")
    assert panel.run_dir.text() == str(tmp_path / "mine")  # a typed folder is kept
    args = panel.arguments()
    assert args[:5] == ["-m", "workbench", "train", str(root), "--json"]
    assert args[args.index("--template") + 1] == "yolov3"
    assert args[args.index("--size") + 1] == "416"
    assert args[args.index("--out") + 1] == str(tmp_path / "mine")
    panel.resume.setChecked(True)  # the run keeps its own template and size
    args = panel.arguments()
    assert args[args.index("--out") + 1] == str(tmp_path / "mine")
    assert args[-1] == "--resume" and "--template" not in args
    assert "Nothing to resume" in panel.run_hint.text()


@pytest.mark.slow
def test_a_run_reports_every_event_and_emits_the_bundle(make_panel, tmp_path, qtbot):
    root = make_demo_dataset(tmp_path / "data", images=12, seed=3, size=64)
    panel = make_panel(root)
    session = panel.session
    session.go_to(0)
    assert session.add_box((2, 2, 30, 30), 3)
    assert session.dirty_indices() == [0]
    label_file = session.record.path.with_suffix(".txt")
    before = label_file.read_text()
    statuses: list[str] = []
    panel.status.connect(statuses.append)
    ready: list[str] = []
    panel.model_ready.connect(ready.append)
    with qtbot.waitSignal(panel.running_changed, timeout=RUN_MS,
                          check_params_cb=lambda running: not running):
        pid = _start(qtbot, panel)
        assert not session.dirty_indices()          # saved before the child read the files
        assert label_file.read_text().startswith(before) and label_file.read_text() != before
    assert panel.error_message() == "" and len(ready) == 1
    bundle = Path(ready[0])
    assert bundle == tmp_path / "runs" / "data-micro" / "bundle"
    assert {p.suffix for p in bundle.iterdir()} >= {".cfg", ".weights", ".names"}
    assert (bundle / "model.names").read_text().split() == ["circle", "square", "triangle",
                                                            "star"]
    assert not panel.running() and _gone(pid)
    start = panel.start_event
    assert start["classes"] == ["circle", "square", "triangle", "star"]
    total = start["epochs"] * start["steps_per_epoch"]
    assert panel.progress.maximum() == total and panel.progress.value() == total
    assert panel.table.rowCount() == 2 and len(panel.plot.rows) == 2
    assert panel.table.item(1, 0).text() == "2"
    assert 0.0 <= float(panel.table.item(1, 6).text()) <= 1.0
    assert 0.0 <= float(panel.table.item(1, 7).text()) <= 1.0  # mAP@[.5:.95]
    assert {c["kind"] for c in panel.checkpoints} == {"epoch", "best"}
    assert "img/s" in panel.latest.text() and "ETA" in panel.latest.text()
    assert panel.done_event["status"] == "finished"
    assert "best mAP@0.5" in panel.result.text() and str(bundle) in panel.result.text()
    assert panel.error_message() == ""
    assert any(s.startswith("Finished") for s in statuses)
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    # the folder now holds a run: starting afresh there would fail, the hint says so
    assert "tick Resume" in panel.run_hint.text()


@pytest.mark.slow
def test_stop_interrupts_with_a_checkpoint_and_resume_continues(make_panel, tmp_path, qtbot):
    root = make_demo_dataset(tmp_path / "data", images=12, seed=3, size=64)
    panel = make_panel(root, epochs=200)
    pid = _start(qtbot, panel)
    qtbot.waitUntil(lambda: panel.progress.value() >= 1 or not panel.running(),
                    timeout=RUN_MS)
    assert panel.running(), panel.error_message()
    with qtbot.waitSignal(panel.running_changed, timeout=60_000):
        panel.stop_button.click()
        assert panel.stop_button.text() == "Kill"   # a second click would kill
    assert _gone(pid) and panel.error_message() == ""
    done = panel.done_event
    assert done["status"] == "interrupted"
    stop = panel.checkpoints[-1]
    # a stop inside an epoch saves an "interrupt" checkpoint; one that lands during the
    # epoch's validation is covered by that epoch's own checkpoint: either way the last
    # checkpoint holds the step the run stopped at
    assert stop["kind"] in ("interrupt", "epoch") and Path(stop["path"] + ".index").is_file()
    assert stop["step"] == done["step"]
    assert "Interrupted" in panel.result.text()
    assert panel.resume.isChecked()               # Start again continues the run

    stopped_at = done["step"]
    panel.epochs_box.setValue(stopped_at // panel.start_event["steps_per_epoch"] + 1)
    with qtbot.waitSignal(panel.running_changed, timeout=RUN_MS,
                          check_params_cb=lambda running: not running):
        _start(qtbot, panel)
    assert panel.error_message() == ""
    assert panel.start_event["resumed"] and panel.start_event["step"] == stopped_at
    assert panel.done_event["status"] == "finished"
    assert panel.progress.value() == panel.progress.maximum() > stopped_at


def test_a_dataset_without_labels_shows_the_one_line_error(make_panel, tmp_path, qtbot):
    root = make_demo_dataset(tmp_path / "bare", images=3, seed=2, size=64)
    for label in root.rglob("*.txt"):
        if label.name not in ("classes.txt", "train.txt", "valid.txt"):
            label.unlink()
    panel = make_panel(root)
    with qtbot.assertNotEmitted(panel.model_ready), \
            qtbot.waitSignal(panel.running_changed, timeout=RUN_MS,
                             check_params_cb=lambda running: not running):
        pid = _start(qtbot, panel)
    assert _gone(pid)
    message = panel.error_message()
    assert message == f"{root}: no labeled images to train on"
    assert panel.result.text() == message and panel.done_event is None
    assert panel.start_button.isEnabled()


def test_a_second_stop_kills_and_shutdown_leaves_no_child(make_panel, tmp_path, qtbot):
    root = make_demo_dataset(tmp_path / "data", images=2, seed=4, size=64)
    panel = make_panel(root, epochs=100)
    ready: list[str] = []
    panel.model_ready.connect(ready.append)
    pid = _start(qtbot, panel)
    panel.kill_after_ms = 60_000                  # only the second click may kill this soon
    with qtbot.waitSignal(panel.running_changed, timeout=20_000):
        panel.stop()
        panel.stop()
    assert _gone(pid) and not panel.running()
    assert panel.error_message() == "Training stopped before it saved a checkpoint."
    assert panel.start_button.isEnabled() and panel.stop_button.text() == "Stop"

    pid = _start(qtbot, panel)
    assert panel.shutdown(200)                    # the window closing: never waits long
    assert _gone(pid) and not panel.running() and not ready


def test_the_window_has_a_train_dock_whose_model_is_offered_not_forced(open_window, demo,
                                                                       tmp_path):
    from tests.model_factory import random_bundle

    w = open_window(demo)
    assert w.docks["train"].widget().widget() is w.trainer and not w.docks["train"].isVisible()
    bundle = random_bundle(tmp_path / "model", "yolov3-tiny", classes=4, size=160)
    w.trainer.model_ready.emit(str(bundle.cfg.parent))   # no finished run: listed only
    assert str(w.prelabeler.model) == "demo"
    assert w.detector_panel.picker.findData(str(bundle.cfg.parent)) >= 0


def test_images_left_out_before_training_are_shown(make_panel, tmp_path):
    root = make_demo_dataset(tmp_path / "data", images=4, seed=2, size=64)
    panel = make_panel(root)
    cut = str(root / "img_00001.jpg")
    panel._line(encode_event("start", images_train=3, images_valid=0, classes=["a"], width=64,
                             height=64, epochs=1, steps_per_epoch=1,
                             skipped_images=[f"{cut}: cannot decode image: truncated"]).encode())
    assert "1 image(s) left out" in panel.result.text()
    assert cut in panel.result.toolTip()


def test_resume_sends_no_settings_the_run_keeps_and_shows_the_saved_ones(make_panel, tmp_path):
    """`train --resume` refuses settings that differ from the run's (issue 23.1): the dock
    sends only Epochs on resume, and ticking Resume shows the run's own size/epochs/batch."""
    from ui.panels.train_panel import train_arguments

    args = train_arguments(Path("ds"), "yolov3-tiny", 416, 8, 4, Path("run"), resume=True)
    assert "--resume" in args and args[args.index("--epochs") + 1] == "8"
    assert not {"--template", "--size", "--batch"} & set(args)

    root = make_demo_dataset(tmp_path / "data", images=4, seed=3, size=64)
    run = tmp_path / "run"
    run.mkdir()
    settings = {"size": 96, "epochs": 3, "batch": 2}
    (run / "config.json").write_text(json.dumps({"settings": settings}))
    panel = make_panel(root, epochs=50)
    panel.run_dir.setText(str(run))
    # a config.json read_config refuses shows nothing (the child says why on Start)
    panel.resume.setChecked(True)
    assert panel.epochs_box.value() == 50
    panel.resume.setChecked(False)
    from workbench.train.run_folder import RUN_SETTINGS

    full = {**{key: _example(types) for key, types in RUN_SETTINGS.items()}, **settings}
    (run / "config.json").write_text(json.dumps(
        {"classes": ["circle"], "settings": full, "schedule": {}, "steps_per_epoch": 1}))
    panel.resume.setChecked(True)
    assert (panel.size.value(), panel.epochs_box.value(), panel.batch.value()) == (96, 3, 2)


def _example(types):
    kinds = types if isinstance(types, tuple) else (types,)
    for kind, value in ((str, "x"), (int, 1), (float, 0.5), (bool, False), (type(None), None)):
        if kind in kinds:
            return value
    raise AssertionError(f"no example for {types}")
