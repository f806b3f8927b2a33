"""`workbench split DATASET --valid 0.2 [--test 0.1] --seed S`: a stratified, repeatable
split, written in the files of the dataset's own layout."""

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
        "(Ultralytics). Unlabeled images join no split.")
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("--valid", type=float, default=0.2, metavar="F",
                   help="share of images to validate on (default 0.2)")
    p.add_argument("--test", type=float, default=0.0, metavar="F",
                   help="share of images held out for testing (default 0: no test split)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    add_labels_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from workbench.errors import WorkbenchError
    from workbench.folder import open_dataset
    from workbench.splits import make_split, write_split

    dataset = open_dataset(args.dataset, labels=args.labels)
    labeled = [r for r in dataset.images if r.labeled and not r.problems]
    if not labeled:
        found = f"; {dataset.problems[0]}" if dataset.problems else ""
        raise WorkbenchError(f"{dataset.root}: no labeled images to split{found}")
    split = make_split(labeled, args.valid, args.test, args.seed)
    written = write_split(dataset, split)
    for path in written:
        print(f"wrote {path}")
    print(format_split_table(split, dataset.classes.names))
    skipped = len(dataset.images) - len(labeled)
    if skipped:
        print(f"{skipped} image(s) unlabeled or with label problems joined no split")
    return 0


def format_split_table(split: dict, names: list[str]) -> str:
    """Images per class in each part: what "stratified" did."""
    parts = list(split)
    width = max([len(n) for n in names] + [6])
    lines = [f"{'':<{width}}  " + "  ".join(f"{p:>7}" for p in parts)]
    lines.append(f"{'images':<{width}}  " + "  ".join(f"{len(split[p]):>7}" for p in parts))
    for class_id, name in enumerate(names):
        counts = [sum(any(b.class_id == class_id for b in r.boxes) for r in split[p])
                  for p in parts]
        lines.append(f"{name:<{width}}  " + "  ".join(f"{c:>7}" for c in counts))
    return "\n".join(lines)
