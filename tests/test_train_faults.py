"""Training under faults: a damaged run folder is never resumed over, signals during start-up
still close the JSON stream, and images TensorFlow cannot decode are left out up front."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from workbench.data.synth import make_demo_dataset
from workbench.errors import WorkbenchError
from workbench.train.protocol import parse_event

tf = pytest.importorskip("tensorflow")

from workbench.train.loop import StopFlag, TrainSettings, train  # noqa: E402
from workbench.train.protocol import Reporter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "tests" / "data" / "micro.cfg"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}


class Recorder(Reporter):
    def __init__(self) -> None:
        self.events: list[dict] = []

    def emit(self, event: str, **fields) -> None:
        self.events.append({"event": event, **fields})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("faults") / "data", images=8, seed=3,
                             size=64, valid_fraction=0.25)


def _settings(data, out, **kw) -> TrainSettings:
    base = dict(dataset=data, template=str(MICRO), size=64, epochs=1, batch=4, out=out,
                patience=0, augment=False)
    base.update(kw)
    return TrainSettings(**base)


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    """A one-epoch run: checkpoints, best, bundle, metrics, all there."""
    out = tmp_path_factory.mktemp("run") / "run"
    train(_settings(data, out))
    assert (out / "bundle" / "model.weights").is_file()
    return out


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` with its content hash: what 'nothing touched' compares."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _truncate(path: Path, size: int) -> None:
    path.write_bytes(path.read_bytes()[:size])


def _zero_bytes(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at:at + 64] = bytes(64)
    path.write_bytes(bytes(data))


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


DATA = "checkpoints/ckpt-1.data-00000-of-00001"
INDEX = "checkpoints/ckpt-1.index"
DAMAGE = {
    # name: (damage, file the message must name)
    "state file missing": (lambda r: (r / "checkpoints/checkpoint").unlink(), "checkpoints"),
    "state file garbage": (lambda r: (r / "checkpoints/checkpoint").write_text("x ]]"),
                           "checkpoints/checkpoint"),
    "checkpoint index missing": (lambda r: (r / INDEX).unlink(), "checkpoints/checkpoint"),
    "checkpoint data missing": (lambda r: (r / DATA).unlink(), "checkpoints/checkpoint"),
    "checkpoint data cut short": (lambda r: _truncate(r / DATA, 1000), "checkpoints/ckpt-1"),
    "checkpoint data zeroed": (lambda r: _zero_bytes(r / DATA, 5000), "checkpoints/ckpt-1"),
    "checkpoint index cut short": (lambda r: _truncate(r / INDEX, 100), "checkpoints/ckpt-1"),
    "config.json not JSON": (lambda r: (r / "config.json").write_text("{oops"), "config.json"),
    "config.json empty object": (lambda r: (r / "config.json").write_text("{}"), "config.json"),
    "config.json batch a string": (lambda r: _edit(r / "config.json", '"batch": 4',
                                                   '"batch": "4"'), "config.json"),
    "config.json schedule bad": (lambda r: _edit(r / "config.json", '"lr":', '"rate":'),
                                 "config.json"),
    "model.cfg missing": (lambda r: (r / "model.cfg").unlink(), "model.cfg"),
    "model.cfg garbage": (lambda r: (r / "model.cfg").write_text("hello\n"), "model.cfg"),
    "metrics.csv garbage": (lambda r: (r / "metrics.csv").write_text("epoch,step\nx,y\n"),
                            "metrics.csv"),
    "metrics.csv not text": (lambda r: (r / "metrics.csv").write_bytes(b"\xff\xfe\x00"),
                             "metrics.csv"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_resume_of_a_damaged_run_refuses_and_touches_nothing(case, finished_run, data,
                                                             tmp_path):
    damage, named = DAMAGE[case]
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run)
    before = _snapshot(run)
    with pytest.raises(WorkbenchError) as err:
        train(_settings(data, run, epochs=2, resume=True))
    message = str(err.value)
    assert str(run / named) in message and "\n" not in message
    assert _snapshot(run) == before  # bundle, best checkpoint, metrics: all as they were


def test_a_fresh_run_never_overwrites_a_run_whose_state_is_gone(finished_run, data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "checkpoints" / "checkpoint").unlink()
    before = _snapshot(run)
    with pytest.raises(WorkbenchError, match="already holds a training run"):
        train(_settings(data, run))
    assert _snapshot(run) == before


def test_an_intact_run_still_resumes(finished_run, data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    result = train(_settings(data, run, epochs=2, resume=True))
    assert result.status == "finished" and result.epochs_done == 2


def test_cli_resume_of_a_damaged_run_is_one_line_and_exit_2(finished_run, data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "config.json").write_text('{"classes": ')
    before = _snapshot(run)
    cmd = [sys.executable, "-m", "workbench", "train", str(data), "--template", str(MICRO),
           "--size", "64", "--out", str(run), "--resume"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"workbench train: error: {run / 'config.json'}: line 1")
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=300,
                          env=ENV, cwd=ROOT)
    assert proc.returncode == 2
    (event,) = [parse_event(line) for line in proc.stdout.splitlines()]
    assert event["event"] == "error" and "config.json" in event["message"]
    assert _snapshot(run) == before


# --- signals during start-up ------------------------------------------------------------

def test_a_signal_before_training_starts_ends_with_done_and_touches_nothing(data, tmp_path):
    # the flag as a SIGTERM during TensorFlow's import leaves it in the CLI
    stop = StopFlag()
    stop.set()
    rec = Recorder()
    result = train(_settings(data, tmp_path / "run"), rec, stop)
    assert result.status == "interrupted"
    assert [e["event"] for e in rec.events] == ["done"]
    assert rec.events[0]["status"] == "interrupted"
    assert not (tmp_path / "run").exists()


# A real SIGTERM sent by the child to itself at a chosen moment of start-up: when TensorFlow
# starts to load (the CLI's window), or when train() prepares the run folder (its window).
SIGNAL_AT = textwrap.dedent("""
    import os, signal, sys
    import importlib.abc
    from workbench.cli import main
    import workbench.train.prepare as prepare

    where = sys.argv[1]

    class SignalOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow":
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGTERM)
            return None

    if where == "tensorflow-import":
        sys.meta_path.insert(0, SignalOnImport())
    else:
        real = prepare.prepare_run

        def prepare_after_signal(*args):
            os.kill(os.getpid(), signal.SIGTERM)
            return real(*args)

        prepare.prepare_run = prepare_after_signal
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.slow
@pytest.mark.parametrize("where", ["tensorflow-import", "preparing-the-run"])
def test_sigterm_during_start_up_closes_the_json_stream(where, data, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-c", SIGNAL_AT, where, "train", str(data), "--template", str(MICRO),
           "--size", "64", "--batch", "4", "--epochs", "3", "--out", str(run), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    assert events and events[-1]["event"] == "done", proc.stdout
    assert events[-1]["status"] == "interrupted"
    assert not [e for e in events if e["event"] == "batch"]  # it stopped before training
    if where == "preparing-the-run":
        # the model existed: SIGTERM checkpoints it, as the help promises, and it resumes
        (stop,) = [e for e in events if e["event"] == "checkpoint"]
        assert stop["kind"] == "interrupt" and Path(stop["path"] + ".index").is_file()
        rec = Recorder()
        # resumed with the settings the child started with (a different one is refused)
        resumed = train(_settings(data, run, epochs=1, resume=True, patience=10, augment=True),
                        rec)
        assert resumed.status == "finished" and rec.events[0]["resumed"]
    else:
        assert not run.exists()


# --- images TensorFlow cannot decode ----------------------------------------------------

def test_truncated_images_are_named_and_left_out_before_training(data, tmp_path):
    # stats reads headers only and calls a cut JPEG clean; TensorFlow stopped mid-epoch
    folder = tmp_path / "data"
    shutil.copytree(data, folder)
    train_list = (folder / "train.txt").read_text().split()
    cut = folder / Path(train_list[0]).name
    cut.write_bytes(cut.read_bytes()[:-300])
    rec = Recorder()
    # one batch of every training image: the cut one is in it whatever the order
    result = train(_settings(folder, tmp_path / "run", batch=len(train_list)), rec)
    assert result.status == "finished"
    start = rec.events[0]
    assert start["event"] == "start"
    (line,) = start["skipped_images"]
    assert line.startswith(f"{cut}: ") and ("truncated" in line or "decode" in line)
    assert start["images_train"] == len(train_list) - 1
