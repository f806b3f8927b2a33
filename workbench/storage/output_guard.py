"""Outputs never land on inputs, and two runs never share one output folder.

Every verb that writes a file or a folder asks here first:

- ``refuse_input_as_output``: an output file is none of the inputs. Files are compared as
  the file system sees them (device and inode, links followed), so a symbolic link, a hard
  link or another spelling of an input is that input.
- ``refuse_folder_overlap``: an output folder is not an input folder, inside it, or above it.
- ``StagedFolder``: an output folder is built in a private folder beside it (same file
  system) and published by one rename, under a lock, only if OUT is still what the run saw
  when it started; otherwise the run says "OUT was created by another run" and publishes
  nothing. A run killed mid-way leaves only its private folder, which the next run removes.

Locks are ``flock`` locks on folders (no lock files are left behind); they die with their
process. Where the file system has no ``flock`` the checks still run, without the lock.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.storage.atomic import fsync_folder
from workbench.storage.files import read_regular

try:
    import fcntl
except ImportError:  # Windows: no flock; the state checks still run
    fcntl = None  # type: ignore[assignment]

_MARKER_LIMIT = 1 << 20  # a marker is a few hundred bytes; a huge one is not ours


def file_id(path: str | Path) -> tuple[int, int] | None:
    """(device, inode) of ``path`` with links followed; None when nothing is there."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def refuse_input_as_output(out: str | Path, inputs: Iterable[str | Path | None],
                           option: str = "--out") -> None:
    """WorkbenchError when the output file ``out`` is one of ``inputs`` (None entries are
    skipped). A path that does not exist yet is no input."""
    target = file_id(out)
    if target is None:
        return
    for given in inputs:
        if given is not None and file_id(given) == target:
            how = ("" if Path(out).resolve() == Path(given).resolve()
                   else ", through a link")
            raise WorkbenchError(f"{out}: {option} is the input {given} (the same file{how}); "
                                 "choose another name (inputs are never overwritten)")


def _ids_up_from(path: Path) -> set[tuple[int, int]]:
    """The ids of ``path`` (resolved) and of each folder above it that exists."""
    resolved = Path(path).resolve()
    return {i for i in map(file_id, (resolved, *resolved.parents)) if i is not None}


def refuse_folder_overlap(out: str | Path, source: str | Path, option: str = "--out") -> None:
    """WorkbenchError when the output folder ``out`` is the input folder ``source``, lies
    inside it, or holds it (an output there would write into the input, or be read as
    part of it). Compared by (device, inode), so links and bind mounts count."""
    out, source = Path(out), Path(source)
    source_id = file_id(source)
    if source_id is not None and source_id in _ids_up_from(out):
        raise WorkbenchError(f"{out}: the {option} folder is inside the source {source} (or is "
                             "it); choose a folder outside it (the source is never modified)")
    out_id = file_id(out)
    if out_id is not None and out_id in _ids_up_from(source):
        raise WorkbenchError(f"{out}: the {option} folder contains the source {source}; "
                             "choose a folder outside it")


# ---------------------------------------------------------------------- folder states

def folder_state(out: Path, marker: str) -> tuple[str, bytes | None]:
    """What is at ``out`` now: ("absent" | "empty" | "marked" | "other" | "link" | "file",
    the marker file's bytes when "marked"). "marked": a folder holding ``marker``, the file
    a verb writes into its own finished output."""
    if out.is_symlink():
        return "link", None
    if not out.exists():
        return "absent", None
    if not out.is_dir():
        return "file", None
    data = _read_marker(out / marker)
    if data is not None:
        return "marked", data
    return ("other" if any(out.iterdir()) else "empty"), None


def _read_marker(path: Path) -> bytes | None:
    """The bytes of a regular marker file (never a FIFO, a folder or a huge file)."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return read_regular(path, _MARKER_LIMIT)
    except WorkbenchError:
        return None


# ---------------------------------------------------------------------- locks

def _try_lock(fd: int, blocking: bool) -> bool | None:
    """flock ``fd``: True when held, False when another process holds it, None when this
    file system cannot lock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        return None
    return True


