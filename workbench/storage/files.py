"""Opening data set files safely: only regular files, never more than a size cap.

A FIFO named ``x.jpg`` would block ``open()`` forever and a link to ``/dev/zero`` named
``z.txt`` would be read until memory runs out, so every data set file is opened without
blocking, checked to be a regular file, and read up to a limit. Errors are
:class:`workbench.errors.FormatError` (or the subclass the caller passes) naming the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from workbench.errors import FormatError

# a label or class list file larger than this is refused (a 16 MiB YOLO file holds about
# 400,000 boxes for one image; bigger ones are damage or an attack, and parsing them takes
# minutes and gigabytes)
MAX_LABEL_BYTES = 16 << 20
# COCO files hold a whole data set (COCO 2017 train is 450 MB)
MAX_COCO_BYTES = 2 << 30
# an image file larger than this is refused before reading
MAX_IMAGE_BYTES = 1 << 30
# small metadata files read by name. An Ultralytics data.yaml holds names and a few paths
# (100,000 class names fit in about 2 MiB); a prediction set's run.json lists every image
# it covers in about 64 bytes each (64 MiB: a million images); a bundle's thresholds.json
# holds two keys.
MAX_DATA_YAML_BYTES = 4 << 20
MAX_RUN_INFO_BYTES = 64 << 20
MAX_SMALL_JSON_BYTES = 1 << 20

_KINDS = {stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device",
          stat.S_IFSOCK: "a socket", stat.S_IFDIR: "a folder"}


_READ_FLAGS = (os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0)
               | getattr(os, "O_CLOEXEC", 0))


def not_regular(mode: int) -> str | None:
    """Why a file of this ``st_mode`` is not read ("a FIFO", ...), None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def resolved_inside(path: str | Path, root: str | Path) -> bool:
    """Whether ``path``, every link resolved, lies in the folder ``root`` (also resolved).

    Resolve first, then compare: ``a/../../x`` and a link named like a data set file that
    leads elsewhere both show up as outside."""
    real = os.path.realpath(path)
    top = os.path.realpath(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def open_regular(path: str | Path, error: type[FormatError] = FormatError) -> int:
    """A read-only descriptor of the regular file ``path``; ``error`` when it is not one.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer; the
    fstat afterwards refuses it (and devices, sockets, folders) before anything is read.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except IsADirectoryError:
        raise error(path, "is a folder, not a file") from None
    except OSError as exc:
        raise error(path, f"cannot read file: {exc.strerror or exc}") from None
    try:
        kind = not_regular(os.fstat(fd).st_mode)
    except OSError as exc:
        os.close(fd)
        raise error(path, f"cannot read file: {exc.strerror or exc}") from None
    if kind is not None:
        os.close(fd)
        raise error(path, f"is {kind}, not a regular file; not read")
    return fd  # O_NONBLOCK does nothing to a regular file's reads: no need to clear it


def read_regular(path: str | Path, limit: int = MAX_LABEL_BYTES,
                 error: type[FormatError] = FormatError) -> bytes:
    """The bytes of the regular file ``path``; ``error`` if it is not one or exceeds ``limit``."""
    fd = open_regular(path, error)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise error(path, f"file is {size:,} bytes, more than the {limit:,} this program "
                        "reads; not read")
        chunks = []
        total = 0
        # os-level reads: a third of the cost of open() for the many small label files
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:  # the file grew while we read it
                raise error(path, f"file is more than the {limit:,} bytes this program "
                            "reads; not read")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise error(path, f"cannot read file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
