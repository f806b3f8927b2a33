"""Where evaluation reads from: labels and predictions on disk, paired by image name.

The ground truth is a dataset folder (YOLO, VOC or COCO labels), a dataset already open in
memory (the window's) or a COCO JSON file; the predictions are a folder of YOLO files with a
trailing confidence column (``class cx cy w h conf``, as ``workbench detect --out`` writes)
or a COCO results JSON. Images and classes are paired by name, never guessed: a prediction
for an image the GT does not have, or a class list that differs, is a WorkbenchError.
``workbench eval`` and the window's Evaluate view both read through here, so they agree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.data.splits import split_records
from workbench.errors import FormatError, WorkbenchError
from workbench.evaluation import detect_outputs
from workbench.evaluation.detect_outputs import (
    NOT_PREDICTIONS,
    Row,
    predictions_from_rows,
    refuse_strays,
    shown_names,
)
from workbench.evaluation.inputs import Truth

if TYPE_CHECKING:
    from workbench.evaluation.inputs import Predictions
    from workbench.labels.dataset import Dataset


# ------------------------------------------------------------------ ground truth

def load_truth(path: Path, split: str, labels: str | None = None) -> Truth:
    from workbench.data.folder import open_dataset
    from workbench.formats.coco import read_coco

    if path.is_file():
        if split != "all":
            raise WorkbenchError("--split needs a dataset folder as --gt")
        classes, records = read_coco(path)
        return Truth(list(classes), dict(records), coco_doc=_read_json(path))
    if not path.exists():
        raise WorkbenchError(f"{path}: no such dataset folder or COCO file")
    return truth_from_dataset(open_dataset(path, labels=labels), split)


def truth_from_dataset(dataset: Dataset, split: str = "all") -> Truth:
    """The labeled images of an open dataset (``split``: all, train or valid) as GT."""
    path = dataset.root
    notes = [f"{len(dataset.problems)} label file(s) in {path} could not be read whole, e.g. "
             f"{dataset.problems[0]}"] if dataset.problems else []
    chosen = split_records(dataset, split)
    records = {r.path.relative_to(dataset.root).as_posix(): r for r in chosen if r.labeled}
    unlabeled = len(chosen) - len(records)
    if unlabeled:
        notes.append(f"{unlabeled} image(s) without a label file are not evaluated")
    if not records:
        raise WorkbenchError(f"{path}: no labeled images to evaluate")
    left_out = {r.path.relative_to(dataset.root).as_posix() for r in dataset.images} - set(records)
    return Truth(list(dataset.classes), records, notes=notes, left_out=left_out)


def _read_json(path: Path) -> Any:
    from workbench.formats import read_bytes
    from workbench.storage.files import MAX_COCO_BYTES

    try:
        return json.loads(read_bytes(path, MAX_COCO_BYTES))
    except (OSError, ValueError, RecursionError) as exc:
        raise FormatError(path, f"cannot read JSON: {exc}") from None


# ------------------------------------------------------------------ predictions

def load_predictions(path: Path, truth: Truth) -> tuple[dict[str, Predictions], list[str]]:
    """{GT key: Predictions} from a folder ``workbench detect --out`` wrote (any of its
    formats) or a COCO results file, and notes for the user."""
    found, notes, _ = read_predictions(path, truth)
    return found, notes


def read_predictions(path: Path, truth: Truth) -> tuple[dict[str, Predictions], list[str], str]:
    """:func:`load_predictions` and the format read (a folder: detect's yolo, coco, csv or voc
    output; a file: "coco results"), so a caller can name it without looking again."""
    notes: list[str] = []
    if path.is_dir():
        found, notes, kind = _read_prediction_folder(path, truth)
    elif path.is_file():
        kind, found = "coco results", _read_coco_predictions(path, truth)
    else:
        raise WorkbenchError(f"{path}: no such prediction folder or COCO results file")
    missing = [key for key in truth.records if key not in found]
    if len(missing) == len(truth.records):
        raise WorkbenchError(f"{path}: no predictions for any of the {len(truth.records)} GT "
                             f"images (expected e.g. {_pred_name(missing[0])}); is it the "
                             "right folder?")
    if missing:
        notes.append(f"{len(missing)} GT image(s) have no predictions and count as detecting "
                     f"nothing: {shown_names(missing)}")
    return found, notes, kind


def _read_prediction_folder(folder: Path, truth: Truth) -> tuple[dict[str, Predictions], list[str], str]:
    """A folder of detect's output, its notes and its format (see detect_outputs)."""
    kind = detect_outputs.prediction_format(folder)
    if kind is None:
        raise WorkbenchError(
            f"{folder}: no predictions for any of the {len(truth.records)} GT images "
            f"({detect_outputs.describe_folder(folder)}); "
            "expected what `workbench detect --out` writes: YOLO .txt files, "
            "detections.json + images.json, detections.csv or VOC .xml files")
    if kind == "yolo":
        return _read_yolo_predictions(folder, truth), [], kind
    if kind == "coco":
        return _read_coco_predictions(folder / "detections.json", truth), [], kind
    if kind == "csv":
        return detect_outputs.read_csv_predictions(folder / "detections.csv", truth), [], kind
    wanted, left_out = _prediction_files(truth, ".xml")
    return (*detect_outputs.read_voc_predictions(folder, truth, wanted, left_out), kind)


