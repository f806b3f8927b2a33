"""Reading back every format ``workbench detect --out`` writes, so ``eval --pred DIR`` takes
any of them: YOLO txt + classes.txt (read in sources.py), COCO detections.json + images.json,
detections.csv, or VOC XML (one file per image, with a ``<score>`` per object).

A folder is recognised by what detect leaves in it; when nothing is recognised the error says
what the folder holds instead of "no predictions".
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from workbench.errors import FormatError, WorkbenchError
from workbench.evaluation.inputs import Predictions, Truth

FORMATS = ("yolo", "coco", "csv", "voc")
# files detect writes beside the per-image files, never predictions themselves
NOT_PREDICTIONS = {"classes.txt", "obj.names", "train.txt", "valid.txt", "test.txt"}
_CSV_COLUMNS = ("image", "class_id", "class_name", "score", "x1", "y1", "x2", "y2")
#: one detection as read: x1, y1, x2, y2 (pixels), score, class index
Row = tuple[float, ...]


def _visible_files(folder: Path, pattern: str) -> list[Path]:
    """Files under ``folder`` matching ``pattern``, hidden folders (.predictions) left out."""
    return [f for f in sorted(folder.rglob(pattern))
            if not any(p.startswith(".") for p in f.relative_to(folder).parts)
            and f.is_file()]


def prediction_format(folder: Path) -> str | None:
    """Which of FORMATS the detect output in ``folder`` is, None when it holds none.

    The per-image formats come first: a folder with both YOLO files and a detections.json
    (two runs' outputs) is read as YOLO, and the note says so.
    """
    if any(f.name not in NOT_PREDICTIONS for f in _visible_files(folder, "*.txt")):
        return "yolo"
    if (folder / "detections.json").is_file():
        return "coco"
    if (folder / "detections.csv").is_file():
        return "csv"
    if _visible_files(folder, "*.xml"):
        return "voc"
    return None


def describe_folder(folder: Path) -> str:
    """What a folder holds, by suffix ("12 .jpg, 3 .json files"), for an error message."""
    counts = Counter(f.suffix.lower() or "(no suffix)" for f in _visible_files(folder, "*"))
    if not counts:
        return "it is empty"
    shown = ", ".join(f"{n} {suffix}" for suffix, n in counts.most_common(4))
    more = " and more" if len(counts) > 4 else ""
    return f"it holds {shown}{more} file(s)"


def shown_names(items: list[str], shown: int = 3) -> str:
    """The first few of ``items`` for a one-line message, with "..." when there are more."""
    return ", ".join(items[:shown]) + (", ..." if len(items) > shown else "")


def _class_index(truth: Truth, name: str, class_id: str, path: Path, line: int) -> int | None:
    """The GT class of a CSV row: by name (robust to another class order), else by id."""
    if name in truth.class_names:
        return truth.class_names.index(name)
    try:
        index = int(class_id)
    except ValueError:
        raise FormatError(path, f"class id {class_id!r} is not an integer", line=line) from None
    return index if not name and 0 <= index < len(truth.class_names) else None


def read_csv_predictions(path: Path, truth: Truth) -> dict[str, Predictions]:
    """``detections.csv`` (image, [frame,] width, height, class_id, class_name, score, x1, y1,
    x2, y2; pixel corners) -> {GT key: Predictions}."""
    from workbench.formats import decode_text, read_bytes
    from workbench.storage.files import MAX_COCO_BYTES

    rows = csv.DictReader(io.StringIO(decode_text(read_bytes(path, MAX_COCO_BYTES), path)))
    missing = [c for c in _CSV_COLUMNS if c not in (rows.fieldnames or [])]
    if missing:
        raise FormatError(path, f"not a detect CSV: no column(s) {', '.join(missing)}", line=1)
    grouped: dict[str, list[Row]] = {}
    stray_images, stray_classes = set(), set()
    for line, row in enumerate(rows, start=2):
        image = row["image"]
        if image in truth.left_out:
            continue
        if image not in truth.records:
            stray_images.add(image)
            continue
        class_index = _class_index(truth, row["class_name"], row["class_id"], path, line)
        if class_index is None:
            stray_classes.add(row["class_name"] or row["class_id"])
            continue
        try:
            values = [float(row[c]) for c in ("x1", "y1", "x2", "y2", "score")]
        except (TypeError, ValueError):
            raise FormatError(path, "a box corner or score is not a number", line=line) from None
        if not all(math.isfinite(v) for v in values):
            raise FormatError(path, "a box corner or score is not finite", line=line)
        grouped.setdefault(image, []).append((*values, class_index))
    refuse_strays(path, stray_images, stray_classes)
    return {name: predictions_from_rows(items) for name, items in grouped.items()}


def read_voc_predictions(folder: Path, truth: Truth, wanted: dict[str, str],
                         left_out: set[str]) -> tuple[dict[str, Predictions], list[str]]:
    """VOC files written by ``detect --format voc`` -> ({GT key: Predictions}, notes).

    ``wanted`` maps each expected file (relative, ``.xml``) to its GT key. Objects without a
    ``<score>`` (VOC has no such field; older detect runs) count with confidence 1, and a note
    says AP then has a single operating point.
    """
    from workbench.formats.voc import read_voc

    found, stray, unscored = {}, [], 0
    for file in _visible_files(folder, "*.xml"):
        rel = file.relative_to(folder).as_posix()
        if rel in left_out:
            continue
        if rel not in wanted:
            stray.append(rel)
            continue
        items = []
        for obj in read_voc(file).objects:
            if obj.name not in truth.class_names:
                raise WorkbenchError(f"{file}: class {obj.name!r} is not in the GT's classes")
            unscored += obj.score is None
            items.append((obj.x1, obj.y1, obj.x2, obj.y2,
                          1.0 if obj.score is None else obj.score,
                          truth.class_names.index(obj.name)))
        found[wanted[rel]] = predictions_from_rows(items)
    if stray:
        raise WorkbenchError(f"{folder}: {len(stray)} VOC file(s) match no GT image: "
                             f"{shown_names(stray)}")
    notes = [f"{unscored} VOC object(s) carry no <score>: counted with confidence 1, so their "
             "AP has a single operating point"] if unscored else []
    return found, notes


def predictions_from_rows(items: Sequence[Row]) -> Predictions:
    """``(x1, y1, x2, y2, score, class)`` rows in pixels -> Predictions."""
    if not items:
        return Predictions.empty()
    a = np.array(items, dtype=np.float64)
    return Predictions(a[:, :4], a[:, 4], a[:, 5].astype(np.int64))


def refuse_strays(path: Path, images: set[str], classes: set[str]) -> None:
    """One line when detections name images or classes the GT does not have."""
    if images:
        raise WorkbenchError(f"{path}: detections for {len(images)} image(s) not in the GT: "
                             f"{shown_names(sorted(images))}")
    if classes:
        raise WorkbenchError(f"{path}: detections of {len(classes)} class(es) not in the GT: "
                             f"{shown_names(sorted(classes))}")
