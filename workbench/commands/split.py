"""`workbench split DATASET --valid 0.2 [--test 0.1] --seed S`: a stratified, repeatable
split, written in the files of the dataset's own layout; a rerun without --test keeps the
test split it finds (``workbench.data.splits.plan_split``)."""

from __future__ import annotations

import argparse

from workbench.commands.dataset_args import add_labels_option


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "split", help="split a dataset into train / valid (/ test), stratified by class",
        description="Deal the labeled images of DATASET into train, valid and (with --test) "
        "test, so every class gets its share (each image counts for the rarest class it "
        "holds); the same images and --seed give the same split. The split is written where "
        "the dataset's layout keeps it: train.txt / valid.txt / test.txt at the root "
        "(labels beside the images, label folder), ImageSets/Main/train.txt, val.txt, "
        "trainval.txt, test.txt (VOC devkit), or list files named in data.yaml "
        "(Ultralytics). Only labeled images are dealt: images without a label file, or "
        "whose label file has problems, join no split and are counted at the end. Prints "
        "the images and boxes of each class in each part.")
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("--valid", type=float, default=0.2, metavar="F",
                   help="share of images to validate on (default 0.2)")
    p.add_argument("--test", type=float, default=None, metavar="F",
                   help="share of images held out for testing; without it an existing "
                   "test split is kept as it is (its images never join train) and none is "
                   "made; --test 0 drops an existing one")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    add_labels_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: `workbench --help` imports every verb module (workbench.cli)
    from workbench.data.split_folder import split_folder

    outcome = split_folder(args.dataset, args.valid, args.test, args.seed, labels=args.labels)
    for path in outcome.written:
        print(f"wrote {path}")
    if outcome.note:
        print(outcome.note)
    print(format_split_table(outcome.split, outcome.dataset.classes.names))
    for line in left_out_lines(outcome.dataset, outcome.split):
        print(line)
    return 0


def format_split_table(split: dict, names: list[str]) -> str:
    """Images and boxes per class in each part: what "stratified" did. A class row's images
    are the images holding at least one box of it."""
    parts = list(split)
    width = max([len(n) for n in names] + [len("all classes")])
    cell = 15  # "images  boxes" under each part's name

    def row(label: str, pairs: list[tuple[int, int]]) -> str:
        return f"{label:<{width}}" + "".join(f"{i:>8}{b:>7}" for i, b in pairs)

    lines = [f"{'':<{width}}" + "".join(f"{p:>{cell}}" for p in parts),
             f"{'':<{width}}" + "".join(f"{'images':>8}{'boxes':>7}" for _ in parts),
             row("all classes", [(len(split[p]), sum(len(r.boxes) for r in split[p]))
                                 for p in parts])]
    for class_id, name in enumerate(names):
        lines.append(row(name, [_class_counts(split[p], class_id) for p in parts]))
    return "\n".join(lines)


def _class_counts(records: list, class_id: int) -> tuple[int, int]:
    """(images holding ``class_id``, its boxes) among ``records``."""
    per_image = [sum(b.class_id == class_id for b in r.boxes) for r in records]
    return sum(n > 0 for n in per_image), sum(per_image)


def left_out_lines(dataset, split: dict) -> list[str]:
    """What became of the images no part holds, named by why: only labeled images are dealt
    (an image without a label file is "not labeled yet", not "labeled, nothing there")."""
    placed = {id(r) for records in split.values() for r in records}
    left = [r for r in dataset.images if id(r) not in placed]
    unlabeled = sum(not r.labeled for r in left)
    damaged = len(left) - unlabeled
    lines = []
    if unlabeled:
        lines.append(f"images without a label file: {unlabeled} (not dealt into any split; "
                     "split again once they are labeled)")
    if damaged:
        lines.append(f"images whose label file has problems: {damaged} (not dealt into any "
                     f"split; `workbench stats {dataset.root}` lists them)")
    return lines