def _pred_name(key: str, suffix: str = ".txt") -> str:
    return Path(key).with_suffix(suffix).as_posix()


def _prediction_files(truth: Truth, suffix: str = ".txt") -> tuple[dict[str, str], set[str]]:
    """({prediction file: GT key}, files of the images left out). ``detect --out`` writes
    ``a.txt`` for ``a.jpg``, or ``a_jpg.txt`` when ``a.png`` was in the same run
    (``workbench.detect.output_names``): both are accepted; the plain name only where no other image
    claims it."""
    from collections import Counter

    from workbench.detect.output_names import unique_stems

    keys = list(truth.records) + sorted(truth.left_out)
    suffixed = {k: s.as_posix() + suffix for k, s in
                zip(keys, unique_stems([Path(k) for k in keys]), strict=True)}
    # a run over one split writes a.txt when a.png is in another split: the plain name is
    # the evaluated image's when no other evaluated image has it
    plain = Counter(_pred_name(k, suffix) for k in truth.records)
    wanted = {suffixed[k]: k for k in truth.records}
    wanted.update({_pred_name(k, suffix): k for k in truth.records
                   if plain[_pred_name(k, suffix)] == 1})
    left_out = ({suffixed[k] for k in truth.left_out}
                | {_pred_name(k, suffix) for k in truth.left_out})
    return wanted, left_out - set(wanted)


def _read_yolo_predictions(folder: Path, truth: Truth) -> dict[str, Predictions]:
    from workbench.formats.yolo import read_classes

    names_file = next((folder / n for n in ("classes.txt", "obj.names")
                       if (folder / n).is_file()), None)
    if names_file is not None:
        names = list(read_classes(names_file))
        if names != truth.class_names:
            raise WorkbenchError(f"{names_file}: class list differs from the GT's: "
                                 f"{_class_difference(names, truth.class_names)}")
    wanted, left_out = _prediction_files(truth)
    stray, found = [], {}
    for file in sorted(folder.rglob("*.txt")):
        rel = file.relative_to(folder).as_posix()
        if rel in NOT_PREDICTIONS or rel in left_out or any(p.startswith(".") for p in Path(rel).parts):
            continue
        if rel not in wanted:
            stray.append(rel)
            continue
        record = truth.records[wanted[rel]]
        found[wanted[rel]] = _parse_yolo_predictions(file, record.width, record.height,
                                                     len(truth.class_names))
    if stray:
        raise WorkbenchError(f"{folder}: {len(stray)} prediction file(s) match no GT image: "
                             f"{shown_names(stray)}")
    return found


