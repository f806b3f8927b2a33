"""``workbench convert SRC --to yolo|voc|coco|darknet|ultralytics --out DIR``: copy a dataset
into another label format or layout. The source is only read (in any layout
``workbench.layouts`` detects); the output goes to a new (or empty) folder."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from workbench.commands.dataset_args import add_labels_option
from workbench.errors import FormatError, WorkbenchError

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
    p.add_argument("--to", required=True, choices=TARGETS, help="output label format")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output folder (must not exist yet, or be empty)")
    p.add_argument("--from", dest="source_format", choices=SOURCES,
                   help="source label format (default: detected)")
    p.add_argument("--images", metavar="DIR",
                   help="image folder for a COCO .json SRC (default: the file's folder)")
    p.add_argument("--valid-fraction", type=float, default=0.2, metavar="F",
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
    p.set_defaults(func=run)


def _check_out(out: Path, root: Path, coco_file: Path | None) -> None:
    out_r = out.resolve()
    if out_r == root or root in out_r.parents:
        raise WorkbenchError(f"{out}: the output folder is inside the source {root}; "
                             "choose a folder outside it (the source is never modified)")
    if out_r in root.parents:
        raise WorkbenchError(f"{out}: the output folder contains the source {root}")
    if coco_file is not None and out_r in coco_file.parents:
        raise WorkbenchError(f"{out}: the output folder contains the source {coco_file}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise WorkbenchError(f"{out}: already exists and is not an empty folder")


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
                    labels: str | Path | None = None,
                    progress: Callable[[int, int], None] | None = None) -> tuple[int, list]:
    """Convert the dataset at ``src`` into ``to`` format under ``out``.

    Returns (images written, problems found in the source). Raises WorkbenchError for a bad
    destination, and with ``strict`` when the source has any problem.
    """
    from workbench.folder import open_dataset

    if to not in TARGETS:
        raise WorkbenchError(f"unknown output format {to!r}; choose from {', '.join(TARGETS)}")
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
    _check_out(out, root, coco_file)
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
    out.mkdir(parents=True, exist_ok=True)
    if to == "darknet":
        from workbench.formats.darknet_layout import export_darknet

        export_darknet(dataset, out, valid_fraction=valid_fraction, seed=seed,
                       progress=progress)
        count = sum(1 for r in dataset.images if r.labeled and r.width > 0)
        return count, dataset.problems
    if to == "ultralytics":
        from workbench.formats.ultralytics import export_ultralytics

        export_ultralytics(dataset, out, valid_fraction=valid_fraction, seed=seed,
                           progress=progress)
        count = sum(1 for r in dataset.images if r.labeled and r.width > 0)
        return count, dataset.problems
    return _write_copy(dataset, to, out, progress), dataset.problems


def _write_copy(dataset, to: str, out: Path, progress) -> int:
    from workbench.atomic import atomic_write_text
    from workbench.formats.coco import write_coco
    from workbench.formats.voc import write_voc
    from workbench.formats.yolo import write_classes, write_yolo

    copies = []
    for done, record in enumerate(dataset.images, start=1):
        relative = record.path.relative_to(dataset.root)
        target = _safe_target(out, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(record.path, target)
        copies.append((record, target))
        if record.labeled and record.width > 0 and to in ("yolo", "voc"):
            if to == "yolo":
                write_yolo(target.with_suffix(".txt"), record.boxes, record.width,
                           record.height)
            else:
                write_voc(target.with_suffix(".xml"), record.boxes, dataset.classes.names,
                          target, record.width, record.height, verified=record.verified)
        if progress is not None:
            progress(done, len(dataset.images))
    if len(dataset.classes):
        write_classes(out / "classes.txt", dataset.classes)
    if to == "coco":
        from workbench.dataset import Dataset

        write_coco(Dataset(root=dataset.root, classes=dataset.classes,
                           images=[r for r in dataset.images if r.width > 0]),
                   out / "annotations.json")
    for part, records in dataset.split.items():
        if part == "trainval":
            continue  # a VOC devkit's train + val: the copy has train.txt and valid.txt
        atomic_write_text(out / f"{part}.txt", "".join(
            f"{r.path.relative_to(dataset.root).as_posix()}\n" for r in records))
    return len(copies)


def run(args: argparse.Namespace) -> int:
    from workbench.progress import ProgressBar

    bar = ProgressBar("convert", 0)
    try:
        written, problems = convert_dataset(
            args.src, args.to, args.out, source_format=args.source_format, images=args.images,
            valid_fraction=args.valid_fraction, seed=args.seed,
            adopt_unknown_classes=args.adopt_unknown_classes, strict=args.strict,
            labels=args.labels, progress=bar.update)
    finally:
        bar.close()
    for problem in problems:
        print(f"workbench convert: warning: {problem}", file=sys.stderr)
    print(f"wrote {written} images to {args.out} as {args.to}"
          + (f"; {len(problems)} source problem(s) listed above" if problems else ""))
    return 0
