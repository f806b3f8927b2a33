"""Write a data set in the Ultralytics layout: images/<split>/, labels/<split>/ and data.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.data.darknet_layout import unique_name
from workbench.data.splits import make_split
from workbench.data.ultralytics import SPLIT_KEYS, write_data_yaml
from workbench.formats.yolo import format_yolo
from workbench.storage.atomic import atomic_copy, atomic_write_text


def export_ultralytics(dataset: Any, out: str | Path, *, valid_fraction: float = 0.2,
                       seed: int = 0, progress: Any = None) -> Path:
    """Write the labeled images of ``dataset`` in the Ultralytics layout under ``out``:
    ``images/<split>/NAME``, ``labels/<split>/NAME.txt`` and ``data.yaml``.

    The split is the dataset's own (train / valid / test) when it has one, images in none of
    them training; otherwise a stratified split (:func:`workbench.data.splits.make_split`) with
    ``valid_fraction`` of the images in val. Unlabeled images are left out: Ultralytics reads
    an image without a label file as "no objects". Returns the path of data.yaml.
    """
    out = Path(out)
    # a label that could not be read is left out, never written as an empty one
    labeled = [r for r in dataset.images if r.labeled and r.width > 0 and r.height > 0
               and r.label_error is None]
    ids = {id(r) for r in labeled}
    if dataset.split.get("train") or dataset.split.get("valid"):
        parts = {part: [r for r in dataset.split.get(part, []) if id(r) in ids]
                 for part in SPLIT_KEYS.values()}
        listed = {id(r) for records in parts.values() for r in records}
        parts["train"] += [r for r in labeled if id(r) not in listed]
    else:
        parts = make_split(labeled, valid_fraction, 0.0, seed)
    used: set[str] = set()
    done = 0
    pointers: dict[str, str] = {}
    for key, part in SPLIT_KEYS.items():
        records = parts.get(part, [])
        if not records:
            continue
        image_dir, label_dir = out / "images" / key, out / "labels" / key
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for record in records:
            name = unique_name(record.path.name, used)
            atomic_copy(record.path, image_dir / name)
            atomic_write_text(label_dir / (Path(name).stem + ".txt"),
                              format_yolo(record.boxes, record.width, record.height))
            done += 1
            if progress is not None:
                progress(done, len(labeled))
        pointers[part] = f"images/{key}"
    pointers.setdefault("valid", pointers.get("train", "images/train"))  # Ultralytics needs val
    path = out / "data.yaml"
    write_data_yaml(path, list(dataset.classes), pointers)
    return path
