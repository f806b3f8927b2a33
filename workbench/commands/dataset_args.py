"""Options every dataset verb shares: ``--labels DIR`` and ``--split NAME``."""

from __future__ import annotations

from workbench.data.splits import split_records  # noqa: F401  (the verbs' name for it)

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
