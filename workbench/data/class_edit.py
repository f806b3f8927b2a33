"""Rename, merge and re-order a dataset's classes, rewriting its label files to match.

Class indices in YOLO files depend on the class list's order, and VOC files hold the names,
so every edit here goes with an explicit old-index -> new-index map and rewrites exactly the
label files whose content changes, each atomically through ``workbench.data.folder``. The class
list file is written first (``save_labels`` refuses to write labels against a class list
file that disagrees with the dataset's), then the label files. A crash in between leaves
files that each are whole, some still on the old numbering; run the same edit again to finish.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.data import folder
from workbench.labels.dataset import ClassList, Dataset, ImageRecord

Progress = Callable[[int, int], None]


@dataclass
class ClassEditResult:
    """What an edit did: label files rewritten, images skipped (their labels did not load)."""

    rewritten: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def _existing_formats(dataset: Dataset, record: ImageRecord) -> tuple[str, ...]:
    return tuple(fmt for fmt in ("yolo", "voc")
                 if folder.label_path(record, fmt, dataset).is_file())


def remap_classes(dataset: Dataset, new_names: Sequence[str], remap: dict[int, int], *,
                  progress: Progress | None = None) -> ClassEditResult:
    """Give ``dataset`` the class list ``new_names``; each box of class i gets ``remap[i]``.

    ``remap`` must cover every index of the current list and point into ``new_names``.
    Label files are rewritten in the formats they exist in, only where they change. Images
    whose label files did not load whole (``dataset.damaged_labels``) are not touched and are
    listed in ``skipped``: rewriting them would lose what the reader could not read.
    """
    old_names = dataset.classes.names
    new_names = [n.strip() for n in new_names]
    if any(not n for n in new_names):
        raise ValueError("a class name cannot be empty")
    if len(set(new_names)) != len(new_names):
        raise ValueError("class names must be different from each other")
    missing = [i for i in range(len(old_names)) if i not in remap]
    if missing:
        raise ValueError(f"no new index given for class {old_names[missing[0]]!r} ({missing[0]})")
    bad = [j for j in remap.values() if not 0 <= j < len(new_names)]
    if bad:
        raise ValueError(f"new class index {bad[0]} is outside the {len(new_names)} new classes")

    index_changes = {i for i, j in remap.items() if i != j}
    name_changes = {i for i, j in remap.items() if old_names[i] != new_names[j]}
    work: list[tuple[ImageRecord, tuple[str, ...]]] = []
    result = ClassEditResult()
    for record in dataset.images:
        used = {b.class_id for b in record.boxes}
        if not record.labeled or not used & (index_changes | name_changes):
            continue
        formats = _existing_formats(dataset, record)
        # only a label file that did not load whole is left alone (rewriting it would drop
        # the lines the reader skipped); a warning such as a clipped box does not count
        if any(folder.label_path(record, f, dataset) in dataset.damaged_labels for f in formats):
            result.skipped.append(record.path)
            continue
        # YOLO files change when an index does; VOC files when a name does
        changed = tuple(f for f in formats
                        if (f == "yolo" and used & index_changes)
                        or (f == "voc" and used & name_changes))
        work.append((record, changed))

    classes = ClassList(new_names)
    classes.unknown = list(dataset.classes.unknown)
    dataset.classes = classes
    for record in dataset.images:  # memory follows the new list, skipped files or not
        for box in record.boxes:
            box.class_id = remap.get(box.class_id, box.class_id)
    folder.save_classes(dataset)
    total = len(work)
    for done, (record, formats) in enumerate(work, 1):
        if formats:
            result.rewritten += folder.save_labels(dataset, record, formats=formats)
        if progress is not None:
            progress(done, total)
    return result


def rename_class(dataset: Dataset, index: int, new_name: str, *,
                 progress: Progress | None = None) -> ClassEditResult:
    """Rename one class; indices stay, VOC files naming it are rewritten."""
    names = dataset.classes.names
    if not 0 <= index < len(names):
        raise ValueError(f"no class with index {index}")
    new_name = new_name.strip()
    if new_name in names and names.index(new_name) != index:
        raise ValueError(f"class {new_name!r} already exists; merge instead")
    names[index] = new_name
    return remap_classes(dataset, names, {i: i for i in range(len(names))}, progress=progress)


def merge_classes(dataset: Dataset, sources: Sequence[int], target: int, *,
                  progress: Progress | None = None) -> ClassEditResult:
    """Relabel every box of ``sources`` as ``target`` and drop ``sources`` from the list.

    Classes after a dropped one move up; their files are rewritten with the new indices.
    """
    names = dataset.classes.names
    drop = {s for s in sources if s != target}
    if not 0 <= target < len(names) or any(not 0 <= s < len(names) for s in drop):
        raise ValueError("merge needs existing class indices")
    kept = [i for i in range(len(names)) if i not in drop]
    position = {old: new for new, old in enumerate(kept)}
    remap = {i: position[target if i in drop else i] for i in range(len(names))}
    return remap_classes(dataset, [names[i] for i in kept], remap, progress=progress)


def reorder_classes(dataset: Dataset, order: Sequence[int], *,
                    progress: Progress | None = None) -> ClassEditResult:
    """New class list ``[old[order[0]], old[order[1]], ...]``; files renumbered to match."""
    names = dataset.classes.names
    if sorted(order) != list(range(len(names))):
        raise ValueError(f"the new order must list each of the {len(names)} classes once")
    remap = {old: new for new, old in enumerate(order)}
    return remap_classes(dataset, [names[i] for i in order], remap, progress=progress)


def class_use(dataset: Dataset, index: int) -> tuple[int, int]:
    """(boxes, images) of the dataset that use class ``index``."""
    counts = [sum(b.class_id == index for b in r.boxes) for r in dataset.images]
    return sum(counts), sum(1 for n in counts if n)


def delete_class(dataset: Dataset, index: int, *,
                 progress: Progress | None = None) -> ClassEditResult:
    """Remove an unused class; the classes after it move up one (files renumbered).

    Refused (ValueError with the count) while any box uses it: deleting would leave boxes
    without a class, so they must be relabeled, merged or deleted first.
    """
    names = dataset.classes.names
    if not 0 <= index < len(names):
        raise ValueError(f"no class with index {index}")
    boxes, images = class_use(dataset, index)
    if boxes:
        raise ValueError(f"class {names[index]!r} is used by {boxes} box(es) in {images} "
                         "image(s): relabel or delete them, or merge the class, first")
    kept = [i for i in range(len(names)) if i != index]
    if not kept:
        dataset.classes = ClassList()
        folder.save_classes(dataset)
        return ClassEditResult()
    remap = {old: new for new, old in enumerate(kept)}
    remap[index] = 0  # no box has it
    return remap_classes(dataset, [names[i] for i in kept], remap, progress=progress)


def add_class(dataset: Dataset, name: str) -> int:
    """Append a class (indices of existing classes never move) and save the class list."""
    index = dataset.classes.append(name)
    folder.save_classes(dataset)
    return index
