"""`workbench eval --gt GT --pred PRED`: AP per class and mAP of detections against labels.

GT is a dataset folder (YOLO, VOC or COCO labels) or a COCO JSON file. PRED is a folder
``workbench detect --out`` wrote, in any of its formats (YOLO files with a trailing confidence
column, detections.json + images.json, detections.csv, VOC XML with ``<score>``; see
``workbench.evaluation.detect_outputs``), or a COCO results JSON. Images and classes are paired by name, never guessed: a
prediction for an image the GT does not have, or a class list that differs, is an error.

``--model BUNDLE`` instead of ``--pred`` runs the model on GT's images first
(``workbench.evaluation.model_eval``); with ``--tta`` twice, without and with test-time
augmentation, and both scores are printed apart (two tables, two JSON keys).
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from workbench.commands.dataset_args import add_labels_option, add_split_option
from workbench.commands.detect import add_tta_arguments
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS, MAP_CONF
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
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--pred", help="folder written by detect --out (any format) or COCO results JSON")
    what.add_argument("--model", metavar="BUNDLE",
                      help="instead of --pred: run this model (a bundle folder or 'demo') on "
                      "the images of --gt (a dataset folder; --split) with every candidate "
                      f"above {MAP_CONF:g} and NMS at {DEFAULT_NMS:g} (boxes merged where "
                      "the model's training stored that, as detect does), then evaluate; the "
                      "time per image goes to stderr")
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
    add_tta_arguments(p, nms=f"{DEFAULT_NMS:g}")
    p.add_argument("--json", action="store_true", help="print one JSON object (with --model "
                   "--tta: {\"plain\": ..., \"tta\": ...}, one evaluation each)")
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
    if args.model:
        return _run_model(args)
    if args.tta:
        raise WorkbenchError("--tta needs --model (the model is run with and without it)")
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


def _run_model(args: argparse.Namespace) -> int:
    """eval --model: the model's score on the labels, and with --tta the TTA score apart."""
    from workbench.evaluation.model_eval import ModelEvalRequest, evaluate_model
    from workbench.evaluation.text import format_confusion, format_table

    request = ModelEvalRequest(gt=args.gt, model=args.model, iou=args.iou, metric=args.metric,
                               conf=args.conf, split=args.split, labels=args.labels,
                               plots=args.plots, tta=args.tta, tta_merge=args.tta_merge)
    runs = evaluate_model(request, say=_say)
    for run in runs:
        _say(f"{run.name}: {run.images} images, {run.seconds_per_image * 1000:.1f} ms/image "
             f"on {run.engine} ({run.passes})")
    if args.json:
        found = {run.name: run.outcome.to_dict(confusion=args.confusion) for run in runs}
        for run in runs:
            found[run.name].update(passes=run.passes, seconds_per_image=run.seconds_per_image)
        print(json.dumps(found if args.tta else runs[0].outcome.to_dict(args.confusion),
                         indent=1))
        return 0
    for run in runs:
        report, names = run.outcome.report, run.outcome.class_names
        if args.tta:
            print(f"{run.name} ({run.passes}):")
        print(format_table(report.result, names, report.n_images))
        if args.confusion:
            print()
            print(format_confusion(report.matrix, names))
        if args.tta:
            print()
    if args.tta:
        for run in runs:
            r = run.outcome.report.result
            print(f"{run.name:<5}  mAP@0.5 {r.map50:.4f}  mAP@[.5:.95] {r.map50_95:.4f}  "
                  f"{run.seconds_per_image * 1000:.1f} ms/image  ({run.passes})")
    return 0


def _say(line: str) -> None:
    """What the evaluation reports on the way (format read, warnings, plots) goes to stderr."""
    print(f"workbench eval: {line}", file=sys.stderr)
