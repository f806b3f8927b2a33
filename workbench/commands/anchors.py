"""`workbench anchors DIR -n 9 --size 416`: anchor boxes for a dataset, ready to paste."""

from __future__ import annotations

import argparse

from workbench.commands.dataset_args import add_labels_option, add_split_option
from workbench.commands.spelling import hidden_alias
from workbench.errors import WorkbenchError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "anchors", help="compute YOLO anchors for a dataset (k-means, 1 - IoU)",
        description="Cluster the labeled box sizes of a dataset (scaled to the network input) "
        "with k-means and 1 - IoU as the distance; print the anchors sorted by area as a cfg "
        "line and the mean IoU between each box and its best anchor.")
    p.add_argument("dataset", metavar="DIR", help="dataset folder (YOLO, VOC or COCO labels)")
    p.add_argument("-n", "--num", type=int, default=9,
                   help="number of anchors (default 9; yolov3-tiny uses 6)")
    p.add_argument("--size", default="416", metavar="N|WxH",
                   help="network input size, N or WxH (default 416)")
    p.add_argument("--from", dest="format", default="auto",
                   choices=("auto", "yolo", "voc", "coco"),
                   help="label format to read (default: detected)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_split_option(p, "cluster the boxes of")
    add_labels_option(p)
    hidden_alias(p, "--from", "--format")  # before issue 23; --format is what a verb writes
    p.set_defaults(func=run)


def parse_size_arg(text: str) -> tuple[int, int]:
    """"416" or "608x416" -> (width, height); WorkbenchError otherwise."""
    parts = text.lower().split("x")
    try:
        values = [int(v) for v in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2) or min(values) <= 0:
        raise WorkbenchError(f"--size {text!r}: expected N or WxH in pixels, e.g. 416 or 608x416")
    return (values[0], values[-1])


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli)
    from workbench.darknet.anchors import dataset_anchors

    width, height = parse_size_arg(args.size)
    found = dataset_anchors(args.dataset, args.num, width, height, label_format=args.format,
                            labels=args.labels, split=args.split, seed=args.seed)
    result, problems = found.result, found.dataset.problems
    print(result.cfg_line())
    print(f"mean IoU {result.mean_iou:.4f} over {result.boxes} boxes "
          f"({args.num} anchors at {width}x{height}, {result.iterations} iterations)")
    if problems:
        print(f"{len(problems)} label problems skipped; first: {problems[0]}")
    return 0
