"""A dataset's split (train / valid / test): read it in the layout's own files, make a new
one stratified by class, write it back in the layout's own files.

Where each layout keeps its split (see :mod:`workbench.data.layouts`):

    beside, label-folder  train.txt / valid.txt / test.txt at the root: image paths relative
                          to the root (or absolute, or darknet-style paths from elsewhere that
                          name one image of the dataset)
    voc-devkit            ImageSets/Main/train.txt, val.txt, trainval.txt, test.txt: one
                          image stem a line (val is the workbench's "valid")
    ultralytics           data.yaml's train/val/test: folders or list files; a new split is
                          written as train.txt / val.txt / test.txt list files beside the
                          data.yaml (``./relative/path`` lines) and data.yaml points at them

A test split, once made, is kept by a new split unless asked otherwise
(:func:`plan_split`): dealing its images into train would leak them into training. Split
files are written only inside the data set folder: one reached through a link that leads
out of it is refused before any file is written.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from workbench.data.ultralytics import (
    DATA_YAML_NAMES,
    SPLIT_KEYS,
    list_file_entries,
    rewrite_splits,
    write_data_yaml,
)
from workbench.errors import FormatError, WorkbenchError
from workbench.formats import decode_text, read_bytes, split_lines
from workbench.labels.dataset import Dataset, FolderLayout, ImageRecord
from workbench.storage.atomic import atomic_write_text, check_write_inside, writes_inside

SPLIT_ORDER = ("train", "valid", "test", "trainval")

Problem = Callable[[FormatError], None]


# ---------------------------------------------------------------------- reading

def read_split(dataset: Dataset, problem: Problem) -> None:
    """Fill ``dataset.split`` from the layout's split files; bad lines go to ``problem``."""
    layout = dataset.layout
    if layout is None:
        return
    if layout.kind == "ultralytics":
        _read_yaml_split(dataset, layout, problem)
        return
    parts = {part: path for part, path in layout.split_files().items() if path.is_file()}
    if not parts:
        return
    by_relative = {r.path.relative_to(dataset.root).as_posix(): r for r in dataset.images}
    by_name: dict[str, list[ImageRecord]] = {}
    by_stem: dict[str, list[ImageRecord]] = {}
    for image in dataset.images:
        by_name.setdefault(image.path.name, []).append(image)
        by_stem.setdefault(image.path.stem, []).append(image)
    devkit = layout.kind == "voc-devkit"
    for part, path in parts.items():
        try:
            lines = split_lines(decode_text(read_bytes(path), path))
        except FormatError as err:
            problem(err)
            continue
        chosen: list[ImageRecord] = []
        for number, line in enumerate(lines, start=1):
            entry = line.strip()
            if devkit:
                entry = entry.split()[0] if entry else ""  # "stem  1" in per-class lists
            if not entry:
                continue
            if devkit:
                found = by_stem.get(entry, [])
                record = found[0] if len(found) == 1 else None
            else:
                record = _split_entry(dataset.root, entry, by_relative, by_name)
            if record is None:
                problem(FormatError(path, f"{entry!r} is not an image of the dataset",
                                    line=number))
            else:
                chosen.append(record)
        dataset.split[part] = chosen


def _split_entry(root: Path, entry: str, by_relative: dict[str, ImageRecord],
                 by_name: dict[str, list[ImageRecord]]) -> ImageRecord | None:
    """A split line: relative to the root, absolute under it, or (darknet-style paths from
    elsewhere) an unambiguous file name."""
    path = Path(entry.replace("\\", "/"))
    if path.is_absolute():
        try:
            path = path.relative_to(root)
        except ValueError:
            pass
    record = by_relative.get(path.as_posix().removeprefix("./"))
    if record is None and len(by_name.get(path.name, [])) == 1:
        record = by_name[path.name][0]
    return record


