"""`workbench weights fetch` and `resolve_weights` against a real HTTP server on 127.0.0.1.

The server (http.server in a thread) serves one payload under modes picked by the URL path:
``/range/`` honours Range, ``/norange/`` ignores it, ``/drop/`` closes the connection half-way
through its first answer, ``/missing/`` is a 404. The official names are tested only against a
pre-filled cache: their URLs are real and never reached from a test.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.darknet.fetch import (
    CACHE_ENV,
    FetchPlan,
    fetch,
    file_problem,
    resolve_weights,
    weights_cache_dir,
)
from workbench.errors import WorkbenchError

# a darknet header (0.2, seen=0) and ~2.5 MiB of floats: several reads of 1 MiB
PAYLOAD = struct.pack("<3iq", 0, 2, 0, 0) + os.urandom(5 * (1 << 19) + 12)
SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = "net.weights"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        mode = self.path.split("/")[1]
        if mode == "missing":
            self.send_error(404)
        elif mode == "norange":
            self._send(200, PAYLOAD)
        elif mode == "drop" and not server.dropped:
            server.dropped = True
            self._send(200, PAYLOAD, cut=len(PAYLOAD) // 2)
        else:
            self._send_range()

    def _send_range(self) -> None:
        wanted = self.headers.get("Range")
        if not wanted:
            return self._send(200, PAYLOAD)
        start = int(wanted.removeprefix("bytes=").split("-")[0])
        if start >= len(PAYLOAD):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send(206, PAYLOAD[start:],
                   content_range=f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")

    def _send(self, status: int, body: bytes, cut: int | None = None,
              content_range: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))  # the full length, also when cut
        if content_range:
            self.send_header("Content-Range", content_range)
        self.end_headers()
        self.wfile.write(body[:cut])
        self.wfile.flush()


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests, httpd.dropped = [], False
    httpd.url = lambda mode: f"http://127.0.0.1:{httpd.server_port}/{mode}/{NAME}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "weights"


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["weights", "fetch", *args])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err


# -- downloads by URL -------------------------------------------------------------------------

def test_url_downloads_into_the_cache(server, cache, capsys):
    code, out, err = _run(capsys, server.url("range"), "--sha256", SHA)
    assert code == 0, err
    assert (cache / NAME).read_bytes() == PAYLOAD
    assert not (cache / f"{NAME}.part").exists()
    assert f"SHA-256 {SHA} verified" in out and str(cache / NAME) in out


def test_a_url_needs_its_checksum(server, cache, capsys):
    code, _, err = _run(capsys, server.url("range"))
    assert code == 2
    assert "needs --sha256" in _one_line(err)
    assert server.requests == []


def test_a_wrong_checksum_deletes_the_part_and_says_so(server, cache, capsys):
    code, _, err = _run(capsys, server.url("range"), "--sha256", "0" * 64)
    assert code == 2
    line = _one_line(err)
    assert f"SHA-256 {SHA}, expected {'0' * 64}" in line
    assert f"deleted {cache / NAME}.part" in line
    assert not (cache / f"{NAME}.part").exists() and not (cache / NAME).exists()


def test_a_dropped_connection_resumes_on_the_next_run(server, cache, capsys):
    code, _, err = _run(capsys, server.url("drop"), "--sha256", SHA)
    assert code == 2
    assert "run the same command again to continue" in _one_line(err)
    part = cache / f"{NAME}.part"
    have = part.stat().st_size
    assert 0 < have < len(PAYLOAD) and part.read_bytes() == PAYLOAD[:have]
    assert not (cache / NAME).exists()

    code, out, err = _run(capsys, server.url("drop"), "--sha256", SHA)
    assert code == 0, err
    assert server.requests[-1][1] == f"bytes={have}-"  # only the rest was asked for
    assert f"continued from byte {have}" in out
    assert (cache / NAME).read_bytes() == PAYLOAD and not part.exists()


def test_a_server_that_ignores_range_restarts_the_part_cleanly(server, cache, capsys):
    cache.mkdir(parents=True)
    (cache / f"{NAME}.part").write_bytes(b"left over from another download")
    code, out, err = _run(capsys, server.url("norange"), "--sha256", SHA)
    assert code == 0, err
    assert server.requests[0][1] is not None  # Range was asked for, the answer was 200
    assert (cache / NAME).read_bytes() == PAYLOAD
    assert "continued" not in out


def test_a_complete_part_is_verified_and_published(server, cache, capsys):
    cache.mkdir(parents=True)
    (cache / f"{NAME}.part").write_bytes(PAYLOAD)  # a run stopped between the last byte and
    code, _, err = _run(capsys, server.url("range"), "--sha256", SHA)  # the rename: 416
    assert code == 0, err
    assert server.requests == [(f"/range/{NAME}", f"bytes={len(PAYLOAD)}-")]  # the 416 asked
    assert (cache / NAME).read_bytes() == PAYLOAD


def test_out_and_a_second_run_that_finds_the_file(server, cache, tmp_path, capsys):
    out_file = tmp_path / "mine" / "start.weights"
    code, _, err = _run(capsys, server.url("range"), "--sha256", SHA, "--out", str(out_file))
    assert code == 0, err
    assert out_file.read_bytes() == PAYLOAD and not cache.exists()
    code, out, _ = _run(capsys, server.url("range"), "--sha256", SHA, "--out", str(out_file))
    assert code == 0 and "already there" in out
    assert len(server.requests) == 1


def test_another_file_in_the_way_is_never_replaced(server, cache, tmp_path, capsys):
    other = tmp_path / "other.weights"
    other.write_bytes(b"someone else's file")
    code, _, err = _run(capsys, server.url("range"), "--sha256", SHA, "--out", str(other))
    assert code == 2 and "already exists and is not this file" in _one_line(err)
    assert other.read_bytes() == b"someone else's file" and server.requests == []


def test_a_fifo_in_the_way_is_refused_not_read(tmp_path):
    """--out naming a FIFO: checking whether it is already the file must not block on it."""
    import subprocess
    import sys

    fifo = tmp_path / "in_the_way.weights"
    os.mkfifo(fifo)
    url = f"http://127.0.0.1:{_closed_port()}/{NAME}"
    child = subprocess.run([sys.executable, "-m", "workbench", "weights", "fetch", url,
                            "--sha256", SHA, "--out", str(fifo)],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 2 and "Traceback" not in child.stderr, child.stderr
    assert str(fifo) in _one_line(child.stderr) and "FIFO" in child.stderr


def test_progress_starts_where_a_resumed_download_starts(server, tmp_path):
    dest = tmp_path / NAME
    (tmp_path / f"{NAME}.part").write_bytes(PAYLOAD[:1000])
    seen = []
    result = fetch(FetchPlan(server.url("range"), dest, SHA),
                   progress=lambda done, total: seen.append((done, total)))
    assert result.resumed_from == 1000
    assert seen[0] == (1000, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


# -- unreachable and refused ------------------------------------------------------------------

def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_is_one_line_naming_the_url_and_the_way_out(cache, capsys):
    url = f"http://127.0.0.1:{_closed_port()}/files/{NAME}"
    code, _, err = _run(capsys, url, "--sha256", SHA)
    assert code == 2
    line = _one_line(err)
    assert f"cannot reach {url}" in line and "pass --weights FILE" in line


def test_a_silent_server_times_out(cache, capsys):
    with socket.socket() as listener:  # accepts connections (backlog), never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/{NAME}"
        start = time.monotonic()
        code, _, err = _run(capsys, url, "--sha256", SHA, "--timeout", "0.5")
    assert code == 2 and time.monotonic() - start < 10
    assert f"cannot reach {url}" in _one_line(err)


def test_http_errors_are_one_line(server, cache, capsys):
    code, _, err = _run(capsys, server.url("missing"), "--sha256", SHA)
    assert code == 2 and "HTTP 404" in _one_line(err) and "--weights FILE" in err


@pytest.mark.parametrize("args, expected", [
    (["yolov4"], "neither a known name"),
    (["ftp://example.invalid/x.weights", "--sha256", SHA], "neither a known name"),
    (["http://127.0.0.1:9/", "--sha256", SHA], "names no file; give --out FILE"),
    (["http://127.0.0.1:9/x.weights", "--sha256", "abc"], "is not a SHA-256"),
    (["yolov3-tiny", "--sha256", SHA], "is not the known SHA-256 of yolov3-tiny"),
])
def test_bad_sources_are_refused_before_any_connection(cache, capsys, args, expected):
    code, _, err = _run(capsys, *args)
    assert code == 2 and expected in _one_line(err)


def test_help_names_the_cache_variable(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["weights", "fetch", "--help"])
    assert stop.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert CACHE_ENV in help_text and "pjreddie.com/media/files/yolov3-tiny.weights" in help_text


# -- the official names: against a pre-filled cache -------------------------------------------

def test_a_name_whose_cached_file_is_wrong_is_refused(cache, capsys):
    cache.mkdir(parents=True)
    (cache / "yolov3-tiny.weights").write_bytes(PAYLOAD)
    code, _, err = _run(capsys, "yolov3-tiny")
    assert code == 2
    assert f"{len(PAYLOAD)} bytes, expected 35434956" in _one_line(err)


def test_resolve_a_fetched_name(cache):
    cache.mkdir(parents=True)
    (cache / "yolov3.weights").write_bytes(PAYLOAD)
    assert resolve_weights("yolov3") == cache / "yolov3.weights"


def test_resolve_a_name_not_fetched_says_how(cache):
    with pytest.raises(WorkbenchError, match="run `workbench weights fetch yolov3-tiny`"):
        resolve_weights("yolov3-tiny")


def test_resolve_demo_and_files(tmp_path, cache):
    from workbench.darknet.bundle import find_bundle

    assert resolve_weights("demo") == find_bundle("demo").weights
    assert resolve_weights("demo").is_file()
    mine = tmp_path / "mine.weights"
    mine.write_bytes(PAYLOAD)
    assert resolve_weights(str(mine)) == mine
    with pytest.raises(WorkbenchError, match="weights file not found"):
        resolve_weights(str(tmp_path / "absent.weights"))


def test_the_default_cache_is_the_per_user_one(monkeypatch):
    import platformdirs

    monkeypatch.delenv(CACHE_ENV, raising=False)
    expected = Path(platformdirs.user_cache_dir("detection-workbench")) / "weights"
    assert weights_cache_dir() == expected


def test_size_and_darknet_header_checks(tmp_path):
    """What verifies a known file without a checksum: its size, then its header."""
    page = tmp_path / "page.html"
    page.write_bytes(b"<html><body>Forbidden</body></html>")
    plan = FetchPlan("http://127.0.0.1:9/x", page, None, darknet=True)
    assert "not a darknet weights file" in file_problem(page, plan)
    good = tmp_path / "good.weights"
    good.write_bytes(PAYLOAD)
    assert file_problem(good, plan) is None
    sized = FetchPlan("http://127.0.0.1:9/x", good, None, size=len(PAYLOAD) + 1)
    assert file_problem(good, sized) == f"{len(PAYLOAD)} bytes, expected {len(PAYLOAD) + 1}"
