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
                   help=f"confidence threshold of the confusion matrix (default {DEFAULT_CONF})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plots", metavar="DIR",
                   help="also write pr_curves.png, confusion_matrix.png and curves.json "
                   "(the PR curve of every class) into DIR")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli), and the
    # evaluation pulls in numpy and every prediction reader
    from workbench.evaluation.run import EvalRequest, evaluate_folder
    from workbench.evaluation.text import format_confusion, format_table

    if not (math.isfinite(args.iou) and 0.0 < args.iou <= 1.0):
        raise WorkbenchError(f"--iou must lie in (0, 1], got {args.iou}")
    request = EvalRequest(gt=args.gt, pred=args.pred, iou=args.iou, metric=args.metric,
                          conf=args.conf, split=args.split, labels=args.labels,
                          plots=args.plots)
    outcome = evaluate_folder(request, say=_say)
    report, names = outcome.report, outcome.class_names
    if args.json:
        print(json.dumps(outcome.to_dict(confusion=args.confusion), indent=1))
    else:
        print(format_table(report.result, names, report.n_images))
        if args.confusion:
            print()
            print(format_confusion(report.matrix, names))
    return 0


def _say(line: str) -> None:
    """What the evaluation reports on the way (format read, warnings, plots) goes to stderr."""
    print(f"workbench eval: {line}", file=sys.stderr)
