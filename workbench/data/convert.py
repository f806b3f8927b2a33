"""Copy a dataset into another label format or layout (``workbench convert``'s engine).

The source is only read (in any layout :mod:`workbench.data.layouts` detects); the output
is built in a private folder beside OUT and moved into place by one rename when complete
(:mod:`workbench.storage.output_guard`), with a manifest that lets a later convert replace
it (``force``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

from workbench.data.darknet_layout import export_darknet
from workbench.data.export_ultralytics import export_ultralytics
from workbench.data.folder import classes_path, label_path, open_dataset
from workbench.data.layouts import resolve_labels_arg
from workbench.errors import FormatError, WorkbenchError
from workbench.formats.coco import write_coco
from workbench.formats.voc import write_voc
from workbench.formats.yolo import write_classes, write_yolo
from workbench.labels.dataset import Dataset
from workbench.storage.atomic import atomic_copy, atomic_write_text, one_sync_at_the_end
from workbench.storage.output_guard import StagedFolder, folder_state, refuse_folder_overlap

TARGETS = ("yolo", "voc", "coco", "darknet", "ultralytics")
SOURCES = ("yolo", "voc", "coco")
MANIFEST = ".workbench-convert.json"  # inside a finished convert's output: what it holds


def _check_out(out: Path, root: Path, coco_file: Path | None, labels: str | Path | None,
               force: bool) -> tuple[str, bytes | None]:
    """Refuse an OUT that overlaps an input or holds something else; returns the state of
    OUT that the finished output may replace (see ``workbench.storage.output_guard``)."""
    refuse_folder_overlap(out, root)
    if coco_file is not None:
        refuse_folder_overlap(out, coco_file)
    if labels is not None:
        refuse_folder_overlap(out, resolve_labels_arg(root, labels))
    state = folder_state(out, MANIFEST)
    if state[0] in ("link", "file"):
        raise WorkbenchError(f"{out}: already exists and is not a folder")
    if state[0] == "other":
        raise WorkbenchError(f"{out}: already exists and is not an empty folder")
    if state[0] == "marked" and not force:
        raise WorkbenchError(f"{out}: holds an earlier convert's output; add --force "
                             "to replace it")
    return state


def _safe_target(out: Path, relative: Path) -> Path:
    """``out/relative``, refusing anything that would land outside ``out``."""
    target = (out / relative).resolve()
    if out.resolve() not in target.parents:
        raise FormatError(relative, f"image path would be written outside {out}; refused")
    return target


def convert_dataset(src: str | Path, to: str, out: str | Path, *,
                    source_format: str | None = None, images: str | Path | None = None,
                    valid_fraction: float = 0.2, seed: int = 0,
                    adopt_unknown_classes: bool = False, strict: bool = False,
                    force: bool = False, labels: str | Path | None = None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[int, list]:
    """Convert the dataset at ``src`` into ``to`` format under ``out``.

    Returns (images written, problems: the source's and what was left out). Raises
    WorkbenchError for a bad destination, a full disk or another OS error (nothing is left
    at ``out`` then), and with ``strict`` when the source has any problem. The output is
    built beside ``out`` and renamed into place when complete; ``force`` replaces the
    output of an earlier convert.
    """
    if to not in TARGETS:
        raise WorkbenchError(f"unknown output format {to!r}; choose from {', '.join(TARGETS)}")
    if not 0.0 <= valid_fraction <= 1.0:
        raise WorkbenchError(f"valid fraction {valid_fraction} is not between 0 and 1")
    src = Path(src)
    coco_file = None
    if src.is_file():
        if src.suffix.lower() != ".json":
            raise WorkbenchError(f"{src}: SRC must be a dataset folder or a COCO .json file")
        coco_file = src.resolve()
        root = Path(images).resolve() if images else coco_file.parent
        source_format = "coco"
    elif src.is_dir():
        root = src.resolve()
    else:
        raise WorkbenchError(f"{src}: no such dataset folder or file")
    out = Path(out)
    state = _check_out(out, root, coco_file, labels, force)
    dataset = open_dataset(root, source_format or "auto",
                           adopt_unknown_classes=adopt_unknown_classes, coco_file=coco_file,
                           labels=labels)
    if not dataset.images:
        raise WorkbenchError(f"{src}: no images found")
    if not any(r.labeled for r in dataset.images):
        # copying images without their labels is never what was meant
        found = f" ({dataset.problems[0]})" if dataset.problems else ""
        assert dataset.layout is not None, "open_dataset always detects a layout"
        raise WorkbenchError(f"{root}: no image has a label file where the "
                             f"{dataset.layout.kind} layout looks{found}; nothing converted")
    if strict and dataset.problems:
        raise WorkbenchError(f"{len(dataset.problems)} problem(s) in the source, first: "
                             f"{dataset.problems[0]}")
    class_file = classes_path(dataset.root)
    if class_file in dataset.damaged_labels:
        first = next((p for p in dataset.problems if p.path == class_file), None)
        raise WorkbenchError(f"{first or class_file}; the class list gives every class id "
                             "its name: fix it first (nothing written)")
    problems: list = list(dataset.problems)
    try:
        # a private folder beside OUT: two converts at once never share one, and the one
        # that publishes second says so instead of mixing or replacing the other's output
        staged = StagedFolder(out, MANIFEST, state)
        try:
            with one_sync_at_the_end():  # OUT appears by one rename: no fsync per file
                count = _write_output(dataset, to, staged.path, valid_fraction, seed,
                                      out.resolve(), progress, problems)
            manifest = {"source": str(root), "to": to, "images": count,
                        "problems": [str(p) for p in problems], "run": uuid.uuid4().hex}
            atomic_write_text(staged.path / MANIFEST, json.dumps(manifest, indent=1) + "\n")
            staged.publish()
        except BaseException:
            staged.discard()
            raise
    except OSError as exc:
        where = exc.filename or out
        raise WorkbenchError(f"{where}: {exc.strerror or exc}; nothing written to "
                             f"{out}") from None
    return count, problems


def _write_output(dataset, to: str, staging: Path, valid_fraction: float, seed: int,
                  final: Path, progress, problems: list) -> int:
    """Write the whole output into ``staging`` (published as ``final``); returns the number
    of images written."""
    if to == "ultralytics":
        export_ultralytics(dataset, staging, valid_fraction=valid_fraction, seed=seed,
                           progress=progress)
        return sum(1 for r in dataset.images if r.labeled and r.width > 0
                   and r.label_error is None)
    if to != "darknet":
        return _write_copy(dataset, to, staging, progress, problems, final=final)
    export_darknet(dataset, staging, valid_fraction=valid_fraction, seed=seed,
                   progress=progress, final=final, left_out=problems)
    return sum(len((staging / f"{part}.txt").read_bytes().splitlines())
               for part in ("train", "valid"))


def _write_copy(dataset, to: str, out: Path, progress, problems: list, final: Path) -> int:
    """Copy the images into ``out`` (the private build folder) with labels in ``to``;
    ``final`` is where ``out`` is published, the folder a VOC file names."""
    same_format = to == dataset.label_format
    written = []
    for done, record in enumerate(dataset.images, start=1):
        relative = record.path.relative_to(dataset.root)
        try:
            target = _safe_target(out, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_copy(record.path, target)
        except FormatError as err:  # the image went away or is not a regular file
            problems.append(FormatError(record.path, f"left out: {err.message}"))
            continue
        written.append(record)
        if record.labeled and to in ("yolo", "voc"):
            _write_label(dataset, record, to, target, same_format, problems,
                         shown=final / relative)
        elif record.labeled and to == "coco" and record.label_error is not None:
            problems.append(FormatError(record.path, "its label was not read, so it is not "
                                        "in annotations.json"))
        if progress is not None:
            progress(done, len(dataset.images))
    if len(dataset.classes):
        write_classes(out / "classes.txt", dataset.classes)
    if to == "coco":
        write_coco(Dataset(root=dataset.root, classes=dataset.classes,
                           images=[r for r in written
                                   if r.width > 0 and r.label_error is None]),
                   out / "annotations.json")
    kept = {id(r) for r in written}
    for part, records in dataset.split.items():
        if part == "trainval":
            continue  # a VOC devkit's train + val: the copy has train.txt and valid.txt
        atomic_write_text(out / f"{part}.txt", "".join(
            f"{r.path.relative_to(dataset.root).as_posix()}\n" for r in records
            if id(r) in kept))
    return len(written)


def _write_label(dataset, record, to: str, target: Path, same_format: bool,
                 problems: list, shown: Path) -> None:
    """The label of one copied image; a label that could not be read never becomes an
    empty one ("labeled, nothing there"): it is copied unchanged or left out, and listed.
    ``shown`` is the image's path once OUT is published: a VOC file's <folder> and <path>
    name it, never the private build folder (gone by then)."""
    suffix = ".txt" if to == "yolo" else ".xml"
    if record.label_error is not None or record.width <= 0:
        why = ("its label file could not be read" if record.label_error is not None
               else "its image could not be read")
        source_label = label_path(record, dataset.label_format) if same_format else None
        if source_label is not None and source_label.is_file():
            atomic_copy(source_label, target.with_suffix(suffix))
            problems.append(FormatError(source_label, f"{why}; copied unchanged"))
        else:
            problems.append(FormatError(record.path, f"{why}; its label is left out"))
        return
    if to == "yolo":
        write_yolo(target.with_suffix(".txt"), record.boxes, record.width, record.height)
    else:
        write_voc(target.with_suffix(".xml"), record.boxes, dataset.classes.names, shown,
                  record.width, record.height, verified=record.verified)
