"""Pretrained darknet weights: the official COCO files by name, any file by URL and SHA-256.

A download goes into ``FILE.part`` beside its target and continues where it stopped on the
next run (HTTP Range; a server that ignores Range sends the whole file and the part starts
over). The file appears under its own name only once it is verified, by one rename, so the
cache never holds a half or a wrong file. Plain ``urllib``: no HTTP client dependency.

Where files go: ``$WORKBENCH_CACHE_DIR/weights`` when that variable is set, else the per-user
cache (``platformdirs.user_cache_dir("detection-workbench")/weights``). ``resolve_weights``
is what ``--weights`` accepts: a file, a fetched name (``yolov3-tiny``, ``yolov3``) or ``demo``.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import unquote, urlsplit

from workbench.errors import WorkbenchError

if TYPE_CHECKING:
    from http.client import HTTPResponse


@dataclass(frozen=True)
class KnownWeights:
    url: str
    sha256: str
    size: int
    file_name: str


#: The official darknet COCO weights (pjreddie.com, the YOLOv3 authors' site).
KNOWN_WEIGHTS = {
    # SHA-256 computed from the official file: its MD5 (3bcd6b390912c18924b46b26a9e7ff53) is
    # the one darknet users publish for this URL, and so is this SHA-256
    "yolov3-tiny": KnownWeights(
        "https://pjreddie.com/media/files/yolov3-tiny.weights",
        "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
        35_434_956, "yolov3-tiny.weights"),
    # not computed here (the file was not at hand): the SHA-256 that several independent
    # public projects pin for this URL, the same projects whose yolov3-tiny hash matches the
    # official file above; the size and the darknet header are checked too
    "yolov3": KnownWeights(
        "https://pjreddie.com/media/files/yolov3.weights",
        "523e4e69e1d015393a1b0a441cef1d9c7659e3eb2d7e15f793f060a21b32f297",
        248_007_048, "yolov3.weights"),
}

#: Overrides the per-user cache folder (tests, shared machines, a bigger disk).
CACHE_ENV = "WORKBENCH_CACHE_DIR"
#: Seconds to wait for a connection or for the next bytes: offline fails fast, not after minutes.
TIMEOUT_S = 15.0
_CHUNK = 1 << 20
_OTHER_MEANS = "download the file by other means and pass --weights FILE"

#: progress(done, total): bytes in the part file so far, and the full size when known
Progress = Callable[[int, "int | None"], None]


def cache_dir() -> Path:
    """The workbench's cache folder: $WORKBENCH_CACHE_DIR, else the per-user cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    import platformdirs  # only here: everything else runs without it

    return Path(platformdirs.user_cache_dir("detection-workbench"))


def weights_cache_dir() -> Path:
    return cache_dir() / "weights"


def resolve_weights(value: str | Path) -> Path:
    """What ``--weights VALUE`` names: an existing file, a fetched official file
    (``yolov3-tiny``, ``yolov3``) or the bundled demo model's weights (``demo``)."""
    path = Path(value)
    if path.is_file():
        return path
    name = str(value)
    if name == "demo":
        from workbench.darknet.bundle import find_bundle

        return find_bundle("demo").weights
    if name in KNOWN_WEIGHTS:
        cached = weights_cache_dir() / KNOWN_WEIGHTS[name].file_name
        if cached.is_file():
            return cached
        raise WorkbenchError(f"{name}: not downloaded yet (looked for {cached}); run "
                             f"`workbench weights fetch {name}`, or {_OTHER_MEANS}")
    raise WorkbenchError(f"{value}: weights file not found (give a file, or one of "
                         f"{', '.join(KNOWN_WEIGHTS)}, demo)")


@dataclass(frozen=True)
class FetchPlan:
    url: str
    dest: Path
    sha256: str | None
    size: int | None = None
    darknet: bool = False  # check the darknet header (the official files)