def _read_yaml_split(dataset: Dataset, layout: FolderLayout, problem: Problem) -> None:
    data = layout.data_yaml
    if data is not None:
        by_path = {r.path: r for r in dataset.images}
        for part, sources in data.splits.items():
            chosen: list[ImageRecord] = []
            for source in sources:
                if source.is_dir():
                    chosen += [r for r in dataset.images if source in r.path.parents]
                elif source.is_file():
                    try:
                        entries = list_file_entries(source)
                    except FormatError as err:
                        problem(err)
                        continue
                    chosen += [by_path[p] for p in entries if p in by_path]
            dataset.split[part] = chosen
        return
    # no data.yaml: images/<split>/ (Ultralytics) or <split>/images/ (Roboflow) folders
    names = {"train": "train", "val": "valid", "valid": "valid", "test": "test"}
    for record in dataset.images:
        parts = record.path.relative_to(dataset.root).parts
        for i, folder in enumerate(parts[:-1]):
            neighbour = {parts[i - 1] if i else "", parts[i + 1] if i + 2 < len(parts) else ""}
            if folder in names and "images" in neighbour:
                dataset.split.setdefault(names[folder], []).append(record)
                break


# ---------------------------------------------------------------------- making

def make_split(records: list[ImageRecord], valid: float, test: float = 0.0, seed: int = 0
               ) -> dict[str, list[ImageRecord]]:
    """A deterministic split of ``records`` into train / valid (/ test), stratified by class.

    Each image joins the group of the rarest class it holds (images without boxes form their
    own group), groups are shuffled with ``seed`` and laid end to end, and the images are
    dealt out along that sequence so that every prefix holds round(n * fraction) valid and
    test images: each class gets its share to within one image, the totals are exact. The
    same records (in any order) and seed give the same split.
    """
    for name, value in (("valid", valid), ("test", test)):
        if not 0.0 <= value < 1.0:
            raise WorkbenchError(f"--{name} {value}: expected a fraction in [0, 1)")
    if valid + test >= 1.0:
        raise WorkbenchError(f"--valid {valid} + --test {test} leaves nothing to train on")
    ordered = sorted(records, key=lambda r: r.path.as_posix())
    images_per_class = Counter(c for r in ordered for c in {b.class_id for b in r.boxes})

    def group(record: ImageRecord) -> tuple[int, int]:
        held = {b.class_id for b in record.boxes}
        if not held:
            return (1 << 30, -1)
        rarest = min(held, key=lambda c: (images_per_class[c], c))
        return (images_per_class[rarest], rarest)

    rng = random.Random(seed)
    groups: dict[tuple[int, int], list[ImageRecord]] = {}
    for record in ordered:
        groups.setdefault(group(record), []).append(record)
    sequence: list[ImageRecord] = []
    for key in sorted(groups):
        members = groups[key]
        rng.shuffle(members)
        sequence += members
    split: dict[str, list[ImageRecord]] = {"train": [], "valid": [], "test": []}
    for i, record in enumerate(sequence, start=1):
        if len(split["valid"]) < _share(i, valid):
            split["valid"].append(record)
        elif len(split["test"]) < _share(i, test):
            split["test"].append(record)
        else:
            split["train"].append(record)
    n = len(sequence)
    if valid > 0 and not split["valid"] and n >= 2:  # at least one image to validate on
        split["valid"].append(split["train"].pop())
    for part in split:
        split[part].sort(key=lambda r: r.path.as_posix())
    if not test:
        del split["test"]
    return split


def _share(count: int, fraction: float) -> int:
    return int(count * fraction + 0.5)


# The two splitters below are NOT the stratified make_split, on purpose: each picks other
# images for the same inputs, and what they picked is on disk already (darknet exports,
# trained runs, their validation scores). Folding them into make_split would silently
# move images between train and valid for every dataset exported or trained before.
# tests/test_splitters.py pins the images each one chooses.

