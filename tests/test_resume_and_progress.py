"""Issue 23, the first hour: ``--resume`` continues the run as it was started (its length,
schedule and settings; ``--epochs`` moves its end and says how; a conflicting setting is one
line), and long jobs show progress where stderr (or the training output) is not a terminal.

Real children of ``python -m workbench`` with their output in pipes, real TensorFlow on the
``demo-tiny`` template and small demo data sets.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from workbench.data.synth import make_demo_dataset
from workbench.progress import TERMINAL_LOCK, ProgressBar
from workbench.train.protocol import parse_event
from workbench.train.schedule import LearningRateSchedule

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
EVERY_UPDATE = {**ENV, "WORKBENCH_PROGRESS_INTERVAL": "0"}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    # 12 training images at batch 4: 3 steps an epoch; 4 to validate on
    return make_demo_dataset(tmp_path_factory.mktemp("first-hour") / "data", images=16, seed=3,
                             size=64, valid_fraction=0.25)


def _workbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "workbench", *args]


def _train(data: Path, run: Path, *extra: str) -> list[str]:
    return _workbench("train", str(data), "--out", str(run), "--json", *extra)


def _fresh(data: Path, run: Path, *extra: str) -> list[str]:
    return _train(data, run, "--template", "demo-tiny", "--size", "64", "--batch", "4",
                  "--patience", "0", "--no-augment", *extra)


def _run_json(cmd: list[str], stop_after_batch: bool = False,
              expect_epochs: int | None = None) -> list[dict]:
    """The child's events. ``stop_after_batch``: SIGTERM at the first batch event.
    ``expect_epochs``: stop the child at once when its start event says otherwise (a resume
    that runs on to the default 50 epochs must fail in seconds, not after them)."""
    err = tempfile.TemporaryFile("w+")  # a pipe nobody reads could fill and stall the child
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=ENV,
                            cwd=ROOT)
    events: list[dict] = []
    try:
        for line in proc.stdout:
            event = parse_event(line)  # every line: the window parses each one
            events.append(event)
            if event["event"] == "start" and expect_epochs is not None:
                assert event["epochs"] == expect_epochs, event
            if event["event"] == "batch" and stop_after_batch:
                proc.send_signal(signal.SIGTERM)
                stop_after_batch = False
        code = proc.wait(timeout=300)
        err.seek(0)
        assert code == 0, (events[-1:], err.read()[-2000:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err.close()
    return events


def _of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


# --- item 1: --resume continues the run as it was started --------------------------------

@pytest.mark.slow
def test_resume_keeps_the_runs_length_and_epochs_moves_its_end(data, tmp_path):
    run = tmp_path / "run"
    first = _run_json(_fresh(data, run, "--epochs", "4"), stop_after_batch=True)
    assert first[-1]["status"] == "interrupted"

    # a plain --resume continues the run as started: 4 epochs (the old code ran on towards
    # the CLI's default 50); stopped again on the way
    plain = _run_json(_train(data, run, "--resume"), stop_after_batch=True, expect_epochs=4)
    assert plain[0]["resumed"] and plain[0]["step"] == first[-1]["step"]
    assert plain[0]["resume_note"] is None and plain[-1]["status"] == "interrupted"
    stopped_at = plain[-1]["step"]
    assert stopped_at < 4 * 3

    # --epochs 8 moves the end; the rest of the cosine is stretched, from the rate it had;
    # the same template and size as the run's are no conflict
    longer = _run_json(_train(data, run, "--resume", "--epochs", "8", "--template",
                              "demo-tiny", "--size", "64"), expect_epochs=8)
    assert longer[0]["step"] == stopped_at
    assert longer[0]["resume_note"] == (
        "extending the run from 4 to 8 epochs; the rest of the learning-rate schedule "
        "(cosine, from where it stopped) is stretched to end at epoch 8")
    assert [e["step"] for e in _of(longer, "batch")] == list(range(stopped_at + 1, 8 * 3 + 1))
    assert longer[-1]["status"] == "finished" and longer[-1]["epoch"] == 8
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["epochs"] == 8  # a later --resume continues the longer run
    schedule = LearningRateSchedule.from_dict(config["schedule"])
    assert schedule.stretches == ((stopped_at, (12 - stopped_at) / (24 - stopped_at)),)
    # the rate the run stopped at continues, and the floor (1 %) comes at the new end
    lrs = [e["lr"] for e in _of(longer, "batch")]
    old = LearningRateSchedule.from_dict({**config["schedule"], "stretches": []})
    assert lrs[0] == pytest.approx(old.rate(stopped_at), rel=1e-6)
    assert lrs[-1] == pytest.approx(schedule.rate(23), rel=1e-6)
    assert lrs == sorted(lrs, reverse=True)
    assert config["settings"]["precision"] == "float32"  # what ran, not "auto"

    # a finished run extended: its schedule had ended, the new epoch trains at its last rate
    more = _run_json(_train(data, run, "--resume", "--epochs", "9"), expect_epochs=9)
    last_rate = schedule.rate(24)  # the floor: 1 % of --lr
    assert last_rate == pytest.approx(1e-5)
    assert more[0]["resume_note"] == (
        "extending the run from 8 to 9 epochs; its learning-rate schedule ended with epoch 8: "
        f"epoch 9 trains at its last rate, {last_rate:.3g}")
    assert [e["lr"] for e in _of(more, "batch")] == pytest.approx([last_rate] * 3, rel=1e-6)
    assert more[-1]["epoch"] == 9


@pytest.mark.slow
def test_resume_refuses_settings_that_differ_from_the_runs(data, tmp_path):
    run = tmp_path / "run"
    _run_json(_fresh(data, run, "--epochs", "1", "--lr", "0.002"))
    before = _snapshot(run)
    proc = subprocess.run(_train(data, run, "--resume", "--lr", "0.01", "--batch", "4",
                                 "--no-augment", "--objectness", "one"),
                          capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    (error,) = [parse_event(line) for line in proc.stdout.splitlines()]
    assert error["event"] == "error"
    assert error["message"] == (
        f"{run}: a resumed run keeps the settings it was started with; --lr 0.01 (the run's: "
        "0.002), --objectness one (the run's: iou): leave them out to resume, or start a new "
        "run with another --out")
    assert proc.stderr.strip().splitlines()[-1] == f"workbench train: error: {error['message']}"
    assert "Traceback" not in proc.stderr
    assert _snapshot(run) == before  # nothing written
    # no epochs at all: refused before TensorFlow loads, nothing written either
    proc = subprocess.run(_train(data, run, "--resume", "--epochs", "0"), capture_output=True,
                          text=True, timeout=120, env=ENV, cwd=ROOT)
    assert proc.returncode == 2 and "--epochs must be at least 1" in proc.stderr
    assert _snapshot(run) == before


def test_a_stretched_schedule_continues_from_its_rate_and_ends_at_the_new_end():
    cosine = LearningRateSchedule(lr=1e-3, policy="cosine", total_steps=40, burn_in=4)
    # stopped at step 20 of 40, extended to 80: the 20 steps left become 60
    longer = cosine.stretched(now=20, old_end=40, new_end=80)
    assert [longer.rate(s) for s in range(21)] == [cosine.rate(s) for s in range(21)]
    assert longer.rate(50) == pytest.approx(cosine.rate(30))  # half-way through the rest
    assert longer.rate(80) == pytest.approx(cosine.rate(40))  # the floor at the new end
    assert longer.rate(80) == pytest.approx(1e-5)
    assert longer.decay_step() == 20 + 3 * (cosine.decay_step() - 20)
    # squeezed: a shorter run reaches the floor at its own end
    shorter = cosine.stretched(now=20, old_end=40, new_end=30)
    assert shorter.rate(25) == pytest.approx(cosine.rate(30))
    assert shorter.rate(30) == pytest.approx(cosine.rate(40))
    # stretched again later: the floor moves to the last end
    twice = longer.stretched(now=60, old_end=80, new_end=120)
    assert twice.rate(60) == pytest.approx(longer.rate(60))
    assert twice.rate(120) == pytest.approx(cosine.rate(40))
    assert LearningRateSchedule.from_dict(twice.to_dict()) == twice
    # steps: a boundary not yet passed moves with the run's end; the warm-up keeps its length
    steps = LearningRateSchedule(lr=1e-3, policy="steps", total_steps=100, burn_in=10,
                                 steps=(80, 90), scales=(0.1, 0.1))
    later = steps.stretched(now=5, old_end=100, new_end=190)
    assert later.stretches == ((10, 0.5),)
    assert [later.rate(s) for s in range(11)] == [steps.rate(s) for s in range(11)]
    assert later.rate(149) == pytest.approx(1e-3) and later.rate(150) == pytest.approx(1e-4)
    # a schedule that has run out is not stretched: the run goes on at its last rate
    assert cosine.stretched(now=40, old_end=40, new_end=80) is None


# --- item 8: progress where the output is not a terminal ---------------------------------

LINE = re.compile(r"^(\w[\w-]*): (\d+)(?:/(\d+))? (\w+), \d+\.\d (\w+)/s(, eta \d+:\d\d|, "
                  r"\d+:\d\d in all)?$")


def _progress_lines(text: str, label: str) -> list[re.Match]:
    found = [LINE.match(line) for line in text.splitlines()]
    return [m for m in found if m and m.group(1) == label]


def test_detect_prints_progress_lines_on_a_pipe(tmp_path):
    images = make_demo_dataset(tmp_path / "images", images=6, seed=1, size=96)
    proc = subprocess.run(_workbench("detect", str(images), "--model", "demo"),
                          capture_output=True, text=True, timeout=180, env=EVERY_UPDATE,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = _progress_lines(proc.stderr, "detect")
    assert lines, proc.stderr  # the old bar drew nothing off a terminal
    assert {m.group(3) for m in lines} == {"6"} and {m.group(4) for m in lines} == {"images"}
    assert lines[-1].group(0).endswith("in all") and lines[-1].group(2) == "6"
    assert "\r" not in proc.stderr  # lines for a log, not a redrawn bar
    assert not _progress_lines(proc.stdout, "detect")  # stdout keeps only the detections


def test_convert_prints_progress_lines_on_a_pipe_and_a_short_job_stays_quiet(tmp_path):
    src = make_demo_dataset(tmp_path / "src", images=5, seed=2, size=64)
    cmd = _workbench("convert", str(src), "--to", "voc", "--out", str(tmp_path / "a"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=EVERY_UPDATE,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    lines = _progress_lines(proc.stderr, "convert")
    assert lines and lines[-1].group(2) == "5", proc.stderr
    # at the default interval (10 s) a job of a second prints no progress at all: the verbs'
    # stderr stays what it was for short jobs (one line per problem)
    cmd[-1] = str(tmp_path / "b")
    quick = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=ENV, cwd=ROOT)
    assert quick.returncode == 0 and not _progress_lines(quick.stderr, "convert")


@pytest.mark.slow
def test_training_shows_validation_progress_and_the_json_stream_is_unchanged(data, tmp_path):
    cmd = _fresh(data, tmp_path / "run", "--epochs", "1")
    cmd.remove("--json")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=EVERY_UPDATE,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    validating = _progress_lines(proc.stdout, "validating")
    assert validating and {m.group(3) for m in validating} == {"4"}, proc.stdout
    assert validating[-1].group(2) == "4"
    assert _progress_lines(proc.stdout, "exporting")
    assert re.search(r"^epoch 1: \d/3 steps, loss ", proc.stdout, re.MULTILINE), proc.stdout
    # --json: nothing but the protocol's events on stdout, progress or not
    events = _run_json(_fresh(data, tmp_path / "json", "--epochs", "1"))
    assert {e["event"] for e in events} <= {"start", "batch", "epoch", "checkpoint", "done"}
    assert events[0]["event"] == "start" and events[-1]["event"] == "done"  # never vacuous


class _Terminal:
    """A stream that says it is a terminal: ProgressBar draws tqdm's live bar on it."""

    def __init__(self) -> None:
        self.text: list[str] = []

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_the_live_bar_draws_only_while_it_holds_the_terminal_lock():
    # workbench.data.images points fd 2 at a scratch file for one decode while it holds
    # TERMINAL_LOCK: a bar drawn then would land in the decoder's messages
    stream = _Terminal()
    bar = ProgressBar("detect", 10, stream=stream)
    assert any("detect" in t for t in stream.text)  # tqdm's bar, drawn at once
    drawn = len(stream.text)
    with TERMINAL_LOCK:
        worker = threading.Thread(target=lambda: (time.sleep(0.15), bar.update(10)))
        worker.start()
        time.sleep(0.4)
        assert len(stream.text) == drawn  # the update waits for the lock
    worker.join(5)
    assert len(stream.text) > drawn and "10/10" in "".join(stream.text)
    bar.close()
