"""Atomic saves: a writer killed mid-save never leaves a half-written label file."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time

import pytest
from PIL import Image

from workbench.data.folder import open_dataset
from workbench.formats.yolo import format_yolo, read_yolo
from workbench.storage.atomic import atomic_write_bytes, atomic_write_text

# the child rewrites one big YOLO label file forever, alternating two versions, through the
# atomic writer every save goes through
CHILD = r"""
import sys
from workbench.storage.atomic import atomic_write_bytes
from workbench.labels.dataset import Box
from workbench.formats.yolo import format_yolo

target = sys.argv[1]
# formatted once, so the loop spends its time inside the save (the window we kill in)
versions = [format_yolo([Box(i % 50, i % 40, i % 50 + 10, i % 40 + 5, k)
                         for i in range(1000)], 100, 100).encode() * 120 for k in (0, 1)]
print("ready", flush=True)
n = 0
while True:
    atomic_write_bytes(target, versions[n % 2])
    n += 1
"""


def _version_text(k: int) -> str:
    from workbench.labels.dataset import Box

    return format_yolo([Box(i % 50, i % 40, i % 50 + 10, i % 40 + 5, k)
                        for i in range(1000)], 100, 100) * 120


@pytest.mark.slow
def test_killing_the_writer_mid_save_leaves_the_old_or_new_file_whole(tmp_path):
    Image.new("RGB", (100, 100)).save(tmp_path / "big.jpg")
    (tmp_path / "classes.txt").write_text("a\nb\n")
    target = tmp_path / "big.txt"
    old = "0 0.500000 0.500000 0.100000 0.100000\n"
    target.write_text(old)
    allowed = {old, _version_text(0), _version_text(1)}
    rng = random.Random(0)
    saw_leftover_temp = 0
    # at least 4 kills, more until one lands inside a save (the fsync of the folder after
    # the rename is a window without a temp file)
    for attempt in range(16):
        if attempt >= 4 and saw_leftover_temp:
            break
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(target)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        text = target.read_text()
        assert text in allowed  # whole: the old file or one complete version, never a mix
        if text == old:
            assert len(read_yolo(target, 100, 100, 2)) == 1
        leftovers = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        saw_leftover_temp += bool(leftovers)
        # a temp file is never mistaken for a label file or an image
        dataset = open_dataset(tmp_path)
        assert [r.name for r in dataset.images] == ["big.jpg"]
        assert dataset.problems == [] and dataset.images[0].labeled
        assert all(p.name.startswith(".big.txt.") for p in leftovers)
    assert saw_leftover_temp, "the child was never killed in the middle of a save"


def test_write_replaces_whole_and_keeps_permissions(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic_write_text(path, "new ünïcode\n")
    assert path.read_bytes() == "new ünïcode\n".encode()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_new_file_gets_normal_permissions(tmp_path):
    atomic_write_bytes(tmp_path / "n.txt", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE((tmp_path / "n.txt").stat().st_mode) == 0o666 & ~mask


def test_a_failed_write_names_the_target_and_leaves_no_temp_file(tmp_path):
    import pytest

    from workbench.storage.atomic import atomic_write_text

    target = tmp_path / "labels.txt"
    target.mkdir()                                   # cannot be replaced by a file
    with pytest.raises(OSError) as err:
        atomic_write_text(target, "0 0.5 0.5 0.1 0.1\n")
    assert str(target) in str(err.value) and ".tmp" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.txt"]
