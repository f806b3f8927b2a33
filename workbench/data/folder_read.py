"""Opening a dataset folder into a :class:`Dataset` (``workbench.data.folder`` is the public
face: import from there).

Where images, labels, the class list and the split live is the folder's layout, decided by
``workbench.data.layouts.detect_layout``; labels are YOLO ``.txt`` and/or VOC ``.xml`` files,
or one COCO JSON at the root. Opening never raises for a bad label file: the good files load
and each bad one is listed (a FormatError) in ``Dataset.problems`` and in its record's
``problems``. Also where a label file and the class list file of a record or dataset live
(:func:`label_path`, :func:`classes_path`), which saving shares.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from workbench.data.image_files import link_problem
from workbench.data.image_headers import image_size
from workbench.data.layouts import (
    CLASS_FILES,
    detect_layout,
    find_coco_file,
    unplaced_labels,
)
from workbench.data.splits import read_split
from workbench.errors import FormatError, ImageError
from workbench.formats import ProblemLog, decode_text, read_bytes, split_lines
from workbench.formats.coco import read_coco
from workbench.formats.voc import VocAnnotation, read_voc, voc_boxes
from workbench.formats.yolo import read_classes, read_yolo
from workbench.labels.dataset import ClassList, Dataset, ImageRecord

# the images marked verified, for label formats without a field for it (YOLO, COCO)
VERIFIED_FILE = "verified.txt"
LABEL_SUFFIX = {"yolo": ".txt", "voc": ".xml"}

Progress = Callable[[int, int], None]


def label_path(record: ImageRecord, label_format: str, dataset: Dataset | None = None
               ) -> Path:
    """Where the label file of ``record`` in ``label_format`` lives: where the dataset's
    layout puts it (beside the image when no dataset is given)."""
    layout = dataset.layout if dataset is not None else None
    if layout is None:
        return record.path.with_suffix(LABEL_SUFFIX[label_format])
    return layout.label_path(record.path, LABEL_SUFFIX[label_format])


def dataset_classes_path(dataset: Dataset) -> Path:
    """The class list file of ``dataset`` (its layout's; a data.yaml for Ultralytics)."""
    layout = dataset.layout
    if layout is None:
        return classes_path(dataset.root)
    if layout.data_yaml is not None:
        return layout.data_yaml.path
    return layout.classes_path()


def classes_path(root: str | Path) -> Path:
    """The class list file of a dataset: the existing classes.txt or obj.names, else classes.txt."""
    root = Path(root)
    for name in CLASS_FILES:
        if (root / name).is_file():
            return root / name
    return root / CLASS_FILES[0]


def open_dataset(root: str | Path, label_format: str = "auto", *,
                 adopt_unknown_classes: bool = False, coco_file: str | Path | None = None,
                 labels: str | Path | None = None, progress: Progress | None = None) -> Dataset:
    """Read the dataset folder ``root``.

    ``label_format`` is "auto" (whichever of YOLO, VOC, COCO the folder has most of), "yolo",
    "voc", "coco" or "none" (images only). Class names met in VOC or COCO files but missing
    from the class list are reported, their boxes skipped, and the names kept in
    ``dataset.classes.unknown``; ``adopt_unknown_classes=True`` appends them instead.
    ``coco_file`` names the COCO JSON when it is not one of :data:`COCO_FILES` at the root
    (its ``file_name`` entries are relative to ``root``). ``labels`` is a label folder
    apart from the images (``--labels DIR``); otherwise the layout is detected.
    """
    root = Path(root).resolve()
    if not root.is_dir():
        raise FormatError(root, "dataset folder not found")
    if label_format not in ("auto", "yolo", "voc", "coco", "none"):
        raise ValueError(f"unknown label format {label_format!r}")
    layout = detect_layout(root, labels)
    dataset = Dataset(root=root, layout=layout)
    paths = layout.images()
    for note in layout.notes:  # found while deciding the layout and listing its images
        _problem(dataset, None, note)
    # plain strings: pathlib objects for 10,000 images x 2 formats cost more than the parsing
    stems = [layout.label_stem(p) for p in paths]
    present = _label_files(root, stems, dataset)
    if coco_file is not None:
        coco_file = Path(coco_file).resolve()
        label_format = "coco" if label_format == "auto" else label_format
    if label_format == "auto":
        label_format = _detect_format(root, stems, present)
    dataset.label_format = label_format
    dataset.classes, has_class_file = _read_class_list(dataset)
    records = [ImageRecord(path=p) for p in paths]
    dataset.images = records
    voc_files: dict[int, tuple[VocAnnotation, ProblemLog]] = {}
    for i, record in enumerate(records):
        try:
            record.width, record.height = image_size(record.path)
        except ImageError as err:
            _problem(dataset, record, err)
        if label_format in LABEL_SUFFIX:
            label = stems[i] + LABEL_SUFFIX[label_format]
            if label in present:
                record.labeled = True
                if label_format == "yolo":
                    _load_yolo(dataset, record, label, has_class_file)
                else:
                    voc_files[i] = _load_voc(dataset, record, label)
        if progress is not None:
            progress(i + 1, len(records))
    if label_format == "voc":
        if not has_class_file:
            names = sorted({o.name for ann, _ in voc_files.values() for o in ann.objects})
            dataset.classes = ClassList(names)
        for i, (ann, log) in voc_files.items():
            _place_voc(dataset, records[i], ann, log, adopt_unknown_classes)
    elif label_format == "yolo" and not has_class_file:
        _number_classes(dataset, classes_path(root) in dataset.damaged_labels)
    elif label_format == "coco":
        _load_coco(dataset, coco_file or find_coco_file(root), has_class_file,
                   adopt_unknown_classes)
    read_split(dataset, lambda err: _problem(dataset, None, err))
    if label_format != "voc":  # VOC files carry their own verified="yes"
        _read_verified(dataset)
    if records and not any(r.labeled for r in records):
        stray = unplaced_labels(layout, paths)
        if stray:
            _problem(dataset, None, FormatError(root, stray))
    return dataset


def _label_files(root: Path, stems: list[str], dataset: Dataset) -> set[str]:
    """Every .txt/.xml file in the folders where the labels would be (one listing each).

    A label named like one but leading out of ``root`` through a link, or not a regular
    file (a FIFO would block the reader), is left out and listed as a problem.
    """
    inside = str(root).rstrip(os.sep) + os.sep
    skipped: list[tuple[Path, str]] = []
    found: set[str] = set()
    for folder in sorted({os.path.dirname(s) for s in stems}):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # list_images reported the folder already
        for entry in entries:
            if entry.name[-4:] not in (".txt", ".xml"):
                continue
            try:
                if entry.is_symlink():
                    reason = link_problem(entry.path, inside)
                    if reason is not None:
                        skipped.append((Path(entry.path), reason))
                        continue
                elif not entry.is_file(follow_symlinks=False):
                    if not entry.is_dir(follow_symlinks=False):
                        skipped.append((Path(entry.path), "not a regular file (a FIFO, "
                                        "socket or device); not read"))
                    continue
            except OSError:
                continue
            found.add(entry.path)
    for path, reason in skipped:
        _problem(dataset, None, FormatError(path, reason))
    return found


def _detect_format(root: Path, stems: list[str], present: set[str]) -> str:
    counts = {fmt: sum(stem + suffix in present for stem in stems)
              for fmt, suffix in LABEL_SUFFIX.items()}
    if counts["yolo"] or counts["voc"]:
        return "voc" if counts["voc"] > counts["yolo"] else "yolo"
    return "coco" if find_coco_file(root) else "none"


def _problem(dataset: Dataset, record: ImageRecord | None, err: FormatError) -> None:
    # a list file named by two splits (train: and val: both train.txt) is read twice: its
    # fault is one problem of the data set, not two
    if record is None:
        if str(err) in dataset.folder_problems:
            return
        dataset.folder_problems.add(str(err))
    dataset.problems.append(err)
    if record is not None:
        record.problems.append(str(err))


def _read_class_list(dataset: Dataset) -> tuple[ClassList, bool]:
    if dataset.layout is not None and dataset.layout.data_yaml is not None:
        return ClassList(dataset.layout.data_yaml.names), True
    path = dataset_classes_path(dataset)
    if not path.is_file():
        return ClassList(), False
    try:
        return read_classes(path), True
    except FormatError as err:
        _problem(dataset, None, err)
        dataset.damaged_labels.add(path)
        return ClassList(), False


def _record_log(dataset: Dataset, record: ImageRecord, label: str | Path,
                log: ProblemLog) -> None:
    for err in log.errors:
        _problem(dataset, record, err)
    record.problems.extend(log.warnings)
    if log.errors:
        dataset.damaged_labels.add(Path(label))


def _load_yolo(dataset: Dataset, record: ImageRecord, label: str, has_class_file: bool) -> None:
    log = ProblemLog(strict=False)
    try:
        if not record.width:
            raise FormatError(label, "labels not read: the image's size is unknown")
        num_classes = len(dataset.classes) if has_class_file else None
        record.boxes = read_yolo(label, record.width, record.height, num_classes, log)
    except FormatError as err:
        log.errors.append(err)
        record.label_error = str(err)
    _record_log(dataset, record, label, log)


def _number_classes(dataset: Dataset, damaged: bool = False) -> None:
    """No (readable) class list file: name the classes by their ids so every box has one."""
    top = max((b.class_id for r in dataset.images for b in r.boxes), default=-1)
    if top < 0:
        return
    dataset.classes = ClassList(str(i) for i in range(top + 1))
    if damaged:
        path, why = classes_path(dataset.root), "the class list file could not be read"
    else:
        path, why = dataset.root / CLASS_FILES[0], "no class list file"
    _problem(dataset, None, FormatError(path, f"{why}; classes are named by number"))


def _load_voc(dataset: Dataset, record: ImageRecord, label: str
              ) -> tuple[VocAnnotation, ProblemLog]:
    log = ProblemLog(strict=False)
    try:
        ann = read_voc(label, log)
    except FormatError as err:
        ann = VocAnnotation()
        log.errors.append(err)
        record.label_error = str(err)
    record.verified = ann.verified
    record.depth = ann.depth
    return ann, log


def _place_voc(dataset: Dataset, record: ImageRecord, ann: VocAnnotation, log: ProblemLog,
               adopt: bool) -> None:
    label = label_path(record, "voc", dataset)
    record.boxes = voc_boxes(ann, dataset.classes, record.width, record.height, label, log,
                             adopt_unknown=adopt)
    _record_log(dataset, record, label, log)


def _load_coco(dataset: Dataset, path: Path | None, has_class_file: bool, adopt: bool) -> None:
    if path is None:
        return
    log = ProblemLog(strict=False)
    try:
        coco_classes, coco_records = read_coco(path, log)
    except FormatError as err:
        _problem(dataset, None, err)
        dataset.damaged_labels.add(path)
        return
    for problem in log.errors:
        _problem(dataset, None, problem)
    if not has_class_file:
        dataset.classes = coco_classes
    by_path = {r.path: r for r in dataset.images}
    for file_name, coco_record in coco_records.items():
        record = by_path.get(dataset.root / file_name.replace("\\", "/"))
        if record is None:
            _problem(dataset, None, FormatError(path, f"image {file_name!r} is not in the "
                                                "dataset folder", element="images"))
            continue
        record.labeled = True
        if record.width and (record.width, record.height) != (coco_record.width,
                                                              coco_record.height):
            record.problems.append(str(FormatError(
                path, f"{file_name!r} is listed as {coco_record.width}x{coco_record.height} "
                f"but the image is {record.width}x{record.height}", element="images")))
        for box in coco_record.boxes:
            name = coco_classes[box.class_id]
            class_id = dataset.classes.index(name)
            if class_id is None and adopt:
                class_id = dataset.classes.append(name)
            if class_id is None:
                dataset.classes.note_unknown(name)
                _problem(dataset, record, FormatError(path, f"class {name!r} of {file_name!r}"
                                                      " is not in the class list (box skipped)",
                                                      element="annotations"))
                continue
            box.class_id = class_id
            record.boxes.append(box)


def _read_verified(dataset: Dataset) -> None:
    """Mark the images listed in ``verified.txt`` (paths relative to the root, one a line)."""
    path = dataset.root / VERIFIED_FILE
    if not path.is_file():
        return
    try:
        lines = split_lines(decode_text(read_bytes(path), path))
    except FormatError as err:
        _problem(dataset, None, err)
        return
    by_relative = {r.path.relative_to(dataset.root).as_posix(): r for r in dataset.images}
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry:
            continue
        record = by_relative.get(entry.replace("\\", "/"))
        if record is None:
            _problem(dataset, None, FormatError(path, f"{entry!r} is not an image of the "
                                                "dataset", line=number))
        else:
            record.verified = True
