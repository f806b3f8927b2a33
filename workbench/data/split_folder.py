"""``workbench split``'s service: open a data set folder, deal its labeled images into
train, valid (and test) and write the split in the layout's own files. Its own module
because :mod:`workbench.data.folder` reads a data set's split with
:mod:`workbench.data.splits`, which therefore cannot open a folder itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.data.folder import open_dataset
from workbench.data.splits import plan_split, write_split
from workbench.errors import WorkbenchError
from workbench.labels.dataset import Dataset, ImageRecord


@dataclass
class SplitOutcome:
    """What :func:`split_folder` did: the dataset (its ``split`` now the new one), the
    parts written, the files written and a note for the user (or None)."""

    dataset: Dataset
    split: dict[str, list[ImageRecord]]
    written: list[Path]
    note: str | None = None


def split_folder(folder: str | Path, valid: float, test: float | None = None, seed: int = 0,
                 labels: str | Path | None = None) -> SplitOutcome:
    """``workbench split``: deal the labeled images of the dataset at ``folder`` into train,
    valid (and test: see :func:`plan_split`) and write the split in the layout's own
    files. Only labeled images without problems are dealt; WorkbenchError when there are
    none."""
    dataset = open_dataset(folder, labels=labels)
    labeled = [r for r in dataset.images if r.labeled and not r.problems]
    if not labeled:
        found = f"; {dataset.problems[0]}" if dataset.problems else ""
        raise WorkbenchError(f"{dataset.root}: no labeled images to split{found}")
    plan = plan_split(dataset, labeled, valid, test, seed)
    written = write_split(dataset, plan.split, plan.keep)
    return SplitOutcome(dataset, plan.split, written, plan.note)
