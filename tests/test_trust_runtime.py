"""Issue 21, trust round 2 (runtime): each case reproduced with real files, FIFOs and sockets,
run as the user runs it (a child `python -m workbench`), and answered with one line naming the
file, exit 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.synth import make_demo_dataset

REPO = Path(__file__).resolve().parents[1]


def workbench(*args: str, timeout: float = 120, cwd: Path | None = None
              ) -> subprocess.CompletedProcess:
    """``python -m workbench ARGS`` in a child, as a user runs it, stdout and stderr apart."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


def one_line_error(proc: subprocess.CompletedProcess, *names: str) -> str:
    """The run failed with exit 2 and one line on stderr naming each of ``names``."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ 11: list files


@pytest.fixture
def images(tmp_path):
    return make_demo_dataset(tmp_path / "ds", images=2, seed=0, size=64)


def nul_list(folder: Path) -> Path:
    listed = folder / "list.txt"
    listed.write_bytes(b"ds/img_00000.jpg\nds/img\x0000001.jpg\n")
    return listed


def test_a_calibration_list_with_a_nul_byte_is_one_line_naming_its_line(images, tmp_path):
    listed = nul_list(tmp_path)
    proc = workbench("detect", str(images), "--model", "demo", "--precision", "int8",
                     "--calibrate", str(listed))
    line = one_line_error(proc, f"{listed}:2:", "NUL byte")
    assert "embedded null byte" not in line


def test_a_source_list_with_a_nul_byte_is_one_line_naming_its_line(images, tmp_path):
    listed = nul_list(tmp_path)
    one_line_error(workbench("detect", str(listed), "--model", "demo"), f"{listed}:2:",
                   "NUL byte")


def test_a_list_file_that_is_a_fifo_is_refused_without_blocking(images, tmp_path):
    fifo = tmp_path / "list.txt"
    os.mkfifo(fifo)
    line = one_line_error(workbench("detect", str(fifo), "--model", "demo", timeout=60),
                          str(fifo), "FIFO")
    assert "no such" not in line


# ------------------------------------------------------------------ 14b: a FIFO named v.mp4


def test_a_fifo_named_like_a_video_is_not_a_regular_file(tmp_path):
    fifo = tmp_path / "v.mp4"
    os.mkfifo(fifo)
    line = one_line_error(workbench("detect", str(fifo), "--model", "demo", timeout=60),
                          str(fifo), "FIFO", "not a regular file")
    assert "no such video" not in line
    missing = tmp_path / "gone.mp4"
    one_line_error(workbench("detect", str(missing), "--model", "demo"), str(missing),
                   "no such video file")
