"""COCO detection JSON: import, export, and detection results files.

A COCO file holds ``images`` (id, file_name, width, height), ``annotations`` (id, image_id,
category_id, bbox ``[x, y, w, h]`` in pixels, area, iscrowd) and ``categories`` (id, name).
Boxes become ``Box(x, y, x + w, y + h)``; categories become the class list in the order they
are listed. ``iscrowd`` regions and our own ``difficult`` key both read as difficult boxes.

Writing assigns ids 1..N (images, categories, annotations) in dataset order and rounds
coordinates to 1e-9 px, so a file we wrote reads back to the same boxes and writes back to
the same bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from workbench.errors import FormatError
from workbench.formats import ProblemLog, clip_box, decode_text, read_bytes
from workbench.labels.dataset import Box, ClassList, ImageRecord
from workbench.storage.atomic import atomic_write_text
from workbench.storage.files import MAX_COCO_BYTES

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # what XML and list files cannot hold
# a side longer than this is damage, not an image (and 10**400 would overflow every float)
MAX_SIDE = 1 << 20
_DIGITS = 9  # coordinates are written to 1e-9 px: exact for anything a labeling tool makes


def _load_json(data: bytes | str, path: str | Path,
               object_hook: Callable[[dict], Any] | None = None) -> Any:
    text = decode_text(data, path) if isinstance(data, bytes) else data
    try:
        return json.loads(text, parse_constant=_no_constant, object_hook=object_hook)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"malformed JSON: {exc.msg} (column {exc.colno})",
                          line=exc.lineno) from None
    except ValueError as exc:
        raise FormatError(path, f"malformed JSON: {exc}") from None
    except RecursionError:
        raise FormatError(path, "malformed JSON: nested too deeply") from None


# the only keys parse_coco reads, at any level (the document's own included). Everything
# else (segmentation polygons and RLE counts above all: 3/4 of an instances file, and 4-5x
# their text's size as Python floats) is dropped as each object is parsed, so it is never
# all in memory at once
_READ_KEYS = frozenset({"images", "annotations", "categories", "id", "name", "file_name",
                        "width", "height", "image_id", "category_id", "bbox", "iscrowd",
                        "difficult"})


def _keep_read_keys(obj: dict) -> dict:
    # a new dict, not deletions: it is also smaller (fewer slots) than the one parsed
    return {key: value for key, value in obj.items() if key in _READ_KEYS}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _list_of_dicts(value: Any, where: str, path: str | Path) -> list[dict]:
    if not isinstance(value, list):
        raise FormatError(path, "expected a list", element=where)
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise FormatError(path, "expected an object", element=f"{where}[{index}]")
    return value


def _field(item: dict, key: str, where: str, path: str | Path, kind: type | tuple) -> Any:
    if key not in item:
        raise FormatError(path, f"missing {key!r}", element=where)
    value = item[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise FormatError(path, f"{key!r} has the wrong type ({type(value).__name__})",
                          element=f"{where}.{key}")
    return value


def _bbox(item: dict, where: str, path: str | Path) -> list[float]:
    bbox = _field(item, "bbox", where, path, list)
    if len(bbox) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                 for v in bbox):
        raise FormatError(path, "bbox must be 4 numbers [x, y, w, h]", element=f"{where}.bbox")
    try:
        values = [float(v) for v in bbox]
    except OverflowError:
        raise FormatError(path, "bbox has a value too large for a number",
                          element=f"{where}.bbox") from None
    if not all(math.isfinite(v) for v in values):
        raise FormatError(path, "bbox has a value that is not finite", element=f"{where}.bbox")
    if values[2] < 0 or values[3] < 0:
        raise FormatError(path, f"bbox has a negative size {values[2]:g}x{values[3]:g}",
                          element=f"{where}.bbox")
    return values


def parse_coco(data: bytes, path: str | Path, log: ProblemLog | None = None
               ) -> tuple[ClassList, dict[str, ImageRecord]]:
    """Class list and records (keyed by ``file_name``) from COCO detection JSON bytes.

    Each record's ``path`` is ``Path(file_name)`` (relative to the image folder), ``labeled``
    is True (a listed image with no annotations is labeled with nothing). A bad annotation
    is a FormatError naming its place, e.g. ``<annotations[3].bbox>``.
    """
    return _records(_document(decode_text(data, path), path), path, log)


def _document(text: str, path: str | Path) -> dict:
    """The parsed COCO object, holding only the keys :func:`_records` reads.

    ``text`` is referenced by this call alone when the caller passes it straight in, so it
    is freed on return, before the records are built.
    """
    doc = _load_json(text, path, object_hook=_keep_read_keys)
    if not isinstance(doc, dict):
        raise FormatError(path, "expected a COCO object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if key not in doc:
            raise FormatError(path, f"not a COCO detection file: no {key!r}")
    return doc


def _records(doc: dict, path: str | Path, log: ProblemLog | None
             ) -> tuple[ClassList, dict[str, ImageRecord]]:
    """The class list and records of ``doc``; empties its lists as it goes (see _drain)."""
    log = log if log is not None else ProblemLog()
    # a bad entry is skipped and reported; the rest of the file still loads
    classes, category_index = _read_categories(doc["categories"], path, log)
    records, by_id, skipped_ids = _read_images(doc["images"], path, log)
    _read_annotations(doc["annotations"], path, log, by_id, category_index, skipped_ids)
    return classes, records


def _drain(items: list) -> Iterator[tuple[int, Any]]:
    """``enumerate(items)`` that empties each slot as it hands the item out.

    The raw dict of an entry is freed as soon as it is converted, so a file's raw entries
    and its records are never in memory side by side.
    """
    for index in range(len(items)):
        item, items[index] = items[index], None
        yield index, item


def _read_categories(cats: Any, path: str | Path, log: ProblemLog
                     ) -> tuple[ClassList, dict[Any, int]]:
    classes = ClassList()
    category_index: dict[Any, int] = {}
    for i, cat in _drain(_list_of_dicts(cats, "categories", path)):
        try:
            cat_id, name = _category(cat, f"categories[{i}]", path, category_index, classes)
        except FormatError as err:
            log.error(err)
            continue
        category_index[cat_id] = classes.append(name)
    return classes, category_index


def _read_images(images: Any, path: str | Path, log: ProblemLog
                 ) -> tuple[dict[str, ImageRecord], dict[Any, ImageRecord], set[Any]]:
    """Records by file_name and by id, and the ids of the entries skipped as bad."""
    records: dict[str, ImageRecord] = {}
    by_id: dict[Any, ImageRecord] = {}
    skipped_ids: set[Any] = set()
    for i, img in _drain(_list_of_dicts(images, "images", path)):
        try:
            image_id, file_name, record = _image(img, f"images[{i}]", path, by_id, records)
        except FormatError as err:
            log.error(err)
            if isinstance(img.get("id"), (int, str)) and not isinstance(img.get("id"), bool):
                skipped_ids.add(img["id"])
            continue
        records[file_name] = by_id[image_id] = record
    return records, by_id, skipped_ids - by_id.keys()


def _read_annotations(anns: Any, path: str | Path, log: ProblemLog, by_id: dict,
                      category_index: dict, skipped_ids: set) -> None:
    """Each annotation's box appended to its image's record."""
    for i, ann in _drain(_list_of_dicts(anns, "annotations", path)):
        where = f"annotations[{i}]"
        image_id = ann.get("image_id")
        if isinstance(image_id, (int, str)) and image_id in skipped_ids:
            continue  # its image entry was reported and skipped already
        try:
            record, box = _annotation(ann, where, path, by_id, category_index)
        except FormatError as err:
            log.error(err)
            continue
        clipped = clip_box(box, record.width, record.height, log, path, element=where)
        if clipped is not None:
            record.boxes.append(clipped)


def _category(cat: dict, where: str, path: str | Path, category_index: dict,
              classes: ClassList) -> tuple[int, str]:
    cat_id = _field(cat, "id", where, path, int)
    name = _field(cat, "name", where, path, str).strip()
    if not name:
        raise FormatError(path, "empty category name", element=f"{where}.name")
    if _CONTROL.search(name):
        raise FormatError(path, f"category name {name!r} has a control character",
                          element=f"{where}.name")
    if cat_id in category_index or classes.index(name) is not None:
        raise FormatError(path, f"category {cat_id} {name!r} appears twice (skipped)",
                          element=where)
    return cat_id, name


def _image(img: dict, where: str, path: str | Path, by_id: dict, records: dict
           ) -> tuple[Any, str, ImageRecord]:
    image_id = _field(img, "id", where, path, (int, str))
    file_name = _field(img, "file_name", where, path, str)
    width = _field(img, "width", where, path, int)
    height = _field(img, "height", where, path, int)
    if not file_name.strip() or _CONTROL.search(file_name) or "\n" in file_name:
        raise FormatError(path, "empty or invalid file_name", element=f"{where}.file_name")
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise FormatError(path, f"image size {width}x{height} is not between 1 and "
                          f"{MAX_SIDE:,}", element=where)
    if image_id in by_id or file_name in records:
        raise FormatError(path, f"image {image_id} {file_name!r} appears twice (skipped)",
                          element=where)
    return image_id, file_name, ImageRecord(path=Path(file_name), width=width, height=height,
                                            labeled=True)


def _annotation(ann: dict, where: str, path: str | Path, by_id: dict,
                category_index: dict) -> tuple[ImageRecord, Box]:
    image_id = _field(ann, "image_id", where, path, (int, str))
    if image_id not in by_id:
        raise FormatError(path, f"image_id {image_id!r} is not in images",
                          element=f"{where}.image_id")
    cat_id = _field(ann, "category_id", where, path, int)
    if cat_id not in category_index:
        raise FormatError(path, f"category_id {cat_id} is not in categories",
                          element=f"{where}.category_id")
    x, y, w, h = _bbox(ann, where, path)
    difficult = bool(ann.get("iscrowd", 0) == 1 or ann.get("difficult", 0) == 1)
    return by_id[image_id], Box(x, y, x + w, y + h, category_index[cat_id], difficult)


def read_coco(path: str | Path, log: ProblemLog | None = None
              ) -> tuple[ClassList, dict[str, ImageRecord]]:
    """Class list and records keyed by ``file_name`` from the COCO file at ``path``."""
    # nested calls, no locals: the bytes are freed once decoded and the text once parsed, so
    # neither is held while the next stage runs (peak: the text and the slimmed document)
    return _records(_document(decode_text(read_bytes(path, MAX_COCO_BYTES), path), path),
                    path, log)


def _round(value: float) -> float | int:
    value = round(float(value), _DIGITS) + 0.0  # + 0.0 turns -0.0 into 0.0
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def coco_document(records: Iterable[tuple[str, ImageRecord]], class_names: Iterable[str]
                  ) -> dict[str, Any]:
    """The COCO dict for ``(file_name, record)`` pairs; only records with a size are listed."""
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for file_name, record in records:
        if record.width <= 0 or record.height <= 0:
            raise ValueError(f"{record.path}: image size unknown; cannot export to COCO")
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": file_name, "width": record.width,
                       "height": record.height})
        for box in record.boxes:
            x, y = _round(box.x1), _round(box.y1)
            w, h = _round(box.x2 - box.x1), _round(box.y2 - box.y1)
            ann = {"id": len(annotations) + 1, "image_id": image_id,
                   "category_id": box.class_id + 1, "bbox": [x, y, w, h],
                   "area": _round(w * h), "iscrowd": 0, "segmentation": []}
            if box.difficult:
                ann["difficult"] = 1
            annotations.append(ann)
    categories = [{"id": i + 1, "name": name, "supercategory": ""}
                  for i, name in enumerate(class_names)]
    return {"info": {"description": "exported by workbench"}, "licenses": [],
            "images": images, "annotations": annotations, "categories": categories}


def format_coco(records: Iterable[tuple[str, ImageRecord]], class_names: Iterable[str]) -> str:
    return json.dumps(coco_document(records, class_names), indent=1, ensure_ascii=False) + "\n"


def write_coco(dataset: Any, path: str | Path) -> None:
    """Write the labeled images of ``dataset`` (a :class:`workbench.labels.dataset.Dataset`) as COCO.

    ``file_name`` is each image's path relative to the dataset root, with ``/`` separators.
    """
    records = [(record.path.relative_to(dataset.root).as_posix(), record)
               for record in dataset.images if record.labeled]
    atomic_write_text(path, format_coco(records, dataset.classes))


def parse_coco_results(data: bytes, path: str | Path) -> list[dict[str, Any]]:
    """Detections from a COCO results file: a list of ``{image_id, category_id, bbox, score}``.

    Returns fresh dicts with exactly those keys (bbox as 4 floats, score as a float).
    """
    return _results(_load_json(data, path), "results", path)


def _results(items: Any, what: str, path: str | Path) -> list[dict[str, Any]]:
    results = []
    for i, item in enumerate(_list_of_dicts(items, what, path)):
        where = f"{what}[{i}]" if what != "results" else f"[{i}]"
        image_id = _field(item, "image_id", where, path, (int, str))
        category_id = _field(item, "category_id", where, path, int)
        bbox = _bbox(item, where, path)
        score = float(_field(item, "score", where, path, (int, float)))
        if not math.isfinite(score):
            raise FormatError(path, "score is not finite", element=f"{where}.score")
        results.append({"image_id": image_id, "category_id": category_id, "bbox": bbox,
                        "score": score})
    return results


def read_coco_results(path: str | Path) -> list[dict[str, Any]]:
    """Detections from the COCO results file at ``path`` (see :func:`parse_coco_results`)."""
    return parse_coco_results(read_bytes(path, MAX_COCO_BYTES), path)


def read_coco_detections(path: str | Path) -> tuple[list[dict[str, Any]], dict | None]:
    """Detections from a results list, or from a whole COCO document whose annotations carry
    scores (what ``workbench detect --format coco`` prints without ``--out``): (rows, the
    document naming the ids, or None for a bare list)."""
    doc = _load_json(read_bytes(path, MAX_COCO_BYTES), path)
    if not isinstance(doc, dict):
        return _results(doc, "results", path), None
    if "annotations" not in doc:
        raise FormatError(path, "a COCO document without annotations holds no detections")
    return _results(doc["annotations"], "annotations", path), doc


def write_coco_results(path: str | Path, results: Iterable[dict[str, Any]]) -> None:
    """Write detections as a COCO results file (for pycocotools ``loadRes``)."""
    rows = [{"image_id": r["image_id"], "category_id": int(r["category_id"]),
             "bbox": [_round(v) for v in r["bbox"]], "score": float(r["score"])}
            for r in results]
    atomic_write_text(path, json.dumps(rows) + "\n")
