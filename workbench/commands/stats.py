"""`workbench stats DIR`: what a dataset holds and what is wrong with it."""

from __future__ import annotations

import argparse
import json

from workbench.commands.dataset_args import add_labels_option
from workbench.commands.spelling import hidden_alias


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "stats", help="count images, labels, boxes per class and problems in a dataset",
        description="The layout (labels beside the images, VOC devkit, label folder, "
        "Ultralytics data.yaml), the split, images, labeled, unlabeled, verified, boxes per "
        "class, box size spread and every file that could not be read.")
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("--from", dest="label_format", default="auto",
                   choices=["auto", "yolo", "voc", "coco"],
                   help="label format to read (default: detected)")
    hidden_alias(p, "--from", "--format")  # before issue 23; --format is what a verb writes
    p.add_argument("--decode", action="store_true",
                   help="also decode every image in full to find truncated or corrupt ones "
                   "(slower; the default reads headers only)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_labels_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli)
    from workbench.data.stats import folder_stats, format_stats

    stats = folder_stats(args.dataset, args.label_format, labels=args.labels,
                         decode=args.decode)
    print(json.dumps(stats.to_dict()) if args.json else format_stats(stats))
    return 0
