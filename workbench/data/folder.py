"""A dataset folder on disk: open it into a :class:`Dataset`, save labels and classes back.

Where images, labels, the class list and the split live is the folder's layout, decided by
``workbench.data.layouts.detect_layout`` (labels beside the images, a VOC devkit, a separate label
folder, the Ultralytics layout); labels are YOLO ``.txt`` and/or VOC ``.xml`` files, or one
COCO JSON at the root. Opening never raises for a bad label file: the good files load and each bad
one is listed (a FormatError) in ``Dataset.problems`` and in its record's ``problems``.
Every save is atomic.

Opening is in :mod:`workbench.data.folder_read`, saving here; import both from here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from workbench.data.folder_read import (  # noqa: F401  (opening: workbench.data.folder's names)
    LABEL_SUFFIX,
    VERIFIED_FILE,
    Progress,
    classes_path,
    dataset_classes_path,
    label_path,
    open_dataset,
)
from workbench.data.image_headers import image_depth
from workbench.data.ultralytics import read_data_yaml, rewrite_names
from workbench.errors import FormatError, ImageError, WorkbenchError
from workbench.formats import decode_text, read_bytes, split_lines
from workbench.formats.voc import write_voc
from workbench.formats.yolo import read_classes, write_classes, write_yolo
from workbench.labels.dataset import Dataset, ImageRecord
from workbench.storage.atomic import atomic_write_bytes, check_write_inside, writes_inside


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
        return read_data_yaml(path).names
    return read_classes(path).names


def _write_names(dataset: Dataset, path: Path, names: list[str]) -> None:
    if dataset.layout is not None and dataset.layout.data_yaml is not None:
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
