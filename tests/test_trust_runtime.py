"""Issue 21, trust round 2 (runtime): each case reproduced with real files, FIFOs and sockets,
run as the user runs it (a child `python -m workbench`), and answered with one line naming the
file, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.data.synth import make_demo_dataset

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


# ------------------------------------------------------------------ 13: a Ray head that never answers


class SilentListener:
    """A socket on the loopback that accepts every connection and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            self.accepted.append(conn)

    def all_hung_up(self) -> bool:
        """Every connection made to us was closed by the other side (nothing left holding it)."""
        for conn in self.accepted:
            conn.settimeout(5)
            try:
                while conn.recv(4096):
                    pass  # the HTTP/2 hello
            except TimeoutError:
                return False
        return bool(self.accepted)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_ray_head_that_accepts_and_never_answers_is_one_line_in_seconds(images, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")
    listener = SilentListener()
    try:
        start = time.monotonic()
        proc = workbench("detect", str(images), "--model", "demo", "--out", str(tmp_path / "o"),
                         "--ray", f"127.0.0.1:{listener.port}", timeout=60)
        took = time.monotonic() - start
        line = one_line_error(proc, f"no Ray cluster answers at 127.0.0.1:{listener.port}")
        assert took < 20, took
        assert "rpc_client" not in line and "GCS" not in line  # Ray's own words stay out
        assert listener.all_hung_up()  # the child is gone and left no one on the line
    finally:
        listener.close()
    assert not (tmp_path / "o").exists()


def test_the_handshake_check_passes_a_grpc_server(tmp_path):
    """The other side of the check: a server that answers the HTTP/2 hello with SETTINGS (what
    Ray's GCS and client server do) is let through to ray.init."""
    from workbench.detect.ray_runner import check_reachable

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(64)
            conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # an empty SETTINGS frame
            time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}", timeout=5)
    finally:
        thread.join(10)
        server.close()


# ------------------------------------------------------------------ 14a: decoder warnings

RAW_LINES = ("libpng warning", "Corrupt JPEG data", "[ WARN", "premature end")


def raw_decoder_lines(stderr: str) -> list[str]:
    """Lines of a decoder's own (not ours: ours start with "warning: " and name the file)."""
    return [line for line in stderr.splitlines()
            if any(raw in line for raw in RAW_LINES) and not line.startswith("warning: ")]


def bad_png(path: Path) -> Path:
    """A good PNG with a tEXt chunk whose CRC is wrong: libpng warns and decodes it."""
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)
    png = cv2.imencode(".png", image)[1].tobytes()
    data = b"Comment\0hello"
    crc = (zlib.crc32(b"tEXt" + data) ^ 1) & 0xFFFFFFFF
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", crc)
    path.write_bytes(png[:33] + chunk + png[33:])  # after the 8-byte signature and IHDR
    return path