def random_split(records: list[ImageRecord], valid_fraction: float, seed: int
                 ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """A seeded random (train, valid) split, not stratified (the darknet layout's, kept
    as it was: see above); the same records in any order and seed give the same split.

    At least one image goes to each side when there are two or more and the fraction is
    strictly between 0 and 1.
    """
    if not 0.0 <= valid_fraction <= 1.0:
        raise ValueError(f"valid fraction {valid_fraction} is not between 0 and 1")

    def by_path(i: int) -> str:
        return records[i].path.as_posix()

    # sorted first, so the split depends on the images, not on the order they came in
    order = sorted(range(len(records)), key=by_path)
    random.Random(seed).shuffle(order)
    n_valid = round(len(order) * valid_fraction)
    if 0 < valid_fraction < 1 and len(order) >= 2:
        n_valid = min(max(n_valid, 1), len(order) - 1)
    valid = sorted(order[:n_valid], key=by_path)
    train = sorted(order[n_valid:], key=by_path)
    return [records[i] for i in train], [records[i] for i in valid]


def training_split(dataset: Dataset, valid_fraction: float = 0.1
                   ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """(train, valid) labeled records for training: the dataset's train.txt/valid.txt split
    when it has one, else every k-th labeled image (sorted by path) for validation, with no
    seed (training's, kept as it was: see above; ``detect``'s model score uses the same
    validation images)."""
    def usable(records: list[ImageRecord]) -> list[ImageRecord]:
        return [r for r in records if r.labeled and not r.problems]

    if dataset.split.get("train"):
        return usable(dataset.split["train"]), usable(dataset.split.get("valid", []))
    labeled = sorted(usable(dataset.images), key=lambda r: str(r.path))
    if len(labeled) < 2 or valid_fraction <= 0:
        return labeled, []
    step = max(2, round(1 / valid_fraction))
    valid = labeled[step - 1::step]
    valid_ids = {id(r) for r in valid}
    return [r for r in labeled if id(r) not in valid_ids], valid


@dataclass
class SplitPlan:
    """A new split and what to leave alone: ``keep`` names the parts whose files stay as
    they are (their records are in ``split`` too); ``note`` is one line for the user."""

    split: dict[str, list[ImageRecord]]
    keep: frozenset[str] = frozenset()
    note: str | None = None


def plan_split(dataset: Dataset, records: list[ImageRecord], valid: float,
               test: float | None = None, seed: int = 0) -> SplitPlan:
    """The split ``workbench split`` writes for ``records`` of ``dataset``.

    ``test`` None (not asked) keeps the data set's test split, if it has one, and deals
    only the other images into train and valid: a test image dealt into train would leak
    into training. ``test`` 0 drops it (said in ``note``); a fraction deals a new one.
    """
    held = dataset.split.get("test", [])
    if test is None and held:
        return _keep_test(records, valid, held, seed)
    note = None
    if test == 0 and held:
        note = (f"dropped the test split of {len(held)} image(s) (--test 0): they are "
                "dealt into train and valid")
    return SplitPlan(make_split(records, valid, test or 0.0, seed), note=note)


def _keep_test(records: list[ImageRecord], valid: float, held: list[ImageRecord],
               seed: int) -> SplitPlan:
    if not 0.0 <= valid < 1.0:
        raise WorkbenchError(f"--valid {valid}: expected a fraction in [0, 1)")
    kept = {id(r) for r in held}
    rest = [r for r in records if id(r) not in kept]
    total = len(rest) + len(held)
    # --valid is a share of all the images, as when the test split was made: the same
    # command gives the same sizes again
    share = valid * total / len(rest) if rest else 1.0
    if share >= 1.0:
        raise WorkbenchError(f"--valid {valid} leaves nothing to train on beside the "
                             f"{len(held)} image(s) of the kept test split; --test 0 "
                             "drops it")
    split = make_split(rest, share, 0.0, seed)
    split["test"] = sorted(held, key=lambda r: r.path.as_posix())
    note = (f"kept the test split of {len(held)} image(s); train and valid are dealt from "
            "the others (--test 0 drops it, --test F deals a new one)")
    return SplitPlan(split, frozenset({"test"}), note)


# ---------------------------------------------------------------------- writing

def write_split(dataset: Dataset, split: dict[str, list[ImageRecord]],
                keep: Collection[str] = ()) -> list[Path]:
    """Write ``split`` in the files of the dataset's layout (atomically); return them.

    Split files of the layout that ``split`` has no part for are emptied, so an old test
    list never outlives a new split; the parts in ``keep`` are left as they are on disk
    (their records stay in ``dataset.split``). A file reached through a link out of the
    data set folder is refused before any file is written."""
    layout = dataset.layout
    if layout is None:
        raise WorkbenchError("the dataset has no layout")
    if layout.kind == "ultralytics":
        files = _yaml_split_files(dataset, layout, split, keep)
    else:
        files = _list_split_files(dataset, layout, split, keep)
    for path in files:
        check_write_inside(path, dataset.root)
    with writes_inside(dataset.root):
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            if text is None:  # data.yaml: rewritten keeping its other keys
                _point_data_yaml(dataset, layout, split, keep, path)
            else:
                atomic_write_text(path, text)
    dataset.split = {part: list(records) for part, records in split.items() if records}
    return list(files)


def _list_split_files(dataset: Dataset, layout: FolderLayout, split: dict[str, list[ImageRecord]],
                      keep: Collection[str]) -> dict[Path, str | None]:
    """The layout's split list files and their new text (beside, label folder, devkit)."""
    devkit = layout.kind == "voc-devkit"
    if devkit:
        split = dict(split)
        split["trainval"] = sorted(split.get("train", []) + split.get("valid", []),
                                   key=lambda r: r.path.as_posix())
    files: dict[Path, str | None] = {}
    for part, path in layout.split_files().items():
        records = split.get(part)
        if part in keep or (records is None and not path.exists()):
            continue
        lines = [(r.path.stem if devkit else dataset.relative_path(r).as_posix())
                 for r in records or []]
        files[path] = "".join(f"{line}\n" for line in lines)
    return files


def _yaml_file_names() -> dict[str, str]:
    return {split_name: f"{key}.txt" for key, split_name in SPLIT_KEYS.items()}


def _yaml_split_files(dataset: Dataset, layout: FolderLayout, split: dict[str, list[ImageRecord]],
                      keep: Collection[str]) -> dict[Path, str | None]:
    """Ultralytics: a list file per part and data.yaml (None: rewritten in place). A kept
    part stays where data.yaml points; without a data.yaml it gets a list file too."""
    data = layout.data_yaml
    files: dict[Path, str | None] = {}
    for part, file_name in _yaml_file_names().items():
        records = split.get(part)
        if not records or (part in keep and data is not None):
            continue
        files[dataset.root / file_name] = "".join(
            f"./{os.path.relpath(r.path, dataset.root).replace(os.sep, '/')}\n"
            for r in records)
    files[data.path if data is not None else _new_data_yaml(dataset)] = None
    return files


def _new_data_yaml(dataset: Dataset) -> Path:
    """Where a split writes a new data.yaml: never over one that is there but could not be
    read (it may be the user's, damaged or hostile; opening listed why)."""
    for name in DATA_YAML_NAMES:
        there = dataset.root / name
        if os.path.lexists(there):
            raise FormatError(there, "could not be read as the data set's data.yaml (see "
                              "workbench stats); not replaced by a new one")
    return dataset.root / DATA_YAML_NAMES[0]


def _point_data_yaml(dataset: Dataset, layout: FolderLayout, split: dict[str, list[ImageRecord]],
                     keep: Collection[str], path: Path) -> None:
    data = layout.data_yaml
    kept = keep if data is not None else ()
    pointers = {part: name for part, name in _yaml_file_names().items()
                if split.get(part) and part not in kept}
    if data is not None:
        rewrite_splits(path, pointers, keep=kept)
    else:
        write_data_yaml(path, dataset.classes.names, pointers)


def split_records(dataset, split: str) -> list:
    """The records of ``split`` ("all": every image); WorkbenchError naming what is there."""
    if split == "all":
        return list(dataset.images)
    if split not in dataset.split:
        have = ", ".join(dataset.split) or "none"
        raise WorkbenchError(f"{dataset.root}: no {split} split (splits found: {have}); "
                             f"write one with: workbench split {dataset.root} --valid 0.2")
    return list(dataset.split[split])
