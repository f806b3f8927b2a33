"""`workbench eval --gt GT --pred PRED`: AP per class and mAP of detections against labels.

GT is a dataset folder (YOLO, VOC or COCO labels) or a COCO JSON file. PRED is a folder of
YOLO files with a trailing confidence column (``class cx cy w h conf``, normalized by the GT
image's size, at the image's relative path with ``.txt``, as ``workbench detect`` writes
them) or a COCO results JSON. Images and classes are paired by name, never guessed: a
prediction for an image the GT does not have, or a class list that differs, is an error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.commands.dataset_args import add_labels_option, add_split_option, split_records
from workbench.errors import FormatError, WorkbenchError

_SHOWN = 3  # how many names an error or warning lists before "..."


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate detections against labels: AP per class, mAP",
        description="Match detections to ground truth per image and class and print AP, "
        "precision, recall (at the best F1), TP, FP and FN per class and the mAP. "
        "GT: a dataset folder or a COCO JSON. PRED: a folder of YOLO txt files with a "
        "confidence column (as `workbench detect --format yolo` writes) or a COCO results "
        "JSON (with images.json beside it when GT is a folder).")
    p.add_argument("--gt", required=True, help="dataset folder or COCO JSON with the labels")
    p.add_argument("--pred", required=True, help="folder of YOLO txt files or COCO results JSON")
    p.add_argument("--iou", type=float, default=0.5,
                   help="IoU a match needs (default 0.5); coco averages 0.50:0.95 anyway")
    p.add_argument("--metric", choices=["voc", "voc07", "coco"], default="voc",
                   help="voc: all-point AP (darknet -map); voc07: 11-point; coco: pycocotools "
                   "(default voc)")
    add_split_option(p, "evaluate")
    add_labels_option(p)
    p.add_argument("--confusion", action="store_true",
                   help="also print the confusion matrix (with background and missed)")
    p.add_argument("--conf", type=float, default=0.25,
                   help="confidence threshold of the confusion matrix (default 0.25)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


@dataclass
class _Truth:
    """The ground truth as evaluation needs it, keyed by image path relative to the root."""

    class_names: list[str]
    records: dict[str, Any]  # relative posix path -> ImageRecord
    coco_doc: dict | None = None  # the parsed GT JSON when GT is a COCO file
    # images of the dataset left out (unlabeled, other split): their predictions are skipped
    left_out: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def run(args: argparse.Namespace) -> int:
    from workbench.confusion import confusion_matrix
    from workbench.evaluate import GroundTruth, evaluate

    if not (math.isfinite(args.iou) and 0.0 < args.iou <= 1.0):
        raise WorkbenchError(f"--iou must lie in (0, 1], got {args.iou}")
    truth = _load_truth(Path(args.gt), args.split, args.labels)
    if not truth.class_names:
        raise WorkbenchError(f"{args.gt}: no class list (classes.txt, obj.names or categories)")
    pred, notes = _load_predictions(Path(args.pred), truth)
    gt = {key: GroundTruth.from_boxes(record.boxes) for key, record in truth.records.items()}
    n = len(truth.class_names)
    try:
        result = evaluate(gt, pred, n, iou_threshold=args.iou, metric=args.metric)
        matrix = confusion_matrix(gt, pred, n, iou_threshold=args.iou,
                                  conf_threshold=args.conf) if args.confusion else None
    except ValueError as exc:
        raise WorkbenchError(str(exc)) from None
    for note in truth.notes + notes:
        print(f"workbench eval: warning: {note}", file=sys.stderr)
    if args.json:
        out = result.to_dict(truth.class_names)
        out["images"] = len(gt)
        if matrix is not None:
            out["confusion"] = {"rows": matrix.row_labels(truth.class_names),
                                "columns": matrix.column_labels(truth.class_names),
                                "counts": matrix.counts.tolist(), "conf": args.conf}
        print(json.dumps(out, indent=1))
    else:
        print(format_table(result, truth.class_names, len(gt)))
        if matrix is not None:
            print()
            print(format_confusion(matrix, truth.class_names))
    return 0


# ------------------------------------------------------------------ ground truth

def _load_truth(path: Path, split: str, labels: str | None = None) -> _Truth:
    from workbench.folder import open_dataset
    from workbench.formats.coco import read_coco

    if path.is_file():
        if split != "all":
            raise WorkbenchError("--split needs a dataset folder as --gt")
        classes, records = read_coco(path)
        return _Truth(list(classes), dict(records), coco_doc=_read_json(path))
    if not path.exists():
        raise WorkbenchError(f"{path}: no such dataset folder or COCO file")
    dataset = open_dataset(path, labels=labels)
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
    return _Truth(list(dataset.classes), records, notes=notes, left_out=left_out)


def _read_json(path: Path) -> Any:
    from workbench.files import MAX_COCO_BYTES
    from workbench.formats import read_bytes

    try:
        return json.loads(read_bytes(path, MAX_COCO_BYTES))
    except (OSError, ValueError, RecursionError) as exc:
        raise FormatError(path, f"cannot read JSON: {exc}") from None


# ------------------------------------------------------------------ predictions

def _load_predictions(path: Path, truth: _Truth) -> tuple[dict, list[str]]:
    if path.is_dir():
        found = _read_yolo_predictions(path, truth)
    elif path.is_file():
        found = _read_coco_predictions(path, truth)
    else:
        raise WorkbenchError(f"{path}: no such prediction folder or COCO results file")
    missing = [key for key in truth.records if key not in found]
    if len(missing) == len(truth.records):
        raise WorkbenchError(f"{path}: no predictions for any of the {len(truth.records)} GT "
                             f"images (expected e.g. {_pred_name(missing[0])}); is it the "
                             "right folder?")
    notes = []
    if missing:
        notes.append(f"{len(missing)} GT image(s) have no predictions and count as detecting "
                     f"nothing: {_names(missing)}")
    return found, notes


def _pred_name(key: str) -> str:
    return Path(key).with_suffix(".txt").as_posix()


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (", ..." if len(items) > _SHOWN else "")


def _read_yolo_predictions(folder: Path, truth: _Truth) -> dict:
    from workbench.formats.yolo import read_classes

    names_file = next((folder / n for n in ("classes.txt", "obj.names")
                       if (folder / n).is_file()), None)
    if names_file is not None:
        names = list(read_classes(names_file))
        if names != truth.class_names:
            raise WorkbenchError(f"{names_file}: class list differs from the GT's: "
                                 f"{_class_difference(names, truth.class_names)}")
    wanted = {_pred_name(key): key for key in truth.records}
    left_out = {_pred_name(key) for key in truth.left_out}
    skip = {"classes.txt", "obj.names", "train.txt", "valid.txt", "test.txt"}
    stray, found = [], {}
    for file in sorted(folder.rglob("*.txt")):
        rel = file.relative_to(folder).as_posix()
        if rel in skip or rel in left_out or any(p.startswith(".") for p in Path(rel).parts):
            continue
        if rel not in wanted:
            stray.append(rel)
            continue
        record = truth.records[wanted[rel]]
        found[wanted[rel]] = _parse_yolo_predictions(file, record.width, record.height,
                                                     len(truth.class_names))
    if stray:
        raise WorkbenchError(f"{folder}: {len(stray)} prediction file(s) match no GT image: "
                             f"{_names(stray)}")
    return found


def _parse_yolo_predictions(path: Path, width: int, height: int, n_classes: int):
    """``class cx cy w h conf`` lines -> Predictions in pixels of the GT image."""
    import numpy as np

    from workbench.evaluate import Predictions
    from workbench.formats import decode_text, read_bytes
    from workbench.formats.yolo import parse_yolo_detections

    boxes, scores = parse_yolo_detections(decode_text(read_bytes(path), path), path, width,
                                          height, n_classes)
    if not boxes:
        return Predictions.empty()
    return Predictions(np.array([b.xyxy() for b in boxes], np.float64), np.array(scores),
                       np.array([b.class_id for b in boxes], np.int64))


def _read_coco_predictions(path: Path, truth: _Truth) -> dict:
    """A COCO results list; image and category ids resolve through the GT COCO file, or
    through ``images.json`` beside the results (written by ``workbench detect``)."""
    import numpy as np

    from workbench.evaluate import Predictions
    from workbench.formats.coco import read_coco_results

    rows = read_coco_results(path)
    doc = truth.coco_doc
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
    grouped: dict[str, list[tuple]] = {}
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
    if stray_images:
        raise WorkbenchError(f"{path}: detections for {len(stray_images)} image(s) not in the "
                             f"GT: {_names(sorted(stray_images))}")
    if stray_classes:
        raise WorkbenchError(f"{path}: detections of {len(stray_classes)} class(es) not in "
                             f"the GT: {_names(sorted(stray_classes))}")
    found = {}
    for name, items in grouped.items():
        a = np.array(items, dtype=np.float64)
        found[name] = Predictions(a[:, :4], a[:, 4], a[:, 5].astype(np.int64))
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
            parts.append(f"only in PRED {_names(only_pred)}")
        if only_gt:
            parts.append(f"only in GT {_names(only_gt)}")
        return "; ".join(parts)
    first = next(i for i, (a, b) in enumerate(zip(pred, gt, strict=True)) if a != b)
    return f"same names in another order (class {first} is {pred[first]!r} in PRED, " \
           f"{gt[first]!r} in GT)"


# ------------------------------------------------------------------ output

def _cell(value: float, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_table(result, class_names: list[str], n_images: int) -> str:
    """The per-class table and the means, as printed by ``workbench eval``."""
    width = max([5, *(len(n) for n in class_names)])
    ap_name = {"voc": f"AP@{result.iou_threshold:g}", "voc07": f"AP07@{result.iou_threshold:g}",
               "coco": "AP@.5:.95"}[result.metric]
    head = (f"{'class':<{width}}  {'GT':>6} {'pred':>7} {ap_name:>10} {'P':>6} {'R':>6} "
            f"{'conf':>6} {'TP':>6} {'FP':>6} {'FN':>6}")
    lines = [head, "-" * len(head)]
    for k in sorted(result.per_class):
        c = result.per_class[k]
        name = class_names[k] if k < len(class_names) else str(k)
        lines.append(f"{name:<{width}}  {c.n_gt:>6} {c.n_pred:>7} {_cell(c.ap):>10} "
                     f"{_cell(c.precision):>6} {_cell(c.recall):>6} {_cell(c.conf, 2):>6} "
                     f"{c.tp:>6} {c.fp:>6} {c.fn:>6}")
    lines.append("-" * len(head))
    lines.append(f"{'all':<{width}}  {sum(c.n_gt for c in result.per_class.values()):>6} "
                 f"{sum(c.n_pred for c in result.per_class.values()):>7} "
                 f"{_cell(result.map):>10} {'':>6} {'':>6} {'':>6} "
                 f"{result.tp:>6} {result.fp:>6} {result.fn:>6}")
    lines.append("")
    lines.append(f"{n_images} images, metric {result.metric}: mAP@0.5 {_cell(result.map50, 4)}"
                 f"  mAP@0.75 {_cell(result.map75, 4)}  mAP@[.5:.95] "
                 f"{_cell(result.map50_95, 4)}")
    lines.append("P, R, TP, FP, FN at each class's best-F1 confidence (conf), "
                 f"IoU {result.iou_threshold:g}")
    return "\n".join(lines)


def format_confusion(matrix, class_names: list[str]) -> str:
    """The confusion matrix as a text grid: rows true class, columns predicted class."""
    rows = matrix.row_labels(class_names)
    cols = matrix.column_labels(class_names)
    width = max(len(n) for n in rows + cols) + 1
    lines = [f"confusion at IoU {matrix.iou_threshold:g}, conf {matrix.conf_threshold:g} "
             "(rows: true, columns: predicted)",
             " " * width + "".join(f"{c:>{width}}" for c in cols)]
    for name, counts in zip(rows, matrix.counts.tolist(), strict=True):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{width}}" for v in counts))
    return "\n".join(lines)
