"""Options every dataset verb shares: ``--labels DIR`` and ``--split NAME``."""

from __future__ import annotations

SPLITS = ("train", "valid", "test", "trainval")


def add_labels_option(p) -> None:
    p.add_argument("--labels", metavar="DIR",
                   help="folder holding the label files when they are not where the layout "
                   "puts them (labelImg's save dir, an annotations/ folder beside images/); "
                   "relative to the dataset folder first, then to the current folder "
                   "(default: detected)")


def add_split_option(p, what: str) -> None:
    p.add_argument("--split", choices=("all", *SPLITS), default="all",
                   help=f"{what} only the images of this split (train.txt, valid.txt, ... "
                   "of the dataset's layout; default all)")


def split_records(dataset, split: str) -> list:
    """The records of ``split`` ("all": every image); WorkbenchError naming what is there."""
    from workbench.errors import WorkbenchError

    if split == "all":
        return list(dataset.images)
    if split not in dataset.split:
        have = ", ".join(dataset.split) or "none"
        raise WorkbenchError(f"{dataset.root}: no {split} split (splits found: {have}); "
                             f"write one with: workbench split {dataset.root} --valid 0.2")
    return list(dataset.split[split])