def _parse_yolo_predictions(path: Path, width: int, height: int,
                            n_classes: int) -> Predictions:
    """``class cx cy w h conf`` lines -> Predictions in pixels of the GT image."""
    import numpy as np

    from workbench.evaluation.evaluate import Predictions
    from workbench.formats import decode_text, read_bytes
    from workbench.formats.yolo import parse_yolo_detections

    boxes, scores = parse_yolo_detections(decode_text(read_bytes(path), path), path, width,
                                          height, n_classes)
    if not boxes:
        return Predictions.empty()
    return Predictions(np.array([b.xyxy() for b in boxes], np.float64), np.array(scores),
                       np.array([b.class_id for b in boxes], np.int64))


def _read_coco_predictions(path: Path, truth: Truth) -> dict[str, Predictions]:
    """A COCO results list; image and category ids resolve through the GT COCO file, or
    through ``images.json`` beside the results (written by ``workbench detect``)."""

    from workbench.evaluation.evaluate import Predictions
    from workbench.formats.coco import read_coco_detections

    rows, doc = read_coco_detections(path)  # a whole document names its own ids
    doc = doc if doc is not None else truth.coco_doc
    if doc is None:
        beside = path.parent / "images.json"
        if not beside.is_file():
            raise WorkbenchError(f"{path}: COCO results name images by id; give --gt as the "
                                 f"COCO file they refer to, or put images.json beside them")
        doc = _read_json(beside)
    try:
        image_names = {img["id"]: img["file_name"] for img in doc["images"]}
        category_names = {cat["id"]: cat["name"] for cat in doc["categories"]}
    except (KeyError, TypeError):
        raise FormatError(path, "the COCO file naming its ids has no images/categories "
                          "with id, file_name and name") from None
    class_index = {name: i for i, name in enumerate(truth.class_names)}
    grouped: dict[str, list[Row]] = {}
    stray_images, stray_classes = set(), set()
    for i, row in enumerate(rows):
        name = image_names.get(row["image_id"])
        if name in truth.left_out:
            continue
        if name is None or name not in truth.records:
            stray_images.add(str(name if name is not None else f"image_id {row['image_id']}"))
            continue
        category = category_names.get(row["category_id"])
        if category not in class_index:
            stray_classes.add(str(category if category is not None
                                  else f"category_id {row['category_id']}"))
            continue
        x, y, w, h = row["bbox"]
        if w < 0 or h < 0:
            raise FormatError(path, f"negative box size w={w:g} h={h:g}", element=f"[{i}].bbox")
        if not math.isfinite(x + w + y + h):
            raise FormatError(path, "box too large: its corners overflow", element=f"[{i}].bbox")
        grouped.setdefault(name, []).append((x, y, x + w, y + h, row["score"],
                                             class_index[category]))
    refuse_strays(path, stray_images, stray_classes)
    found = {name: predictions_from_rows(items) for name, items in grouped.items()}
    for name in truth.records:
        if name not in found and image_names and name in set(image_names.values()):
            found[name] = Predictions.empty()  # listed in the id file: detected nothing
    return found


def _class_difference(pred: list[str], gt: list[str]) -> str:
    only_pred = [n for n in pred if n not in gt]
    only_gt = [n for n in gt if n not in pred]
    if only_pred or only_gt:
        parts = []
        if only_pred:
            parts.append(f"only in PRED {shown_names(only_pred)}")
        if only_gt:
            parts.append(f"only in GT {shown_names(only_gt)}")
        return "; ".join(parts)
    first = next(i for i, (a, b) in enumerate(zip(pred, gt, strict=True)) if a != b)
    return f"same names in another order (class {first} is {pred[first]!r} in PRED, " \
           f"{gt[first]!r} in GT)"
