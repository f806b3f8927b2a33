"""A dataset folder on disk: open it into a :class:`Dataset`, save labels and classes back.

Where images, labels, the class list and the split live is the folder's layout, decided by
``workbench.data.layouts.detect_layout`` (labels beside the images, a VOC devkit, a separate label
folder, the Ultralytics layout); labels are YOLO ``.txt`` and/or VOC ``.xml`` files, or one
COCO JSON at the root. Opening never raises for a bad label file: the good files load and each bad
one is listed (a FormatError) in ``Dataset.problems`` and in its record's ``problems``.
Every save is atomic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from workbench.data.image_files import link_problem
from workbench.data.image_headers import image_depth, image_size
from workbench.data.layouts import (
    CLASS_FILES,
    detect_layout,
    find_coco_file,
    unplaced_labels,
)
from workbench.data.splits import read_split
from workbench.errors import FormatError, ImageError, WorkbenchError
from workbench.formats import ProblemLog, decode_text, read_bytes, split_lines
from workbench.formats.voc import VocAnnotation, read_voc, voc_boxes, write_voc
from workbench.formats.yolo import read_classes, read_yolo, write_classes, write_yolo
from workbench.labels.dataset import ClassList, Dataset, ImageRecord
from workbench.storage.atomic import atomic_write_bytes, check_write_inside, writes_inside

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
    from workbench.formats.coco import read_coco

    if path is None:
        return
    log = ProblemLog(strict=False)
    try:
        coco_classes, coco_records = read_coco(path, log)
    except FormatError as err:
        _problem(dataset, None, err)
        dataset.damaged_labels.add(path)
        return
    for err in log.errors:
        _problem(dataset, None, err)
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


def save_verified(dataset: Dataset, record: ImageRecord) -> Path | None:
    """Add or remove ``record`` in ``verified.txt`` (atomic; the file is created only when an
    image is verified). Other lines stay as they are, in their order."""
    with _writes_inside(dataset):
        return _save_verified(dataset, record)


def _save_verified(dataset: Dataset, record: ImageRecord) -> Path | None:
    path = dataset.root / VERIFIED_FILE
    entry = record.path.relative_to(dataset.root).as_posix()
    lines = []
    if path.is_file():
        lines = [line.strip() for line in
                 split_lines(decode_text(read_bytes(path), path)) if line.strip()]
    listed = entry in lines
    if listed == record.verified:
        return None
    lines = [*lines, entry] if record.verified else [line for line in lines if line != entry]
    atomic_write_bytes(path, "".join(f"{line}\n" for line in lines).encode("utf-8"))
    return path


def _writes_inside(dataset: Dataset):
    """Saves of ``dataset`` refuse a file reached through a link out of the data set folder
    (or out of the label folder, which ``--labels DIR`` may put elsewhere): a downloaded
    data set's ``classes.txt`` linking to ``~/.bashrc`` must not get that file rewritten."""
    return writes_inside(*_roots(dataset))


def _roots(dataset: Dataset) -> list[Path]:
    layout = dataset.layout
    extra = [layout.label_root] if layout is not None and layout.label_root else []
    return [dataset.root, *extra]


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _keep_backup(dataset: Dataset, path: Path) -> None:
    """Before replacing a file that did not load whole, keep its bytes as ``name.bak``."""
    if path not in dataset.damaged_labels:
        return
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        n = 1
        while backup.exists():
            backup = path.with_name(f"{path.name}.bak{n}")
            n += 1
        atomic_write_bytes(backup, path.read_bytes())
    # only once the bytes are safe: a failed backup is tried again on the next save
    dataset.damaged_labels.discard(path)


def save_labels(dataset: Dataset, record: ImageRecord,
                formats: Iterable[str] = ("yolo",)) -> list[Path]:
    """Write ``record``'s labels where the layout keeps them, atomically, in each of
    ``formats``.

    With YOLO, also writes the class list file when it is missing or the user has added
    classes since (appending only; a class list changed in another way is saved with
    :func:`save_classes`); without VOC, the image's line in ``verified.txt``. A VOC file keeps
    the ``<depth>`` its earlier version said. Returns the files written.
    """
    with _writes_inside(dataset):
        return _save_labels(dataset, record, tuple(formats))


