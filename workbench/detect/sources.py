"""Where a run's images come from: an image, a folder (recursive), a list file or paths.

A source file that is missing, or is a FIFO, socket or device named like an image, a list or
a video, is refused in one line before anything opens it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from workbench.data.images import is_image, list_images
from workbench.errors import FormatError, WorkbenchError
from workbench.formats import decode_text, split_lines
from workbench.storage.files import not_regular, read_regular


def resolve_sources(source: str | Path | Iterable[str | Path]) -> list[Path]:
    """Image paths from an image file, a folder (recursive) or a list file (one path a line,
    relative to the list file's folder), or from an iterable of paths."""
    if not isinstance(source, str | Path):
        return [Path(p) for p in source]
    source = Path(source)
    if source.is_dir():
        return list_images(source)
    check_source_file(source, "no such image, folder or list file")
    if is_image(source):
        return [source]
    return read_list_file(source)


def check_source_file(source: Path, missing: str) -> None:
    """A missing source (WorkbenchError ``SOURCE: missing``) and a FIFO, socket or device
    named like an image, a list or a video are refused here, in one line, before anything
    opens them (a FIFO would block the reader)."""
    try:
        mode = source.stat().st_mode
    except FileNotFoundError:
        raise WorkbenchError(f"{source}: {missing}") from None
    except OSError as exc:
        raise FormatError(source, f"cannot read: {exc.strerror or exc}") from None
    kind = not_regular(mode)
    if kind is not None:
        raise FormatError(source, f"is {kind}, not a regular file; not read")


#: a list file larger than this is refused: 256 MiB holds some three million paths
MAX_LIST_BYTES = 1 << 28


def read_list_file(source: Path) -> list[Path]:
    """The image paths of a list file, one a line (``#`` comments), relative ones to the list
    file's folder. A line no path can hold (a NUL byte) is a FormatError naming the line:
    the OS would refuse it later, as a ValueError far from the file."""
    try:
        text = decode_text(read_regular(source, MAX_LIST_BYTES), source)
    except FormatError as err:
        raise FormatError(source, f"not an image, and not readable as a list file: "
                          f"{err.message}", line=err.line) from None
    paths = []
    for number, line in enumerate(split_lines(text), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "\0" in line:
            raise FormatError(source, "holds a NUL byte, which no file name can; not a list "
                              "of image paths", line=number)
        p = Path(line)
        paths.append(p if p.is_absolute() else source.parent / p)
    return paths
