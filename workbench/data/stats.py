"""Dataset statistics: what `workbench stats` prints and the GUI's statistics dock shows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from workbench.data.folder import open_dataset
from workbench.data.images import check_decodable
from workbench.data.splits import SPLIT_ORDER
from workbench.errors import WorkbenchError
from workbench.labels.dataset import Dataset


@dataclass
class SizeSpread:
    """Percentiles (0, 25, 50, 75, 100) of box widths and heights in pixels."""

    width: list[float] = field(default_factory=list)
    height: list[float] = field(default_factory=list)


@dataclass
class DatasetStats:
    images: int
    labeled: int
    unlabeled: int
    verified: int
    boxes: int
    boxes_per_class: dict[str, int]
    box_size: SizeSpread
    problems: list[str]
    unknown_classes: list[str]
    label_format: str
    layout: str = "beside (labels beside the images)"
    split: dict[str, int] = field(default_factory=dict)  # split name -> images

    def to_dict(self) -> dict:
        return asdict(self)


PERCENTILES = (0, 25, 50, 75, 100)


def dataset_stats(dataset: Dataset) -> DatasetStats:
    labeled = sum(r.labeled for r in dataset.images)
    per_class = {name: 0 for name in dataset.classes}
    widths, heights = [], []
    for record in dataset.images:
        for box in record.boxes:
            name = (dataset.classes[box.class_id] if 0 <= box.class_id < len(dataset.classes)
                    else f"#{box.class_id}")
            per_class[name] = per_class.get(name, 0) + 1
            widths.append(box.width)
            heights.append(box.height)
    spread = SizeSpread()
    if widths:
        spread.width = [round(float(v), 1) for v in np.percentile(widths, PERCENTILES)]
        spread.height = [round(float(v), 1) for v in np.percentile(heights, PERCENTILES)]
    return DatasetStats(
        images=len(dataset.images), labeled=labeled, unlabeled=len(dataset.images) - labeled,
        verified=sum(r.verified for r in dataset.images), boxes=len(widths),
        boxes_per_class=per_class, box_size=spread,
        problems=[str(p) for p in dataset.problems], unknown_classes=list(dataset.classes.unknown),
        label_format=dataset.label_format,
        layout=dataset.layout.describe() if dataset.layout is not None else "beside",
        split={part: len(dataset.split[part]) for part in SPLIT_ORDER if part in dataset.split})


def decode_problems(dataset: Dataset) -> list[str]:
    """One line per image whose header reads but whose pixels do not all decode (a cut
    JPEG or PNG, corrupt data): what training would trip over. Costs a full decode each."""
    problems = []
    for record in dataset.images:
        if record.width > 0:  # a bad header is listed already
            problem = check_decodable(record.path)
            if problem is not None:
                problems.append(problem)
    return problems


def folder_stats(folder: str | Path, label_format: str = "auto",
                 labels: str | Path | None = None, decode: bool = False) -> DatasetStats:
    """``workbench stats``: open the dataset at ``folder`` and count it; with ``decode``
    also decode every image in full (:func:`decode_problems`). WorkbenchError when the
    folder holds no image."""
    dataset = open_dataset(folder, label_format, labels=labels)
    if not dataset.images:
        raise WorkbenchError(f"{folder}: no images found")
    stats = dataset_stats(dataset)
    if decode:
        stats.problems += decode_problems(dataset)
    return stats


def format_stats(stats: DatasetStats) -> str:
    lines = [
        f"layout      {stats.layout}",
        f"format      {stats.label_format}",
        f"images      {stats.images}",
        f"labeled     {stats.labeled}",
        f"unlabeled   {stats.unlabeled}",
        f"verified    {stats.verified}",
        f"boxes       {stats.boxes}",
        "split       " + (" / ".join(f"{part} {n}" for part, n in stats.split.items())
                          or "none (workbench split DATASET --valid 0.2 writes one)"),
        "",
        "boxes per class:",
    ]
    width = max((len(n) for n in stats.boxes_per_class), default=5)
    lines += [f"  {name:<{width}}  {count}" for name, count in stats.boxes_per_class.items()]
    if stats.box_size.width:
        lines += ["", "box size in pixels (min / 25% / median / 75% / max):",
                  "  width   " + " / ".join(f"{v:g}" for v in stats.box_size.width),
                  "  height  " + " / ".join(f"{v:g}" for v in stats.box_size.height)]
    if stats.unknown_classes:
        lines += ["", "class names in label files but not in the class list (boxes skipped): "
                  + ", ".join(stats.unknown_classes)]
    lines += ["", f"problems    {len(stats.problems)}"]
    lines += [f"  {p}" for p in stats.problems]
    return "\n".join(lines)
