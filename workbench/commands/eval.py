"""`workbench eval --gt GT --pred PRED`: AP per class and mAP of detections against labels.

GT is a dataset folder (YOLO, VOC or COCO labels) or a COCO JSON file. PRED is a folder
``workbench detect --out`` wrote, in any of its formats (YOLO files with a trailing confidence
column, detections.json + images.json, detections.csv, VOC XML with ``<score>``; see
``workbench.evaluation.detect_outputs``), or a COCO results JSON. Images and classes are paired by name, never guessed: a
prediction for an image the GT does not have, or a class list that differs, is an error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from workbench.commands.dataset_args import add_labels_option, add_split_option
from workbench.detect.config import DEFAULT_CONF
from workbench.errors import WorkbenchError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate detections against labels: AP per class, mAP",
        description="Match detections to ground truth per image and class and print AP, "
        "precision, recall (at the best F1), TP, FP and FN per class and the mAP. "
        "GT: a dataset folder or a COCO JSON. PRED: a folder `workbench detect --out` wrote "
        "in any --format (yolo, coco, csv, voc; the format is recognised and named) or a "
        "COCO results JSON (with images.json beside it when GT is a folder).")
    p.add_argument("--gt", required=True, help="dataset folder or COCO JSON with the labels")
    p.add_argument("--pred", required=True, help="folder written by detect --out (any format) or COCO results JSON")
    p.add_argument("--iou", type=float, default=0.5,
                   help="IoU a match needs (default 0.5); coco averages 0.50:0.95 anyway")
    p.add_argument("--metric", choices=["voc", "voc07", "coco"], default="voc",
                   help="voc: all-point AP (darknet -map); voc07: 11-point; coco: pycocotools "
                   "(default voc)")
    add_split_option(p, "evaluate")
    add_labels_option(p)
    p.add_argument("--confusion", action="store_true",
                   help="also print the confusion matrix (with background and missed)")
    p.add_argument("--conf", type=float, default=DEFAULT_CONF,
                   help="confidence threshold of the confusion matrix (default 0.25)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plots", metavar="DIR",
                   help="also write pr_curves.png, confusion_matrix.png and curves.json "
                   "(the PR curve of every class) into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.evaluation.report import evaluate_truth
    from workbench.evaluation.sources import load_truth, read_predictions

    if not (math.isfinite(args.iou) and 0.0 < args.iou <= 1.0):
        raise WorkbenchError(f"--iou must lie in (0, 1], got {args.iou}")
    truth = load_truth(Path(args.gt), args.split, args.labels)
    if not truth.class_names:
        raise WorkbenchError(f"{args.gt}: no class list (classes.txt, obj.names or categories)")
    pred, notes, kind = read_predictions(Path(args.pred), truth)
    if Path(args.pred).is_dir():  # detect writes four formats: say which one was read
        print(f"workbench eval: predictions: {args.pred} (detect's {kind} output)",
              file=sys.stderr)
    report = evaluate_truth(truth, pred, iou=args.iou, metric=args.metric, conf=args.conf,
                            notes=notes)
    result, matrix = report.result, report.matrix
    for note in report.notes:
        print(f"workbench eval: warning: {note}", file=sys.stderr)
    if args.plots:
        from workbench.evaluation.plots import write_evaluation_plots

        written = write_evaluation_plots(report, Path(args.plots))
        print(f"workbench eval: plots written: {', '.join(str(p) for p in written)}",
              file=sys.stderr)
    if args.json:
        out = result.to_dict(truth.class_names)
        out["images"] = report.n_images
        if args.confusion:
            out["confusion"] = {"rows": matrix.row_labels(truth.class_names),
                                "columns": matrix.column_labels(truth.class_names),
                                "counts": matrix.counts.tolist(), "conf": args.conf}
        print(json.dumps(out, indent=1))
    else:
        print(format_table(result, truth.class_names, report.n_images))
        if args.confusion:
            print()
            print(format_confusion(matrix, truth.class_names))
    return 0


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
