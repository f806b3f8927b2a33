"""``workbench convert SRC --format yolo|voc|coco|darknet|ultralytics --out DIR``: copy a dataset
into another label format or layout. The source is only read (in any layout
``workbench.data.layouts`` detects); the output goes to a new (or empty) folder."""

from __future__ import annotations

import argparse
import sys

from workbench.commands.dataset_args import add_labels_option
from workbench.commands.spelling import hidden_alias
from workbench.progress import ProgressBar

# the choices of --format and --from: workbench.data.convert's TARGETS and SOURCES, not
# imported from there so that `workbench --help` stays fast (test_convert_cli checks)
TARGETS = ("yolo", "voc", "coco", "darknet", "ultralytics")
SOURCES = ("yolo", "voc", "coco")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a dataset to YOLO, Pascal VOC, COCO, the darknet or the "
        "Ultralytics layout",
        description="Copy the images of SRC (a dataset folder, or a COCO .json file whose "
        "file_name entries are relative to its folder) into OUT with their labels in another "
        "format. The source format is detected unless --from is given. SRC is never "
        "modified. Files that cannot be read are listed on stderr and left out.")
    p.add_argument("src", metavar="SRC", help="dataset folder or COCO .json file")
    p.add_argument("--format", dest="to", required=True, choices=TARGETS,
                   help="output label format or layout")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (must not exist yet, or be empty); built in a private "
                   "folder beside it and moved into place by one rename when complete (of two "
                   "converts into one OUT at once, the second says OUT was created by another "
                   "run, exit 2)")
    p.add_argument("--force", action="store_true",
                   help="replace OUT when it holds the output of an earlier convert")
    p.add_argument("--from", dest="source_format", choices=SOURCES,
                   help="source label format (default: detected)")
    p.add_argument("--images", metavar="DIR",
                   help="image folder for a COCO .json SRC (default: the file's folder)")
    p.add_argument("--valid", dest="valid_fraction", type=_fraction, default=0.2, metavar="F",
                   help="darknet, ultralytics: share of images in valid when SRC has no "
                   "split (default 0.2)")
    p.add_argument("--seed", type=int, default=0,
                   help="darknet, ultralytics: split seed (default 0)")
    add_labels_option(p)
    p.add_argument("--adopt-unknown-classes", action="store_true",
                   help="append class names missing from the class list instead of "
                   "skipping their boxes")
    p.add_argument("--strict", action="store_true",
                   help="stop (exit 2) when any source file has a problem")
    hidden_alias(p, "--format", "--to")  # the spellings before issue 23 (spelling.py)
    hidden_alias(p, "--valid", "--valid-fraction")
    p.set_defaults(func=run)


def _fraction(text: str) -> float:
    """argparse type of --valid: a number from 0 to 1 (nan and 2 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli), and the
    # engine pulls in the readers and writers of every format
    from workbench.data.convert import convert_dataset

    bar = ProgressBar("convert", 0)
    try:
        written, problems = convert_dataset(
            args.src, args.to, args.out, source_format=args.source_format, images=args.images,
            valid_fraction=args.valid_fraction, seed=args.seed,
            adopt_unknown_classes=args.adopt_unknown_classes, strict=args.strict,
            force=args.force, labels=args.labels, progress=bar.update)
    finally:
        bar.close()
    for problem in problems:
        print(f"workbench convert: warning: {problem}", file=sys.stderr)
    print(f"wrote {written} images to {args.out} as {args.to}"
          + (f"; {len(problems)} source problem(s) listed above" if problems else ""))
    return 0
