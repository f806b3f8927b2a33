"""``workbench convert SRC --format yolo|voc|coco|darknet|ultralytics --out DIR``: copy a dataset
into another label format or layout. The source is only read (in any layout
``workbench.data.layouts`` detects); the output goes to a new (or empty) folder."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from workbench.commands.dataset_args import add_labels_option
from workbench.commands.spelling import hidden_alias
from workbench.errors import FormatError, WorkbenchError
from workbench.storage.atomic import atomic_write_text, one_sync_at_the_end
from workbench.storage.output_guard import StagedFolder, folder_state, refuse_folder_overlap

TARGETS = ("yolo", "voc", "coco", "darknet", "ultralytics")
SOURCES = ("yolo", "voc", "coco")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "convert", help="convert a dataset to YOLO, Pascal VOC, COCO, the darknet or the "
        "Ultralytics layout",
        description="Copy the images of SRC (a dataset folder, or a COCO .json file whose "
        "file_name entries are relative to its folder) into OUT with their labels in another "
        "format. The source format is detected unless --from is given. SRC is never "
        "modified. Files that cannot be read are listed on stderr and left out.")
    p.add_argument("src", metavar="SRC", help="dataset folder or COCO .json file")
    p.add_argument("--format", dest="to", required=True, choices=TARGETS,
                   help="output label format or layout")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (must not exist yet, or be empty); built in a private "
                   "folder beside it and moved into place by one rename when complete (of two "
                   "converts into one OUT at once, the second says OUT was created by another "
                   "run, exit 2)")
    p.add_argument("--force", action="store_true",
                   help="replace OUT when it holds the output of an earlier convert")
    p.add_argument("--from", dest="source_format", choices=SOURCES,
                   help="source label format (default: detected)")
    p.add_argument("--images", metavar="DIR",
                   help="image folder for a COCO .json SRC (default: the file's folder)")
    p.add_argument("--valid", dest="valid_fraction", type=_fraction, default=0.2, metavar="F",
                   help="darknet, ultralytics: share of images in valid when SRC has no "
                   "split (default 0.2)")
    p.add_argument("--seed", type=int, default=0,
                   help="darknet, ultralytics: split seed (default 0)")
    add_labels_option(p)
    p.add_argument("--adopt-unknown-classes", action="store_true",
                   help="append class names missing from the class list instead of "
                   "skipping their boxes")
    p.add_argument("--strict", action="store_true",
                   help="stop (exit 2) when any source file has a problem")
    hidden_alias(p, "--format", "--to")  # the spellings before issue 23 (spelling.py)
    hidden_alias(p, "--valid", "--valid-fraction")
    p.set_defaults(func=run)


MANIFEST = ".workbench-convert.json"  # inside a finished convert's output: what it holds


def _fraction(text: str) -> float:
    """argparse type of --valid: a number from 0 to 1 (nan and 2 are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _check_out(out: Path, root: Path, coco_file: Path | None, labels: str | Path | None,
               force: bool) -> tuple[str, bytes | None]:
    """Refuse an OUT that overlaps an input or holds something else; returns the state of
    OUT that the finished output may replace (see ``workbench.storage.output_guard``)."""
    from workbench.data.layouts import resolve_labels_arg

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
    from workbench.data.folder import classes_path, open_dataset

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
        from workbench.data.export_ultralytics import export_ultralytics

        export_ultralytics(dataset, staging, valid_fraction=valid_fraction, seed=seed,
                           progress=progress)
        return sum(1 for r in dataset.images if r.labeled and r.width > 0
                   and r.label_error is None)
    if to != "darknet":
        return _write_copy(dataset, to, staging, progress, problems, final=final)
    from workbench.data.darknet_layout import export_darknet

    export_darknet(dataset, staging, valid_fraction=valid_fraction, seed=seed,
                   progress=progress, final=final, left_out=problems)
    return sum(len((staging / f"{part}.txt").read_bytes().splitlines())
               for part in ("train", "valid"))


def _write_copy(dataset, to: str, out: Path, progress, problems: list, final: Path) -> int:
    """Copy the images into ``out`` (the private build folder) with labels in ``to``;
    ``final`` is where ``out`` is published, the folder a VOC file names."""
    from workbench.formats.coco import write_coco
    from workbench.formats.yolo import write_classes
    from workbench.storage.atomic import atomic_copy, atomic_write_text

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
        from workbench.labels.dataset import Dataset

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
    from workbench.data.folder import label_path
    from workbench.formats.voc import write_voc
    from workbench.formats.yolo import write_yolo
    from workbench.storage.atomic import atomic_copy

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


def run(args: argparse.Namespace) -> int:
    from workbench.progress import ProgressBar

    bar = ProgressBar("convert", 0)
    try:
        written, problems = convert_dataset(
            args.src, args.to, args.out, source_format=args.source_format, images=args.images,
            valid_fraction=args.valid_fraction, seed=args.seed,
            adopt_unknown_classes=args.adopt_unknown_classes, strict=args.strict,
            force=args.force, labels=args.labels, progress=bar.update)
    finally:
        bar.close()
    for problem in problems:
        print(f"workbench convert: warning: {problem}", file=sys.stderr)
    print(f"wrote {written} images to {args.out} as {args.to}"
          + (f"; {len(problems)} source problem(s) listed above" if problems else ""))
    return 0
