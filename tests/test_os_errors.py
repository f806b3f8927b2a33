"""OS errors in every writing verb (a full disk, --out a file): one line naming the path, exit 2,
no traceback. RLIMIT_FSIZE stands in for a full disk: a write past it fails with EFBIG, as a
write on a full disk fails with ENOSPC, at any point of the run."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.errors import describe_os_error
from workbench.train.protocol import parse_event

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
MICRO = ROOT / "tests" / "data" / "micro.cfg"


def _disk_full_after(limit: int):
    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def _workbench(*args, limit: int | None = None, stdout=subprocess.PIPE):
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, timeout=300, env=ENV, cwd=ROOT,
                          preexec_fn=_disk_full_after(limit) if limit else None)


def _one_line(proc, verb: str) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    prefix = f"workbench {verb}: error: "
    assert lines[-1].startswith(prefix), lines
    return lines[-1][len(prefix):]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("os") / "data"
    proc = _workbench("demo-data", folder, "--images", 6, "--size", 64)
    assert proc.returncode == 0, proc.stderr
    return folder


@pytest.fixture()
def a_file(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def test_describe_os_error_names_the_path_first():
    err = OSError(28, "No space left on device", "/data/out/a.txt")
    assert describe_os_error(err) == "/data/out/a.txt: No space left on device"
    err = OSError(27, "File too large", "/a.jpg", None, "/out/a.jpg")
    assert describe_os_error(err) == "/a.jpg -> /out/a.jpg: File too large"
    # a file name that is not UTF-8 still prints
    assert "\\udcff" in describe_os_error(FileNotFoundError(2, "missing", "/x/\udcff.jpg"))


def test_convert_on_a_full_disk(data, tmp_path):
    out = tmp_path / "out"
    says = _one_line(_workbench("convert", data, "--to", "coco", "--out", out, limit=2000),
                     "convert")
    assert str(out) in says and "File too large" in says


def test_detect_on_a_full_disk_and_into_a_file(data, tmp_path, a_file):
    out = tmp_path / "out"
    says = _one_line(_workbench("detect", data, "--model", "demo", "--backend", "cpu",
                                "--out", out, "--save-images", limit=3000), "detect")
    assert says.startswith(str(out)) and says.endswith("File too large")
    says = _one_line(_workbench("detect", data, "--model", "demo", "--backend", "cpu",
                                "--out", a_file), "detect")
    assert str(a_file) in says


def test_export_on_a_full_disk(tmp_path):
    out = tmp_path / "model.onnx"
    says = _one_line(_workbench("export", "--model", "demo", "--out", out, limit=3000),
                     "export")
    assert says == f"{out}: File too large"
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_demo_data_on_a_full_disk_and_into_a_file(tmp_path, a_file):
    says = _one_line(_workbench("demo-data", tmp_path / "d", "--images", 4, limit=2000),
                     "demo-data")
    assert str(tmp_path / "d") in says
    assert str(a_file) in _one_line(_workbench("demo-data", a_file), "demo-data")


def test_stdout_redirected_to_a_full_disk_names_the_file(data, tmp_path):
    target = tmp_path / "stats.json"
    with target.open("w") as out:
        proc = _workbench("stats", data, "--json", limit=50, stdout=out)
    assert _one_line(proc, "stats") == f"{target} (standard output): File too large"


@pytest.mark.slow
@pytest.mark.parametrize(("json_lines", "limit"), [
    (False, 3000),     # full while writing the metrics plot (an OSError)
    (True, 3000),
    (False, 100_000),  # full while saving a checkpoint (TensorFlow's OutOfRangeError)
])
def test_train_on_a_full_disk(data, tmp_path, json_lines, limit):
    pytest.importorskip("tensorflow")
    run = tmp_path / "run"
    args = ["train", data, "--template", MICRO, "--size", 64, "--epochs", 1, "--batch", 2,
            "--out", run] + (["--json"] if json_lines else [])
    proc = _workbench(*args, limit=limit)
    says = _one_line(proc, "train")
    assert says.startswith(str(run)) and says.endswith("File too large")
    if json_lines:  # the GUI reads the same line as the last event
        last = parse_event(proc.stdout.strip().splitlines()[-1])
        assert last["event"] == "error" and last["message"] == says
    assert not list(run.rglob("*_temp"))  # no half-written checkpoint left behind