def _open_folder(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
                       | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None


@contextlib.contextmanager
def locked_folder(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (short sections only: creating and publishing
    the outputs that live in it). Without flock the block runs unlocked."""
    fd = _open_folder(folder)
    try:
        if fd is not None:
            _try_lock(fd, blocking=True)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock


def hold_folder(folder: Path, busy: str = "is being written by another run; choose "
                "another folder or wait for that run to end") -> int | None:
    """Lock ``folder`` for as long as this process keeps the returned descriptor open
    (or dies): a second process gets WorkbenchError("FOLDER: ``busy``"). None where flock
    is not available."""
    fd = _open_folder(folder)
    if fd is None:
        return None
    held = _try_lock(fd, blocking=False)
    if held is False:
        os.close(fd)
        raise WorkbenchError(f"{folder}: {busy}")
    if held is None:
        os.close(fd)
        return None
    return fd


# ---------------------------------------------------------------------- staged output

class StagedFolder:
    """A private folder beside ``out`` that an output is built in, then published to
    ``out`` by one rename (see the module docstring).

    ``expected`` is ``folder_state(out, marker)`` as the caller saw and accepted it:
    "absent" or "empty" (OUT is created), or "marked" (an earlier output of the same verb,
    replaced whole). ``publish`` refuses when OUT has changed since.
    """

    def __init__(self, out: Path, marker: str, expected: tuple[str, bytes | None]) -> None:
        if expected[0] not in ("absent", "empty", "marked"):
            raise ValueError(f"cannot stage over a folder in state {expected[0]}")
        self.out, self.marker, self.expected = Path(out), marker, expected
        parent = self.out.parent
        parent.mkdir(parents=True, exist_ok=True)
        with locked_folder(parent):  # no other run probes our folder before we hold it
            remove_abandoned(self.out)
            self.path = Path(tempfile.mkdtemp(prefix=_prefix(self.out), dir=parent))
            self._fd = hold_folder(self.path)

    def publish(self) -> None:
        """Move the finished build to OUT; WorkbenchError (and nothing published) when
        another run created or replaced OUT meanwhile."""
        out = self.out
        with locked_folder(out.parent):
            if folder_state(out, self.marker) != self.expected:
                self.discard()
                raise WorkbenchError(self._lost())
            old = None
            try:
                if self.expected[0] == "marked":  # the earlier output goes, whole
                    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-",
                                                dir=out.parent))
                    os.replace(out, old)
                os.replace(self.path, out)  # onto nothing, or onto an empty folder
            except OSError as exc:
                if old is not None and not out.exists():
                    os.replace(old, out)  # put the earlier output back
                self.discard()
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR, errno.EISDIR):
                    raise WorkbenchError(self._lost()) from None  # a run without our lock
                raise
            fsync_folder(out.parent)
        self._release()
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        """Remove the private folder (a failed or refused run publishes nothing)."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _lost(self) -> str:
        what = "replaced" if self.expected[0] == "marked" else "created"
        return (f"{self.out} was {what} by another run while this one ran; this run's output "
                "was discarded (run it again, or choose another folder)")


def _prefix(out: Path) -> str:
    return f".{out.name}.building-"


def remove_abandoned(out: Path) -> None:
    """Remove the private folders beside ``out`` whose run is gone (killed mid-way): a live
    run holds its folder's lock, a dead one's lock went with it. Folders that cannot be
    probed (no flock here) are left alone."""
    for folder in out.parent.glob(_prefix(out) + "*"):
        if folder.is_symlink() or not folder.is_dir():
            continue
        fd = _open_folder(folder)
        if fd is None:
            continue
        try:
            if _try_lock(fd, blocking=False):
                shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
