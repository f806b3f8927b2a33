"""`workbench demo-data OUT`: write the synthetic shapes dataset."""

from __future__ import annotations

import argparse
import time

from workbench.commands.spelling import hidden_alias
from workbench.progress import ProgressBar


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "demo-data", help="write a synthetic shapes dataset (YOLO format, train/valid split)",
        description="Write a deterministic synthetic dataset: circles, squares, triangles and "
        "stars on cluttered backgrounds, with exact boxes, in YOLO format with classes.txt, "
        "train.txt and valid.txt.")
    p.add_argument("out", help="output folder (created; must be empty unless --force)")
    p.add_argument("--images", type=int, default=200, help="number of images (default 200)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    # --image-size: every other verb's --size is the network input
    p.add_argument("--image-size", dest="size", type=int, default=416, metavar="PX",
                   help="image side in pixels (default 416)")
    p.add_argument("--valid", dest="valid_fraction", type=float, default=0.2, metavar="F",
                   help="share of images listed in valid.txt (default 0.2)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder, replacing files of the same names "
                   "(classes.txt, train.txt, valid.txt, images and labels)")
    hidden_alias(p, "--image-size", "--size")  # the spellings before issue 23
    hidden_alias(p, "--valid", "--valid-fraction")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli)
    from workbench.data.synth import write_demo_dataset

    start = time.perf_counter()
    with ProgressBar("demo-data", args.images) as bar:
        out = write_demo_dataset(args.out, images=args.images, seed=args.seed, size=args.size,
                                 valid_fraction=args.valid_fraction, force=args.force,
                                 progress=bar.update)
    print(f"wrote {args.images} images to {out} in {time.perf_counter() - start:.1f}s "
          f"(seed {args.seed}, {args.size}px)")
    return 0