def _save_labels(dataset: Dataset, record: ImageRecord, formats: tuple[str, ...]
                 ) -> list[Path]:
    for fmt in formats:
        if fmt not in LABEL_SUFFIX:
            raise ValueError(f"cannot save labels as {fmt!r}: choose from "
                             f"{', '.join(LABEL_SUFFIX)}")
    if not _inside(dataset.root, record.path):
        raise WorkbenchError(f"{record.path}: image is not inside the dataset folder "
                             f"{dataset.root}; labels not saved")
    if record.width <= 0 or record.height <= 0:
        raise ImageError(record.path, "image size unknown; labels not saved")
    names = dataset.classes.names
    for box in record.boxes:
        if not 0 <= box.class_id < len(names):
            raise WorkbenchError(f"{record.path}: box class id {box.class_id} is not in the "
                                 f"class list of {len(names)} names; labels not saved")
    written = []
    if names and "yolo" in formats:  # VOC files name their classes: no list file needed
        written += _ensure_class_file(dataset)
    for fmt in formats:
        target = label_path(record, fmt, dataset)
        target.parent.mkdir(parents=True, exist_ok=True)  # a new image's labels/<split>/
        _keep_backup(dataset, target)
        if fmt == "yolo":
            write_yolo(target, record.boxes, record.width, record.height)
        else:
            if record.depth is None:
                record.depth = _depth_of(record)
            write_voc(target, record.boxes, names, record.path, record.width, record.height,
                      depth=record.depth, verified=record.verified)
        written.append(target)
    if "voc" not in formats:  # YOLO has no field for it: the data set's verified.txt
        saved = save_verified(dataset, record)
        written += [saved] if saved else []
    record.labeled = True
    if dataset.label_format == "none":
        dataset.label_format = formats[0]
    return written


def _names_on_disk(dataset: Dataset, path: Path) -> list[str]:
    if dataset.layout is not None and dataset.layout.data_yaml is not None:
        from workbench.data.ultralytics import read_data_yaml

        return read_data_yaml(path).names
    return read_classes(path).names


def _write_names(dataset: Dataset, path: Path, names: list[str]) -> None:
    if dataset.layout is not None and dataset.layout.data_yaml is not None:
        from workbench.data.ultralytics import rewrite_names

        rewrite_names(path, names)  # the other keys of data.yaml stay
    else:
        write_classes(path, names)


def _depth_of(record: ImageRecord) -> int:
    try:
        return image_depth(record.path)
    except ImageError:
        return 3  # labelImg's default for a colour image


def _ensure_class_file(dataset: Dataset) -> list[Path]:
    path = dataset_classes_path(dataset)
    names = dataset.classes.names
    if path.is_file() and path not in dataset.damaged_labels:
        try:
            on_disk = _names_on_disk(dataset, path)
        except FormatError:
            on_disk = None
        if on_disk == names:
            return []
        if on_disk is None or names[:len(on_disk)] != on_disk:
            raise WorkbenchError(f"{path}: the class list file differs from the dataset's "
                                 "class list; save the class list first (labels not saved)")
    elif path in dataset.damaged_labels:
        raise WorkbenchError(f"{path}: the class list file could not be read; fix it or save "
                             "the class list first (labels not saved)")
    _write_names(dataset, path, names)
    return [path]


def save_classes(dataset: Dataset) -> Path:
    """Write the dataset's class list (classes.txt, the existing obj.names, or an Ultralytics
    data.yaml's names), atomically.

    This is the one place a class list file is rewritten: call it when the user renamed,
    added or (after relabeling) removed classes.
    """
    path = dataset_classes_path(dataset)
    with _writes_inside(dataset):
        check_write_inside(path, *_roots(dataset))  # before the backup of a damaged one
        _keep_backup(dataset, path)
        _write_names(dataset, path, dataset.classes.names)
    return path
