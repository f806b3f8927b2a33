"""The darknet training layout (AlexeyAB's "How to train"): what ``darknet detector train``
reads.

    OUT/obj.names         one class name per line
    OUT/obj.data          classes=, train=, valid=, names=, backup=
    OUT/train.txt         image paths, one per line
    OUT/valid.txt
    OUT/obj/NAME.jpg      the images, flat, each with NAME.txt (YOLO labels) beside it
    OUT/backup/           where darknet writes weights while training

Paths in obj.data and train/valid.txt are absolute, so darknet can run from any folder.
Images go into one flat folder named ``obj`` because darknet finds a label by replacing
``/images/`` or ``/JPEGImages/`` in the image path with ``/labels/``; a copied sub-folder
named ``images`` would send it looking in the wrong place. Darknet built without OpenCV
ignores EXIF orientation, so an image with an orientation tag is written out already turned
(pixels in the orientation the labels use), as are formats darknet cannot read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.data.image_headers import exif_orientation
from workbench.data.images import load_bgr
from workbench.data.splits import random_split
from workbench.errors import FormatError
from workbench.formats import decode_text, read_bytes, split_lines
from workbench.formats.yolo import format_yolo, write_classes
from workbench.labels.dataset import ImageRecord
from workbench.storage.atomic import atomic_copy, atomic_write_bytes, atomic_write_text

# extensions darknet's image-to-label path rewrite knows (replace_image_to_label)
DARKNET_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


def split_records(records: list[ImageRecord], valid_fraction: float, seed: int
                  ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """A seeded random (train, valid) split: :func:`workbench.data.splits.random_split`."""
    return random_split(records, valid_fraction, seed)


def unique_name(name: str, used: set[str]) -> str:
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, n = name, 1
    while candidate.lower() in used:
        candidate = f"{stem}_{n}{suffix}"
        n += 1
    used.add(candidate.lower())
    return candidate


def _copy_image(record: ImageRecord, target_dir: Path, used: set[str]) -> Path:
    """Copy (or, when needed, re-encode upright) the image; return its path in the layout."""
    suffix = record.path.suffix.lower()
    upright = exif_orientation(record.path) == 1
    if upright and suffix in DARKNET_EXTENSIONS:
        target = target_dir / unique_name(record.path.name, used)
        atomic_copy(record.path, target)
        return target
    # deferred: OpenCV takes ~0.3 s to import, only for the few images turned or re-encoded
    import cv2

    # a turned JPEG stays a JPEG (a PNG of a phone photo is huge); anything else goes lossless
    new_suffix = ".jpg" if suffix in (".jpg", ".jpeg") else ".png"
    target = target_dir / unique_name(record.path.stem + new_suffix, used)
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if new_suffix == ".jpg" else []
    ok, encoded = cv2.imencode(new_suffix, load_bgr(record.path), params)
    if not ok:
        raise FormatError(record.path, "could not re-encode the image for darknet")
    atomic_write_bytes(target, encoded.tobytes())
    return target


def export_darknet(dataset: Any, out: str | Path, *, valid_fraction: float = 0.2,
                   seed: int = 0, use_existing_split: bool = True,
                   progress: Callable[[int, int], None] | None = None,
                   final: str | Path | None = None, left_out: list | None = None) -> Path:
    """Write the labeled images of ``dataset`` in the darknet training layout under ``out``.

    The split is the dataset's own (train.txt/valid.txt) when it has one and
    ``use_existing_split``; otherwise a seeded random split with ``valid_fraction`` of the
    images in valid. Returns the path of ``obj.data``. ``final`` is where ``out`` will be
    moved once complete (the absolute paths in the lists name it). Images whose label or
    pixels could not be read are left out (never written with an empty label) and added
    to ``left_out`` as FormatErrors.
    """
    out = Path(out).resolve()
    final = Path(final).resolve() if final is not None else out
    left_out = left_out if left_out is not None else []
    images_dir = out / "obj"
    images_dir.mkdir(parents=True, exist_ok=True)
    (out / "backup").mkdir(exist_ok=True)
    labeled = []
    for r in dataset.images:
        if not r.labeled:
            continue
        if r.label_error is not None:
            left_out.append(FormatError(r.path, "left out: its label file could not be read"))
        elif r.width <= 0 or r.height <= 0:
            left_out.append(FormatError(r.path, "left out: the image could not be read"))
        else:
            labeled.append(r)
    if use_existing_split and dataset.split.get("train"):
        ids = {id(r) for r in labeled}
        train = [r for r in dataset.split["train"] if id(r) in ids]
        valid = [r for r in dataset.split.get("valid", []) if id(r) in ids]
        listed = {id(r) for r in train + valid}
        train += [r for r in labeled if id(r) not in listed]  # new images train by default
    else:
        train, valid = split_records(labeled, valid_fraction, seed)
    used: set[str] = set()
    written: dict[int, Path] = {}
    for done, record in enumerate(labeled, start=1):
        try:
            target = _copy_image(record, images_dir, used)
        except FormatError as err:  # went away, not a regular file, or does not decode
            left_out.append(FormatError(record.path, f"left out: {err.message}"))
            continue
        atomic_write_text(target.with_suffix(".txt"),
                          format_yolo(record.boxes, record.width, record.height))
        written[id(record)] = final / "obj" / target.name
        if progress is not None:
            progress(done, len(labeled))
    write_classes(out / "obj.names", dataset.classes)
    for part, records in (("train", train), ("valid", valid)):
        atomic_write_text(out / f"{part}.txt",
                          "".join(f"{written[id(r)]}\n" for r in records if id(r) in written))
    data = out / "obj.data"
    atomic_write_text(data, f"classes = {len(dataset.classes)}\n"
                            f"train = {final / 'train.txt'}\n"
                            f"valid = {final / 'valid.txt'}\n"
                            f"names = {final / 'obj.names'}\n"
                            f"backup = {final / 'backup'}/\n")
    return data


def read_obj_data(path: str | Path) -> dict[str, str]:
    """The ``key = value`` pairs of an obj.data file (``#`` starts a comment)."""
    values: dict[str, str] = {}
    for number, line in enumerate(split_lines(decode_text(read_bytes(path), path)), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=" not in line:
            raise FormatError(path, f"expected 'key = value', found {line!r}", line=number)
        key, value = (part.strip() for part in line.split("=", 1))
        if not key:
            raise FormatError(path, "empty key", line=number)
        values[key] = value
    return values