def cut_jpeg(path: Path) -> Path:
    """A JPEG cut in its scan data but ending with the end marker: libjpeg warns "Corrupt JPEG
    data: premature end of data segment" and fills the rest in grey."""
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), np.uint8)
    jpg = cv2.imencode(".jpg", image)[1].tobytes()
    path.write_bytes(jpg[:len(jpg) * 2 // 3] + b"\xff\xd9")
    return path


@pytest.fixture
def warned(tmp_path):
    folder = make_demo_dataset(tmp_path / "warned", images=2, seed=1, size=64)
    return folder, bad_png(folder / "crc.png"), cut_jpeg(folder / "cut.jpg")


def test_decoder_warnings_become_one_problem_per_image_not_raw_lines(warned):
    """The pipeline under `detect`, run in a child so that fd 2 is really the child's."""
    folder, png, jpg = warned
    script = ("import sys\nfrom workbench.detect.detector import Detector\n"
              "for r in Detector('demo', 'cpu').detect_many(sys.argv[1]):\n"
              "    print(r.path.name, r.ok, len(r.detections or ()), '|'.join(r.problems))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert not any(raw in proc.stderr for raw in RAW_LINES), proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert len(rows) == 4 and all(" True " in row for row in rows.values())  # all detected
    assert rows["crc.png"].count("the decoder warned: libpng warning: tEXt: CRC error") == 1
    assert str(png) in rows["crc.png"]
    assert rows["cut.jpg"].count("Corrupt JPEG data: premature end of data segment") == 1
    assert str(jpg) in rows["cut.jpg"]
    assert not any("warned" in rows[name] for name in rows if name.startswith("img_"))


def test_detect_prints_no_raw_decoder_lines(warned, tmp_path):
    folder, _, _ = warned
    proc = workbench("detect", str(folder), "--model", "demo", "--backend", "cpu",
                     "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert not raw_decoder_lines(proc.stderr), proc.stderr
    assert proc.stdout.startswith("4 images")


def test_detect_names_each_warned_image_once(warned, tmp_path):
    folder, png, jpg = warned
    proc = workbench("detect", str(folder), "--model", "demo", "--backend", "cpu",
                     "--out", str(tmp_path / "o"))
    assert proc.stderr.count(str(png)) == 1 and proc.stderr.count(str(jpg)) == 1, proc.stderr


def test_load_bgr_without_a_list_logs_one_line_naming_the_file(warned):
    _, png, _ = warned
    script = ("import sys\nfrom workbench.data.images import load_bgr\n"
              "print(load_bgr(sys.argv[1]).shape)\n")
    proc = subprocess.run([sys.executable, "-c", script, str(png)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.strip() == "(48, 64, 3)"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{png}: the decoder warned: libpng"), lines


def test_a_video_ffmpeg_cannot_open_is_one_line_with_its_reason(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("not a video\n")
    line = one_line_error(workbench("detect", str(fake), "--model", "demo"), str(fake),
                          "OpenCV cannot open this video")
    assert "moov atom not found" in line and "@ 0x" not in line


# ------------------------------------------------------------------ 14c: stats and a sibling


def test_stats_does_not_blame_a_sibling_data_set(tmp_path):
    """Two demo data sets side by side name their images alike (img_00000.jpg...). Stats on
    the one without labels pointed at the other's labels ("3 YOLO files in ../other/ not
    beside the images; pass --labels ../other"), files it never read, one of them bad, whose
    labels belong to the other's own images."""
    ours = make_demo_dataset(tmp_path / "ours", images=3, seed=0, size=64)
    for label in ours.glob("img_*.txt"):
        label.unlink()  # not labeled yet
    other = make_demo_dataset(tmp_path / "other", images=3, seed=1, size=64)
    (other / "img_00001.txt").write_text("9 x y\n")  # a bad file stats must not name
    proc = workbench("stats", str(ours), "--json")
    assert proc.returncode == 0, proc.stderr
    problems = json.loads(proc.stdout)["problems"]
    assert not any("other" in p for p in problems), problems
    # a folder of stray labels beside it (no images of its own) is still pointed at
    strays = tmp_path / "labels_elsewhere"
    strays.mkdir()
    (strays / "img_00000.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    problems = json.loads(workbench("stats", str(ours), "--json").stdout)["problems"]
    assert len(problems) == 1 and "../labels_elsewhere/" in problems[0], problems


def test_a_nul_byte_in_a_data_yaml_list_file_is_one_problem_not_a_traceback(tmp_path):
    """data.yaml's train:/val: naming the same list file with a NUL line: ValueError from
    Path.resolve before; now one problem naming the file and line, listed once."""
    from PIL import Image

    root = tmp_path / "ul"
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "a.jpg")
    (root / "data.yaml").write_text("names: [a]\ntrain: train.txt\nval: train.txt\n")
    (root / "train.txt").write_bytes(b"images/a.jpg\nimages/b\x00.jpg\n")
    proc = workbench("stats", str(root))
    assert proc.returncode == 0, proc.stderr
    hits = [line for line in proc.stdout.splitlines() if "NUL byte" in line]
    assert len(hits) == 1 and "train.txt:2" in hits[0]