def plan_fetch(source: str, *, sha256: str | None = None, out: Path | None = None) -> FetchPlan:
    """Where ``workbench weights fetch SOURCE`` downloads from and to, and what it checks."""
    if sha256 is not None:
        sha256 = _checked_sha256(sha256)
    known = KNOWN_WEIGHTS.get(source)
    if known is not None:
        if sha256 is not None and sha256 != known.sha256:
            raise WorkbenchError(f"--sha256 {sha256} is not the known SHA-256 of {source} "
                                 f"({known.sha256}); fetch another file by its URL")
        dest = out or weights_cache_dir() / known.file_name
        return FetchPlan(known.url, dest, known.sha256, known.size, darknet=True)
    if urlsplit(source).scheme not in ("http", "https"):
        raise WorkbenchError(f"{source}: neither a known name ({', '.join(KNOWN_WEIGHTS)}) "
                             "nor an http(s) URL")
    if sha256 is None:  # an unchecked file from anywhere would be trained and run on as is
        raise WorkbenchError(f"{source}: a URL needs --sha256 HEX, the file's SHA-256")
    return FetchPlan(source, out or weights_cache_dir() / _name_from_url(source), sha256)


def _checked_sha256(text: str) -> str:
    value = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise WorkbenchError(f"--sha256 {text!r} is not a SHA-256 (64 hexadecimal digits)")
    return value


def _name_from_url(url: str) -> str:
    """The URL's last path segment as a file name; never a path that leaves the cache."""
    name = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    if name in ("", ".", "..") or "\\" in name or not name.isprintable():
        raise WorkbenchError(f"{url}: the URL names no file; give --out FILE")
    return name


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


@dataclass(frozen=True)
class FetchResult:
    path: Path
    downloaded: bool      # False: the verified file was already there
    resumed_from: int = 0  # bytes a previous run had left in FILE.part


def fetch(plan: FetchPlan, *, timeout: float = TIMEOUT_S,
          progress: Progress | None = None) -> FetchResult:
    """Download ``plan.url`` to ``plan.dest`` (via FILE.part, resumable), verify, publish."""
    dest = Path(plan.dest)
    if dest.is_dir():
        raise WorkbenchError(f"{dest}: is a folder; give --out a file name")
    if dest.exists():
        problem = file_problem(dest, plan)
        if problem:  # never replace a file we did not write
            raise WorkbenchError(f"{dest}: already exists and is not this file ({problem}); "
                                 "remove it or choose another --out")
        return FetchResult(dest, downloaded=False)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    resumed = _download(plan, part, timeout, progress or (lambda done, total: None))
    problem = file_problem(part, plan)
    if problem:
        part.unlink()
        raise WorkbenchError(f"{plan.url}: the download is not the expected file ({problem}); "
                             f"deleted {part}")
    os.replace(part, dest)
    from workbench.storage.atomic import fsync_folder

    fsync_folder(dest.parent)  # the rename survives a power cut
    return FetchResult(dest, downloaded=True, resumed_from=resumed)


def _download(plan: FetchPlan, part: Path, timeout: float, progress: Progress) -> int:
    """Fill ``part`` with the whole file; returns the bytes it held before (resumed)."""
    have = part.stat().st_size if part.exists() else 0
    if plan.size is not None and have > plan.size:  # not a piece of this file
        part.unlink()
        have = 0
    if plan.size is not None and have == plan.size:
        return have  # a previous run got it all and stopped before the rename
    response = _open(plan.url, have, timeout)
    if response is None:  # 416: the part already holds all there is; verifying decides
        return have
    with response:
        start, total = _start_and_total(response, plan.url, have)
        with open(part, "ab" if start else "wb") as out:  # "wb": the server sent it all again
            _copy(response, out, start, total, plan.url, progress)
    return start


