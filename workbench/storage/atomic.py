"""Atomic writes: a crash mid-save never leaves a half-written label file.

Each write goes to a temporary file in the same folder (same filesystem, so the rename is
atomic), is flushed and fsync'ed, then renamed over the target with ``os.replace``, and the
folder is fsync'ed so the rename itself survives a power cut.

Rules for what is already there:

- a symbolic link is written *through*: the file it points to is replaced (in that file's
  folder) and the link stays a link;
- inside a :func:`writes_inside` block (every save into a data set folder, a prediction
  set), a path that goes through a link (the file or a folder above it) to somewhere
  outside the block's folders is refused before anything is written: a downloaded data
  set whose ``data.yaml`` or ``classes.txt`` links to ``~/.bashrc`` must not get the
  program to rewrite that file. A path without a link is never refused (``--labels DIR``
  may name a folder elsewhere on purpose);
- a read-only file (no write permission bit) is refused with a PermissionError naming it,
  even for root, who could otherwise rename over it;
- the new file keeps the old one's permission bits; a new file gets the usual
  ``0o666 & ~umask`` because the kernel applies the umask when the temporary file is
  created (no process-wide ``os.umask`` call, which would race other threads).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from workbench.errors import FormatError
from workbench.storage.files import open_regular, resolved_inside

_CHUNK = 1 << 20
_deferred = threading.local()  # per thread: the GUI's saves never lose their fsync
_confined = threading.local()  # per thread: the folders of the innermost writes_inside


@contextmanager
def writes_inside(*roots: str | Path) -> Iterator[None]:
    """Writes in this block (this thread only) refuse, with a FormatError naming the file, a
    target reached through a link that leads outside every one of ``roots``.

    One check at the one place every save goes through, instead of one per writer: the
    writers of labels, class lists, split files and data.yaml live in several modules.
    """
    previous = getattr(_confined, "roots", None)
    _confined.roots = tuple(Path(r) for r in roots)
    try:
        yield
    finally:
        _confined.roots = previous


def check_write_inside(path: str | Path, *roots: str | Path) -> None:
    """FormatError naming ``path`` when it goes through a link to a place outside ``roots``.

    Callers that write several files call this for all of them first, so a refusal
    leaves none of them written (a split is all its files or none)."""
    lexical = os.path.abspath(path)
    real = os.path.realpath(path)
    if real == lexical or any(resolved_inside(real, root) for root in roots):
        return  # no link on the way, or one that stays inside
    where = " or ".join(str(r) for r in roots)
    raise FormatError(path, f"leads through a link to {real}, outside {where}; not "
                      "written (replace the link with a copy to edit it here)")


@contextmanager
def one_sync_at_the_end() -> Iterator[None]:
    """Writes in this block (this thread only) skip their own fsyncs; one ``os.sync()`` at
    the end of a block that did not fail makes them all durable at once.

    For a folder that is published by one rename afterwards (``workbench convert``'s
    output): a crash before the rename discards the folder anyway, so per-file fsyncs
    (two per file, ~10 ms each on a real disk) buy nothing there.
    """
    _deferred.active = True
    try:
        yield
    finally:
        _deferred.active = False
    if hasattr(os, "sync"):
        os.sync()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, whole."""
    atomic_write_chunks(path, (data,))


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Text version of :func:`atomic_write_bytes`; writes ``\\n`` line endings."""
    atomic_write_bytes(path, text.encode(encoding))


def atomic_copy(src: str | Path, dst: str | Path) -> None:
    """Copy the regular file ``src`` to ``dst`` atomically: ``dst`` is whole or absent.

    ``src`` must be a regular file (a FIFO or device is refused, see
    :func:`workbench.storage.files.open_regular`); errors name the file at fault.
    """
    fd = open_regular(src)

    def chunks() -> Iterable[bytes]:
        while chunk := os.read(fd, _CHUNK):
            yield chunk

    try:
        atomic_write_chunks(dst, chunks())
    finally:
        os.close(fd)


def atomic_write_chunks(path: str | Path, chunks: Iterable[bytes]) -> None:
    """Write the concatenated ``chunks`` to ``path`` atomically (see the module rules)."""
    path = Path(path)
    roots = getattr(_confined, "roots", None)
    if roots is not None:
        check_write_inside(path, *roots)
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror, str(path)) from None
    if old is not None:
        if stat.S_ISDIR(old.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        if stat.S_ISREG(old.st_mode) and not old.st_mode & 0o222:
            raise PermissionError(errno.EACCES, "read-only file; not replaced", str(path))
    deferred = getattr(_deferred, "active", False)
    tmp, fd = _create_temp(target, path)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            if not deferred:
                os.fsync(f.fileno())
        if old is not None:
            os.chmod(tmp, old.st_mode & 0o7777)  # keep the permissions the user gave the file
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None:
            # name the file the user knows, not our temporary one
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    if not deferred:
        fsync_folder(target.parent)


def _create_temp(target: Path, shown: Path) -> tuple[str, int]:
    """A new hidden file beside ``target``, created with mode 0o666 so the kernel applies
    the umask; returns its path and an open descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(
        os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(target.parent, f".{target.name}.{os.urandom(4).hex()}.tmp")
        try:
            return tmp, os.open(tmp, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, str(shown)) from None
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(shown))


def fsync_folder(folder: Path) -> None:
    """Make the rename durable; folders cannot be opened this way on Windows (skipped)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)
