"""YOLO (Darknet) labels: one ``stem.txt`` per image, lines ``class cx cy w h``.

Centre and size are normalized by the EXIF-oriented image's width and height. Written as
labelImg does (``%d %.6f %.6f %.6f %.6f``, single spaces); read with any whitespace and any
line ending. An empty file means "labeled, nothing there"; a missing one "not labeled yet".
Class names live in ``classes.txt`` (labelImg) or ``obj.names`` (darknet), one per line, and
the order is the meaning of the class ids, so they are never re-ordered here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path

from workbench.errors import FormatError
from workbench.formats import (
    CLIP_TOLERANCE,
    ProblemLog,
    clip_box,
    decode_text,
    read_bytes,
    split_lines,
)
from workbench.labels.dataset import MAX_CLASSES, Box, ClassList
from workbench.storage.atomic import atomic_write_text

LINE_FORMAT = "%d %.6f %.6f %.6f %.6f"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # what XML and list files cannot hold
_CLASS_ID = re.compile(r"\+?[0-9]+(\.0*)?\Z")  # ASCII digits; "3.0" from some exporters


def parse_yolo(text: str, path: str | Path, width: int, height: int,
               num_classes: int | None = None, log: ProblemLog | None = None) -> list[Box]:
    """Boxes in float pixels from the text of a YOLO label file.

    Bad lines (wrong field count, non-numbers, NaN, negative size, class id out of range)
    are FormatErrors naming ``path:line``; boxes sticking out of the image are clipped with
    a warning in ``log``. ``num_classes=None`` skips the class range check.
    """
    log = log if log is not None else ProblemLog()
    if width <= 0 or height <= 0:
        raise FormatError(path, f"cannot place YOLO boxes: image size {width}x{height} unknown")
    boxes: list[Box] = []
    limit = num_classes if num_classes is not None else MAX_CLASSES
    low, right, bottom = -CLIP_TOLERANCE, width + CLIP_TOLERANCE, height + CLIP_TOLERANCE
    for number, raw in enumerate(split_lines(text.removeprefix("\ufeff")), start=1):
        fields = raw.split()
        if not fields:
            continue
        # fast path for the well-formed line inside the image (opening 10,000 files is
        # dominated by this loop); anything unusual goes through the full checks below
        if len(fields) == 5 and fields[0].isdigit() and fields[0].isascii():
            try:
                cx, cy, w, h = float(fields[1]), float(fields[2]), float(fields[3]), float(
                    fields[4])
            except ValueError:
                pass
            else:
                total = cx + cy + w + h  # finite and not NaN exactly when total - total == 0
                class_id = int(fields[0]) if len(fields[0]) <= 9 else limit
                if total - total == 0 and w >= 0 and h >= 0 and class_id < limit:
                    w, h = w / 2, h / 2
                    x1, y1 = round((cx - w) * width, 9), round((cy - h) * height, 9)
                    x2, y2 = round((cx + w) * width, 9), round((cy + h) * height, 9)
                    if x1 >= low and y1 >= low and x2 <= right and y2 <= bottom:
                        boxes.append(Box(x1, y1, x2, y2, class_id))
                        continue
        try:
            box = _parse_line(fields, width, height, num_classes)
        except ValueError as exc:
            log.error(FormatError(path, str(exc), line=number))
            continue
        clipped = clip_box(box, width, height, log, path, line=number)
        if clipped is not None:
            boxes.append(clipped)
    return boxes


def _parse_line(fields: list[str], width: int, height: int, num_classes: int | None) -> Box:
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields 'class cx cy w h', found {len(fields)}")
    if not _CLASS_ID.match(fields[0]):
        raise ValueError(f"class id {fields[0]!r} is not a whole number")
    digits = fields[0].lstrip("+").split(".")[0]
    class_id = int(digits) if len(digits) <= 9 else 10**9
    if class_id >= MAX_CLASSES:
        raise ValueError(f"class id {fields[0]} is above the limit of {MAX_CLASSES:,} classes")
    if num_classes is not None and class_id >= num_classes:
        raise ValueError(f"class id {class_id} is out of range: the class list has "
                         f"{num_classes} name{'s' if num_classes != 1 else ''}")
    values = []
    for name, field_text in zip(("cx", "cy", "w", "h"), fields[1:], strict=True):
        try:
            value = float(field_text)
        except ValueError:
            raise ValueError(f"{name} {field_text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{name} is {field_text!r}, not a finite number")
        values.append(value)
    cx, cy, w, h = values
    if w < 0 or h < 0:
        raise ValueError(f"negative box size w={w:g} h={h:g}")
    # rounding to 1e-9 px removes float noise (3.999999999999999 -> 4.0) and is far below
    # the file's own precision, so text read and written again is unchanged
    return Box(round((cx - w / 2) * width, 9), round((cy - h / 2) * height, 9),
               round((cx + w / 2) * width, 9), round((cy + h / 2) * height, 9), class_id)


def read_yolo(path: str | Path, width: int, height: int, num_classes: int | None = None,
              log: ProblemLog | None = None) -> list[Box]:
    """Boxes from the YOLO label file at ``path`` (see :func:`parse_yolo`)."""
    return parse_yolo(decode_text(read_bytes(path), path), path, width, height, num_classes,
                      log)


def format_yolo(boxes: Iterable[Box], width: int, height: int) -> str:
    """The text of a YOLO label file, one ``%d %.6f %.6f %.6f %.6f`` line per box."""
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot normalize boxes: image size {width}x{height}")
    lines = []
    for box in boxes:
        cx = (box.x1 + box.x2) / 2 / width
        cy = (box.y1 + box.y2) / 2 / height
        lines.append(LINE_FORMAT % (box.class_id, cx, cy, box.width / width,
                                    box.height / height) + "\n")
    return "".join(lines)


def format_yolo_detections(boxes: Iterable[Box], scores: Iterable[float], width: int,
                           height: int) -> str:
    """Detections as YOLO lines with a trailing confidence, ``class cx cy w h conf``: what
    ``workbench detect --format yolo`` writes and ``workbench eval`` reads back."""
    lines = format_yolo(boxes, width, height).splitlines()
    scores = list(scores)
    if len(lines) != len(scores):
        raise ValueError(f"{len(lines)} boxes but {len(scores)} scores")
    return "".join(f"{line} {score:.6f}\n" for line, score in zip(lines, scores, strict=True))


def parse_yolo_detections(text: str, path: str | Path, width: int, height: int,
                          num_classes: int | None = None) -> tuple[list[Box], list[float]]:
    """Boxes in float pixels and their confidences from ``class cx cy w h conf`` lines.

    Strict, unlike label files: any bad line is a FormatError naming ``path:line``; boxes are
    not clipped (a detector may place them past the border).
    """
    if width <= 0 or height <= 0:
        raise FormatError(path, f"cannot place YOLO boxes: image size {width}x{height} unknown")
    boxes: list[Box] = []
    scores: list[float] = []
    for number, raw in enumerate(split_lines(text.removeprefix("\ufeff")), start=1):
        fields = raw.split()
        if not fields:
            continue
        if len(fields) != 6:
            raise FormatError(path, f"expected 6 fields 'class cx cy w h confidence', found "
                              f"{len(fields)}", line=number)
        try:
            score = float(fields[5])
            finite = all(math.isfinite(float(v)) for v in fields[1:])
        except ValueError:
            raise FormatError(path, "not a number in 'class cx cy w h confidence'",
                              line=number) from None
        if not finite:
            raise FormatError(path, "NaN or infinite value", line=number)
        try:
            box = _parse_line(fields[:5], width, height, num_classes)
        except ValueError as exc:
            raise FormatError(path, str(exc), line=number) from None
        if not math.isfinite(box.x1 + box.y1 + box.x2 + box.y2):
            raise FormatError(path, "box too large: its pixel coordinates overflow",
                              line=number)
        boxes.append(box)
        scores.append(score)
    return boxes, scores


def write_yolo(path: str | Path, boxes: Iterable[Box], width: int, height: int) -> None:
    """Write a YOLO label file atomically (an empty list writes an empty file)."""
    atomic_write_text(path, format_yolo(boxes, width, height))


def parse_classes(text: str, path: str | Path) -> ClassList:
    """A class list from ``classes.txt``/``obj.names`` text: one name per line, in order.

    Blank lines at the end are ignored; a blank line or a repeated name in between would
    shift or merge class ids, so both are FormatErrors naming the line.
    """
    lines = [line.strip() for line in split_lines(text.removeprefix("\ufeff"))]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > MAX_CLASSES:
        raise FormatError(path, f"{len(lines):,} lines: more than the limit of "
                          f"{MAX_CLASSES:,} classes", line=MAX_CLASSES + 1)
    classes = ClassList()
    for number, name in enumerate(lines, start=1):
        if not name:
            raise FormatError(path, "blank line inside the class list (it would shift the "
                              "class ids below it)", line=number)
        if _CONTROL.search(name):
            raise FormatError(path, f"class name {name!r} has a control character",
                              line=number)
        if classes.index(name) is not None:
            raise FormatError(path, f"class name {name!r} appears twice", line=number)
        classes.append(name)
    return classes


def read_classes(path: str | Path) -> ClassList:
    """The class list in ``classes.txt`` or ``obj.names`` at ``path``."""
    return parse_classes(decode_text(read_bytes(path), path), path)


def format_classes(classes: Iterable[str]) -> str:
    return "".join(f"{name}\n" for name in classes)


def write_classes(path: str | Path, classes: Iterable[str]) -> None:
    """Write a class list file atomically, one name per line, in the given order."""
    atomic_write_text(path, format_classes(classes))