def _open(url: str, offset: int, timeout: float) -> HTTPResponse | None:
    """The response from byte ``offset`` on, None when the server says the file is whole
    (416). urllib and http.client are imported here: they cost every `workbench` start
    about 25 ms otherwise (python -X importtime)."""
    import urllib.error
    import urllib.request
    from http.client import HTTPException

    from workbench import __version__

    headers = {"User-Agent": f"detection-workbench/{__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                      timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            return None
        raise WorkbenchError(f"{url}: the server answered HTTP {exc.code} {exc.reason}; "
                             f"{_OTHER_MEANS}") from None
    except urllib.error.URLError as exc:
        raise _unreachable(url, exc.reason) from None
    except (OSError, HTTPException) as exc:  # a timeout, a reset before the headers
        raise _unreachable(url, exc) from None


def _unreachable(url: str, reason: object) -> WorkbenchError:
    return WorkbenchError(f"cannot reach {url} ({_reason(reason)}): check the network, "
                          f"or {_OTHER_MEANS}")


def _reason(reason: object) -> str:
    """What went wrong, in words: "Connection refused", not "[Errno 111] Connection refused"."""
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _start_and_total(response: HTTPResponse, url: str, offset: int) -> tuple[int, int | None]:
    """Where the body starts in the file and the file's full size (None: not said)."""
    if response.status == 206:
        got = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)",
                           response.headers.get("Content-Range", "").strip())
        if not got or int(got[1]) != offset:  # appending there would corrupt the file
            raise WorkbenchError(f"{url}: the server resumed at the wrong place (Content-Range "
                                 f"{response.headers.get('Content-Range')!r}, asked for byte "
                                 f"{offset}); delete the .part file and run again")
        return offset, None if got[2] == "*" else int(got[2])
    length = response.headers.get("Content-Length", "")
    return 0, int(length) if length.isdigit() else None


def _copy(response: HTTPResponse, out: BinaryIO, done: int, total: int | None, url: str, progress: Progress) -> None:
    from http.client import HTTPException  # loaded by urllib already; imported where used

    progress(done, total)
    while True:
        try:
            chunk = response.read(_CHUNK)
        except (OSError, HTTPException) as exc:  # what was written stays: resumable
            raise _stopped(url, done, total, exc) from None
        if not chunk:
            break
        out.write(chunk)
        done += len(chunk)
        progress(done, total)
    if total is not None and done < total:  # the server closed early without an error
        raise _stopped(url, done, total, "connection closed")


def _stopped(url: str, done: int, total: int | None, reason: object) -> WorkbenchError:
    of = f" of {total}" if total is not None else ""
    return WorkbenchError(f"the download of {url} stopped at byte {done}{of} "
                          f"({_reason(reason)}); run the same command again to continue from there")


def file_problem(path: Path, plan: FetchPlan) -> str | None:
    """Why ``path`` is not the file ``plan`` describes, or None when it is."""
    size = path.stat().st_size
    if plan.size is not None and size != plan.size:
        return f"{size} bytes, expected {plan.size}"
    if plan.darknet:
        problem = darknet_header_problem(path)
        if problem:
            return problem
    if plan.sha256 is not None:
        digest = sha256_file(path)
        if digest != plan.sha256:
            return f"SHA-256 {digest}, expected {plan.sha256}"
    return None


def darknet_header_problem(path: Path) -> str | None:
    """Does the file start like darknet weights (an HTML error page does not)?"""
    with _open_regular(path) as f:
        head = f.read(20)
    if len(head) < 20:
        return f"{len(head)} bytes is too short for a darknet weights header"
    major, minor, _revision = struct.unpack("<3i", head[:12])
    if not (0 <= major <= 1000 and 0 <= minor <= 1000):  # the rule of weights.read_weights
        return f"header version {major}.{minor} is not a darknet weights file"
    return None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with _open_regular(path) as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading through :func:`workbench.storage.files.open_regular`: a FIFO or
    device given as --out is refused in one line instead of blocking the read."""
    from workbench.storage.files import open_regular

    return os.fdopen(open_regular(path), "rb")
