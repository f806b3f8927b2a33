"""`workbench train` as a child process, the way the GUI runs it: JSON lines, signals, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.data.synth import make_demo_dataset
from workbench.train.protocol import EVENTS, encode_event, parse_event

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("cli") / "data", images=16, seed=5,
                             size=64, valid_fraction=0.25)


@pytest.fixture(scope="module")
def micro_cfg():
    return Path(__file__).parent / "data" / "micro.cfg"


def _train_cmd(dataset, cfg, out, *extra):
    return [sys.executable, "-m", "workbench", "train", str(dataset), "--template", str(cfg),
            "--size", "64", "--batch", "4", "--out", str(out), "--json", *extra]


def _events(stdout: str) -> list[dict]:
    # every line, not just some: the GUI parses each line as one JSON object
    return [parse_event(line) for line in stdout.splitlines()]


@pytest.mark.slow
def test_json_protocol_reports_every_event_on_its_own_line(dataset, micro_cfg, tmp_path):
    proc = subprocess.run(_train_cmd(dataset, micro_cfg, tmp_path / "run", "--epochs", "2"),
                          capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = _events(proc.stdout)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.count("epoch") == 2 and kinds.count("batch") == 2 * 3
    start = events[0]
    assert start["classes"] == ["circle", "square", "triangle", "star"]
    assert (start["images_train"], start["images_valid"], start["batch"]) == (12, 4, 4)
    batch = next(e for e in events if e["event"] == "batch")
    assert set(batch) >= {"epoch", "batch", "step", "box", "obj", "cls", "loss", "lr",
                          "images_per_s", "eta_s"}
    epoch = next(e for e in events if e["event"] == "epoch")
    assert set(epoch) >= {"epoch", "step", "box", "obj", "cls", "loss", "lr", "images_per_s",
                          "eta_s", "val_map50", "best_map50"}
    assert 0.0 <= epoch["val_map50"] <= 1.0
    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert {c["kind"] for c in checkpoints} == {"epoch", "best"}
    assert all(Path(c["path"] + ".index").is_file() for c in checkpoints if c["kind"] == "epoch"
               and c is checkpoints[-1])
    done = events[-1]
    assert done["status"] == "finished" and Path(done["bundle"], "model.weights").is_file()
    assert Path(done["metrics_csv"]).is_file() and Path(done["plot"]).is_file()


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_continues(dataset, micro_cfg, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(dataset, micro_cfg, run, "--epochs", "50"),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=ENV, cwd=ROOT)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if parse_event(line)["event"] == "batch":
                proc.send_signal(signal.SIGTERM)
                break
        lines.extend(proc.stdout)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    events = _events("".join(lines))
    stop = [e for e in events if e["event"] == "checkpoint"][-1]
    assert stop["kind"] == "interrupt" and Path(stop["path"] + ".index").is_file()
    assert events[-1]["event"] == "done" and events[-1]["status"] == "interrupted"
    stopped_at = events[-1]["step"]
    assert 1 <= stopped_at < 50 * 3

    again = subprocess.run(_train_cmd(dataset, micro_cfg, run, "--epochs", "2", "--resume"),
                           capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = _events(again.stdout)
    assert resumed[0]["resumed"] and resumed[0]["step"] == stopped_at
    steps = [e["step"] for e in resumed if e["event"] == "batch"]
    assert steps == list(range(stopped_at + 1, 2 * 3 + 1))  # no step repeated or skipped
    assert resumed[-1]["status"] == "finished"


def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, dataset):
    proc = subprocess.run([sys.executable, "-m", "workbench", "train", str(tmp_path / "nope")],
                          capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"workbench train: error: {tmp_path / 'nope'}: dataset folder not found")
    proc = subprocess.run([sys.executable, "-m", "workbench", "train", str(dataset), "--json",
                           "--template", "no-such-template", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    assert proc.returncode == 2
    (event,) = _events(proc.stdout)
    assert event["event"] == "error" and "no-such-template: no such template" in event["message"]


def test_without_tensorflow_the_message_says_how_to_install_it(tmp_path, dataset):
    # an import of tensorflow fails as it does where the train extra is not installed
    script = ("import sys; sys.modules['tensorflow'] = None\n"
              "from workbench.cli import main\n"
              f"sys.exit(main(['train', {str(dataset)!r}, '--out', {str(tmp_path / 'r')!r}]))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 2
    assert 'pip install -e ".[train]"' in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_lists_the_options():
    proc = subprocess.run([sys.executable, "-m", "workbench", "train", "--help"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0
    for flag in ("--template", "--weights", "--size", "--epochs", "--batch", "--lr",
                 "--freeze-epochs", "--out", "--resume", "--json", "--strategy"):
        assert flag in proc.stdout


def test_protocol_lines_are_strict_json():
    line = encode_event("epoch", epoch=1, loss=float("nan"), val_map50=0.5)
    assert json.loads(line) == {"event": "epoch", "epoch": 1, "loss": None, "val_map50": 0.5}
    assert "\n" not in line and set(EVENTS) == {"start", "batch", "epoch", "checkpoint", "done",
                                                "error"}
    with pytest.raises(ValueError):
        parse_event('{"event": "bogus"}')


@pytest.mark.parametrize(("flags", "message"), [
    (["--multiscale", "5"], "--multiscale 5: use a value in [0, 1) (0.3: sizes within 30 % of "
                            "--size)"),
    (["--mixup", "1.5"], "--mixup 1.5: use a share in [0, 1]"),
    (["--copy-paste", "-0.2"], "--copy-paste -0.2: use a chance in [0, 1]"),
    # a flag the run would drop without a word
    (["--no-augment", "--copy-paste", "0.5"],
     "--no-augment turns off --copy-paste 0.5: give one or the other"),
    (["--no-augment", "--mosaic", "--mixup", "0.2"],
     "--no-augment turns off --mosaic and --mixup 0.2: give one or the other"),
    (["--mixup", "0.5"], "--mixup 0.5 blends mosaics: add --mosaic"),
    (["--close-mosaic", "-3"], "--close-mosaic -3: use 0 or more epochs"),
])
def test_augmentation_flags_out_of_range_are_one_line(tmp_path, dataset, flags, message):
    # checked before TensorFlow loads: --multiscale 5 would build 32..2496 px batches
    proc = subprocess.run([sys.executable, "-m", "workbench", "train", str(dataset), "--out",
                           str(tmp_path / "r"), *flags],
                          capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == f"workbench train: error: {message}"
    assert not (tmp_path / "r").exists()
