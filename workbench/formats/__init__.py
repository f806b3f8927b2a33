"""Label file formats: YOLO txt, Pascal VOC XML, COCO JSON and the darknet training layout.

Readers turn files into :class:`workbench.labels.dataset.Box` objects (float pixels in the
EXIF-oriented image) and writers turn them back; nothing else in the program parses or
writes label files. Every reader reports bad input as :class:`workbench.errors.FormatError`
naming the file and the line or element; a :class:`ProblemLog` decides whether the first
error raises (strict, the default) or is collected so the rest of the file still loads.
"""

from __future__ import annotations

from pathlib import Path

from workbench.errors import FormatError
from workbench.labels.dataset import Box
from workbench.storage.files import MAX_LABEL_BYTES, read_regular

# a box may stick out of the image by this much (pixels) before it counts as "outside":
# formatting to 6 decimals moves the edges of a large image by a few thousandths of a pixel
CLIP_TOLERANCE = 0.01


class ProblemLog:
    """What went wrong while reading one or more files.

    ``strict=True`` raises the first error; otherwise errors are kept in :attr:`errors` and
    the reader skips the bad line or element. Warnings (a box clipped to the image) never
    raise; they are one-line strings in :attr:`warnings`.
    """

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self.errors: list[FormatError] = []
        self.warnings: list[str] = []

    def error(self, err: FormatError) -> None:
        if self.strict:
            raise err
        self.errors.append(err)

    def warn(self, path: str | Path, message: str, *, line: int | None = None,
             element: str | None = None) -> None:
        self.warnings.append(str(FormatError(path, message, line=line, element=element)))

    def messages(self) -> list[str]:
        """Errors then warnings, one line each (what an ImageRecord's ``problems`` holds)."""
        return [str(e) for e in self.errors] + list(self.warnings)


def clip_box(box: Box, width: int, height: int, log: ProblemLog, path: str | Path, *,
             line: int | None = None, element: str | None = None,
             tolerance: float = CLIP_TOLERANCE) -> Box | None:
    """``box`` limited to the image, warning when it stuck out by more than ``tolerance``.

    Returns None (after recording an error) when nothing of the box is inside the image.
    Boxes within the tolerance are returned unchanged so exact round trips stay exact.
    """
    if width <= 0 or height <= 0:
        return box
    x1, y1, x2, y2 = box.xyxy()
    outside = (x1 < -tolerance or y1 < -tolerance or x2 > width + tolerance
               or y2 > height + tolerance)
    if not outside:
        return box
    cx1, cy1 = min(max(x1, 0.0), float(width)), min(max(y1, 0.0), float(height))
    cx2, cy2 = min(max(x2, 0.0), float(width)), min(max(y2, 0.0), float(height))
    if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
        log.error(FormatError(path, f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the "
                              f"{width}x{height} image", line=line, element=element))
        return None
    log.warn(path, f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) sticks out of the {width}x{height} "
             "image; clipped", line=line, element=element)
    return Box(cx1, cy1, cx2, cy2, box.class_id, box.difficult)


def decode_text(data: bytes, path: str | Path) -> str:
    """UTF-8 text (a byte-order mark is dropped); FormatError naming the line otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise FormatError(path, f"not UTF-8 text (byte 0x{data[exc.start]:02x})",
                          line=line) from None


def read_bytes(path: str | Path, limit: int = MAX_LABEL_BYTES) -> bytes:
    """The file's bytes; a missing, unreadable, non-regular (FIFO, device) or larger than
    ``limit`` file is a FormatError naming it."""
    return read_regular(path, limit)


def split_lines(text: str) -> list[str]:
    """Lines as editors number them: LF, CRLF and lone CR all end a line."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")
