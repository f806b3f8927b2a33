"""Pascal VOC XML labels, as labelImg writes and reads them: one ``stem.xml`` per image.

Pixel convention (documented in docs/formats.md): VOC coordinates are 1-based, inclusive
integer pixel indices, as in the VOC devkit. Pixel ``i`` covers ``[i - 1, i)`` in our float
pixel-edge coordinates, so

    writing: xmin = round(x1) + 1, ymin = round(y1) + 1, xmax = round(x2), ymax = round(y2)
    reading: x1 = xmin - 1,        y1 = ymin - 1,        x2 = xmax,        y2 = ymax

A whole-image box is ``1, 1, W, H``; a file read and written again is unchanged, and boxes
written and read again move by at most half a pixel. Float coordinates are accepted.

XML is parsed with entity resolution, DTD loading and network access off, and a document
with a DOCTYPE is refused. ``filename``/``path`` inside the file are informative only: the
label file always sits beside its image and is never used to find where to write.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from workbench.errors import FormatError
from workbench.formats import ProblemLog, clip_box, read_bytes
from workbench.labels.dataset import Box, ClassList
from workbench.storage.atomic import atomic_write_bytes

# labelImg's VOC coordinates can be off by one either way (0-based writers, int truncation):
# clipping that much is silent, anything more is reported
VOC_CLIP_TOLERANCE = 1.0


@dataclass
class VocObject:
    """One ``<object>``: the class name, float pixel corners in our convention, flags."""

    name: str
    x1: float
    y1: float
    x2: float
    y2: float
    difficult: bool = False
    truncated: bool = False
    pose: str = "Unspecified"
    # detections only (``workbench detect --format voc``): the model's confidence, an element
    # labelImg ignores; None in a label file
    score: float | None = None


@dataclass
class VocAnnotation:
    """The content of one VOC file; ``width``/``height`` are 0 when ``<size>`` is absent."""

    filename: str = ""
    folder: str = ""
    path: str = ""
    width: int = 0
    height: int = 0
    depth: int = 3
    verified: bool = False
    objects: list[VocObject] = field(default_factory=list)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_blank_text=True)


def parse_voc(data: bytes, path: str | Path, log: ProblemLog | None = None) -> VocAnnotation:
    """Read the bytes of a VOC file; FormatError names the file and the element at fault.

    A bad ``<object>`` is an error for that object only: with a non-strict ``log`` the
    other objects still load.
    """
    log = log if log is not None else ProblemLog()
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        lines = str(exc.msg or exc).splitlines() or ["cannot parse"]
        raise FormatError(path, f"malformed XML: {lines[0]}", line=exc.lineno or None) from None
    except (ValueError, TypeError) as exc:
        raise FormatError(path, f"malformed XML: {exc}") from None
    if root is None:
        raise FormatError(path, "empty XML document")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise FormatError(path, "XML with a DOCTYPE/DTD is refused (entities could read "
                          "other files)", line=1)
    if root.tag != "annotation":
        raise FormatError(path, f"root element is <{_tag(root)}>, expected <annotation>",
                          element=_tag(root))
    ann = VocAnnotation(
        filename=_text(root, "filename"), folder=_text(root, "folder"),
        path=_text(root, "path"),
        verified=(root.get("verified") or "").strip().lower() in ("yes", "1", "true"))
    size = root.find("size")
    if size is not None:
        ann.width = _size_value(size, "width", path)
        ann.height = _size_value(size, "height", path)
        ann.depth = _size_value(size, "depth", path, default=3)
    for index, obj in enumerate(root.iterfind("object"), start=1):
        try:
            ann.objects.append(_parse_object(obj, index, path))
        except FormatError as err:
            log.error(err)
    return ann


def _tag(element: etree._Element) -> str:
    tag = element.tag
    return tag if isinstance(tag, str) else "?"


def _text(parent: etree._Element, tag: str) -> str:
    child = parent.find(tag)
    return (child.text or "").strip() if child is not None else ""


def _number(text: str, where: str, path: str | Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise FormatError(path, f"{text!r} is not a number", element=where) from None
    if not math.isfinite(value):
        raise FormatError(path, f"{text!r} is not a finite number", element=where)
    return value


def _size_value(size: etree._Element, tag: str, path: str | Path, default: int = 0) -> int:
    text = _text(size, tag)
    if not text:
        return default
    value = _number(text, f"size/{tag}", path)
    if value < 0 or value > 1e7:
        raise FormatError(path, f"{text!r} is not an image size", element=f"size/{tag}")
    return int(value)


def _flag(obj: etree._Element, tag: str, where: str, path: str | Path) -> bool:
    text = _text(obj, tag)  # empty <difficult/> means 0, as other tools write it
    if not text:
        return False
    if text.lower() in ("true", "yes"):
        return True
    if text.lower() in ("false", "no"):
        return False
    return _number(text, f"{where}/{tag}", path) != 0


def _parse_object(obj: etree._Element, index: int, path: str | Path) -> VocObject:
    where = f"object[{index}]"
    name = _text(obj, "name")
    if not name:
        raise FormatError(path, "object without a class name", element=f"{where}/name")
    bndbox = obj.find("bndbox")
    if bndbox is None:
        raise FormatError(path, "object without a bounding box", element=f"{where}/bndbox")
    coords = {}
    for tag in ("xmin", "ymin", "xmax", "ymax"):
        text = _text(bndbox, tag)
        if not text:
            raise FormatError(path, f"missing <{tag}>", element=f"{where}/bndbox/{tag}")
        coords[tag] = _number(text, f"{where}/bndbox/{tag}", path)
    if coords["xmax"] < coords["xmin"] or coords["ymax"] < coords["ymin"]:
        raise FormatError(path, f"xmax/ymax smaller than xmin/ymin ({coords['xmin']:g}, "
                          f"{coords['ymin']:g}, {coords['xmax']:g}, {coords['ymax']:g})",
                          element=f"{where}/bndbox")
    return VocObject(name=name, x1=coords["xmin"] - 1, y1=coords["ymin"] - 1,
                     x2=coords["xmax"], y2=coords["ymax"],
                     difficult=_flag(obj, "difficult", where, path),
                     truncated=_flag(obj, "truncated", where, path),
                     pose=_text(obj, "pose") or "Unspecified", score=_score(obj, where, path))


def _score(obj: etree._Element, where: str, path: str | Path) -> float | None:
    text = _text(obj, "score")
    if not text:
        return None
    value = _number(text, f"{where}/score", path)
    if not 0.0 <= value <= 1.0:
        raise FormatError(path, f"score {text!r} is not between 0 and 1",
                          element=f"{where}/score")
    return value


def read_voc(path: str | Path, log: ProblemLog | None = None) -> VocAnnotation:
    """Read the VOC file at ``path`` (see :func:`parse_voc`)."""
    return parse_voc(read_bytes(path), path, log)


def voc_boxes(ann: VocAnnotation, classes: ClassList, width: int, height: int,
              path: str | Path, log: ProblemLog, *, adopt_unknown: bool = False) -> list[Box]:
    """The annotation's objects as Boxes with ids into ``classes``.

    Names missing from ``classes`` are noted (``classes.note_unknown``) and their objects
    reported and skipped, unless ``adopt_unknown`` appends the name. Boxes are clipped to
    ``width`` x ``height`` (the image's real, EXIF-oriented size).
    """
    if width and height and ann.width and ann.height and (ann.width, ann.height) != (width,
                                                                                      height):
        log.warn(path, f"<size> says {ann.width}x{ann.height} but the image is "
                 f"{width}x{height}; boxes are kept in the image's own frame", element="size")
    boxes = []
    for index, obj in enumerate(ann.objects, start=1):
        where = f"object[{index}]/name"
        class_id = classes.index(obj.name)
        if class_id is None and adopt_unknown:
            class_id = classes.append(obj.name)
        if class_id is None:
            classes.note_unknown(obj.name)
            log.error(FormatError(path, f"class {obj.name!r} is not in the class list "
                                  "(object skipped)", element=where))
            continue
        box = Box(obj.x1, obj.y1, obj.x2, obj.y2, class_id, obj.difficult)
        clipped = clip_box(box, width, height, log, path, element=f"object[{index}]/bndbox",
                           tolerance=VOC_CLIP_TOLERANCE)
        if clipped is not None:
            if clipped is not box:
                box = clipped
            elif (box.x1 < 0 or box.y1 < 0 or box.x2 > width or box.y2 > height) and width:
                # within the tolerance: a 0-based writer's xmin=0; pin to the image silently
                box = Box(max(box.x1, 0.0), max(box.y1, 0.0), min(box.x2, float(width)),
                          min(box.y2, float(height)), box.class_id, box.difficult)
            boxes.append(box)
    return boxes


def _pixel(value: float) -> int:
    return math.floor(value + 0.5)  # round half up, the same on every platform


def _pixel_span(low: float, high: float, size: int) -> tuple[int, int]:
    """1-based inclusive pixels (first, last) for the float edges ``low``..``high``.

    A span under one pixel becomes the pixel holding its centre, so every edge moves by
    less than one pixel.
    """
    first, last = _pixel(low) + 1, _pixel(high)
    if last < first:
        first = last = math.floor((low + high) / 2) + 1
    if size > 0:
        first, last = min(max(first, 1), size), min(max(last, 1), size)
    return first, max(first, last)


def format_voc(boxes: Sequence[Box], class_names: Sequence[str], image_path: str | Path,
               width: int, height: int, *, depth: int = 3, verified: bool = False,
               scores: Sequence[float] | None = None) -> bytes:
    """The bytes of a VOC file with every field labelImg writes (integer coordinates).

    ``scores`` (detections) adds a ``<score>`` to each object, so ``eval`` can rank them.
    """
    image_path = Path(image_path)
    root = etree.Element("annotation")
    if verified:
        root.set("verified", "yes")
    etree.SubElement(root, "folder").text = image_path.parent.name
    etree.SubElement(root, "filename").text = image_path.name
    etree.SubElement(root, "path").text = os.path.abspath(image_path)
    source = etree.SubElement(root, "source")
    etree.SubElement(source, "database").text = "Unknown"
    size = etree.SubElement(root, "size")
    etree.SubElement(size, "width").text = str(int(width))
    etree.SubElement(size, "height").text = str(int(height))
    etree.SubElement(size, "depth").text = str(int(depth))
    etree.SubElement(root, "segmented").text = "0"
    for index, box in enumerate(boxes):
        xmin, xmax = _pixel_span(box.x1, box.x2, int(width))
        ymin, ymax = _pixel_span(box.y1, box.y2, int(height))
        obj = etree.SubElement(root, "object")
        etree.SubElement(obj, "name").text = class_names[box.class_id]
        etree.SubElement(obj, "pose").text = "Unspecified"
        # labelImg's rule: a box touching the image border is truncated
        touches = xmin == 1 or ymin == 1 or xmax == width or ymax == height
        etree.SubElement(obj, "truncated").text = "1" if touches else "0"
        etree.SubElement(obj, "difficult").text = "1" if box.difficult else "0"
        if scores is not None:
            etree.SubElement(obj, "score").text = f"{scores[index]:.6f}"
        bndbox = etree.SubElement(obj, "bndbox")
        for tag, value in (("xmin", xmin), ("ymin", ymin), ("xmax", xmax), ("ymax", ymax)):
            etree.SubElement(bndbox, tag).text = str(value)
    etree.indent(root, space="\t")
    return etree.tostring(root, encoding="utf-8", pretty_print=True)


def write_voc(path: str | Path, boxes: Sequence[Box], class_names: Sequence[str],
              image_path: str | Path, width: int, height: int, *, depth: int = 3,
              verified: bool = False) -> None:
    """Write a VOC file atomically at ``path`` (beside its image; the caller chooses)."""
    atomic_write_bytes(path, format_voc(boxes, class_names, image_path, width, height,
                                        depth=depth, verified=verified))
