"""Named prediction sets: a detection run's results kept in the data set folder.

``ROOT/.predictions/NAME/`` holds exactly what ``workbench detect ROOT --out DIR`` writes in
its default format (``rel/stem.txt`` lines ``class cx cy w h confidence`` and
``classes.txt``: the model's names), plus ``run.json`` saying how it was made and the images
it covers (relative path, width, height), so a set is read back (overlay, export, evaluation)
without the model and without decoding images. The folder is hidden, so the data set's image
list and statistics never see it. ``ROOT`` is the folder the images were taken from.

A set folder may come from elsewhere (a copied or downloaded data set), so nothing read
from it is trusted: a set is a real folder (a link named like a set is neither listed nor
read), ``run.json`` is a regular file of at most 64 MiB whose every field is checked (types,
finite numbers, ranges, image paths relative and without ``..``), and every path built
from it is resolved and must stay in the set folder (prediction files) or in ``ROOT``
(images). Each failure is one FormatError naming the file (and the field).

Runs into a set and exports of a set are ``workbench.predictions.run``.
"""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS
from workbench.errors import FormatError, WorkbenchError
from workbench.formats import decode_text, read_bytes
from workbench.formats.yolo import parse_yolo_detections, read_classes
from workbench.labels.dataset import MAX_CLASSES, Box
from workbench.storage.atomic import atomic_write_text, writes_inside
from workbench.storage.files import MAX_RUN_INFO_BYTES, resolved_inside

PREDICTIONS_DIR = ".predictions"
INFO_FILE = "run.json"
_BAD_NAME = re.compile(r"[\\/:*?\"<>|\x00-\x1f]")


def check_name(name: str) -> str:
    """The set's name, stripped; a WorkbenchError when it cannot be a folder name."""
    name = name.strip()
    if not name or name in (".", "..") or name.startswith(".") or _BAD_NAME.search(name):
        raise WorkbenchError(f"{name!r} cannot name a prediction set (a folder name: no "
                             "slashes, no leading dot)")
    return name


def sets_folder(root: str | Path) -> Path:
    return Path(root) / PREDICTIONS_DIR


def set_folder(root: str | Path, name: str) -> Path:
    return sets_folder(root) / check_name(name)


def list_sets(root: str | Path) -> list[str]:
    """Names of the prediction sets under ``root``, sorted: real folders only (a link to a
    folder elsewhere is not a set of this data set)."""
    folder = sets_folder(root)
    if folder.is_symlink() or not folder.is_dir():
        return []
    try:
        with os.scandir(folder) as entries:
            return sorted(e.name for e in entries
                          if e.is_dir(follow_symlinks=False) and not e.name.startswith("."))
    except OSError:
        return []


def check_set_dir(set_dir: str | Path) -> Path:
    """``set_dir`` when it is no link and sits in no linked ``.predictions`` folder; a
    FormatError naming it otherwise (a link would lead reads and writes elsewhere)."""
    set_dir = Path(set_dir)
    for folder in (set_dir, set_dir.parent):
        if folder.is_symlink():
            raise FormatError(folder, "is a link; a prediction set is a real folder in the "
                              "data set folder; not read or written")
    return set_dir


def confined(path: Path, top: Path, what: str) -> Path:
    """``path`` when, links resolved, it lies in ``top``; a FormatError naming it else."""
    if not resolved_inside(path, top):
        raise FormatError(path, f"leads outside the {what} {top}; not read")
    return path


def label_path(set_dir: Path, rel: str | Path) -> Path:
    """Where an image's predictions are, for its path relative to the set's root."""
    return (Path(set_dir) / rel).with_suffix(".txt")


def relative_to_root(image: str | Path, root: str | Path) -> Path:
    """An image's path relative to ``root`` (what ``detect --out`` uses); its name if outside."""
    try:
        return Path(image).resolve().relative_to(Path(root).resolve())
    except ValueError:
        return Path(Path(image).name)


@dataclass
class RunInfo:
    """``run.json``: the model, engine and thresholds of the run, and the images it covers."""

    model: str = ""
    engine: str = ""
    reason: str = ""
    conf: float = DEFAULT_CONF
    nms: float = DEFAULT_NMS
    size: tuple[int, int] = (0, 0)
    classes: list[str] = field(default_factory=list)
    source: str = ""
    started: str = ""
    seconds: float = 0.0
    cancelled: bool = False
    images: list[tuple[str, int, int]] = field(default_factory=list)  # rel path, w, h
    skipped: list[str] = field(default_factory=list)                  # one line each
    # rel path -> file stem, only for images whose name clashed (a.jpg and a.png): the rest
    # are at their plain name (``workbench.detect.output_names``)
    renamed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dict(self.__dict__)
        data["size"] = list(self.size)
        data["images"] = [list(i) for i in self.images]
        return json.dumps(data, indent=1) + "\n"


def write_info(set_dir: Path, info: RunInfo) -> None:
    set_dir = check_set_dir(set_dir)
    with writes_inside(set_dir):
        atomic_write_text(set_dir / INFO_FILE, info.to_json())


def read_info(set_dir: Path) -> RunInfo:
    """The set's ``run.json``, every field checked; FormatError naming the file (and the
    field) otherwise."""
    set_dir = check_set_dir(set_dir)
    path = confined(set_dir / INFO_FILE, set_dir, "prediction set folder")
    text = decode_text(read_bytes(path, MAX_RUN_INFO_BYTES), path)
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: [[[[... nested deep
        raise FormatError(path, f"not a prediction set's run file: "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise FormatError(path, "not a prediction set's run file: expected a JSON object")
    return _info_from(data, path)


# run.json's fields: name -> check(value, where) returning the value RunInfo holds
def _info_from(data: dict[str, Any], path: Path) -> RunInfo:
    info = RunInfo()
    for name, check in _FIELDS.items():
        if name in data:  # a missing field keeps its default (older run files)
            setattr(info, name, check(data[name], _Where(path, name)))
    return info


@dataclass
class _Where:
    """The file and field being checked, for the one-line error."""

    path: Path
    name: str

    def error(self, expected: str, value: Any) -> FormatError:
        # reprlib: a short repr however long or deep the value (run.json may be 64 MiB)
        return FormatError(self.path, f"{self.name}: expected {expected}, got "
                           f"{reprlib.repr(value)}")

    def at(self, index: Any) -> _Where:
        return _Where(self.path, f"{self.name}[{index!r}]")


_MAX_SIDE = (1 << 31) - 1  # image sides and the network size: what int32 math holds


def _text(value: Any, where: _Where) -> str:
    if not isinstance(value, str):
        raise where.error("a string", value)
    return value


def _number(low: float, high: float) -> Any:
    def check(value: Any, where: _Where) -> float:
        # bool is an int to Python, not a number to us; inf and nan (1e400, NaN) fail here
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not low <= value <= high):
            raise where.error(f"a number from {low:g} to {high:g}", value)
        return float(value)
    return check


def _whole(value: Any, where: _Where, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _MAX_SIDE:
        raise where.error(f"a whole number from {low} to {_MAX_SIDE}", value)
    return value


def _flag(value: Any, where: _Where) -> bool:
    if not isinstance(value, bool):
        raise where.error("true or false", value)
    return value


def _relative(value: Any, where: _Where) -> str:
    """An image path relative to the set's root: no absolute path, drive or ``..`` (read
    with Windows' rules too, which also split at backslashes)."""
    value = _text(value, where)
    windows = PureWindowsPath(value)
    if (not value or "\x00" in value or PurePosixPath(value).is_absolute() or windows.anchor
            or ".." in windows.parts):
        raise where.error("a path relative to the set's folder, without ..", value)
    return value


def _size(value: Any, where: _Where) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise where.error("[width, height]", value)
    return (_whole(value[0], where.at(0)), _whole(value[1], where.at(1)))


def _strings(value: Any, where: _Where, limit: int | None = None) -> list[str]:
    if not isinstance(value, list) or (limit is not None and len(value) > limit):
        raise where.error("a list of strings" + (f" (at most {limit:,})" if limit else ""),
                          value)
    return [_text(item, where.at(i)) for i, item in enumerate(value)]


def _images(value: Any, where: _Where) -> list[tuple[str, int, int]]:
    if not isinstance(value, list):
        raise where.error("a list of [path, width, height]", value)
    images = []
    for i, item in enumerate(value):
        at = where.at(i)
        if not isinstance(item, list) or len(item) != 3:
            raise at.error("[path, width, height]", item)
        images.append((_relative(item[0], at), _whole(item[1], at, 1), _whole(item[2], at, 1)))
    return images


def _renamed(value: Any, where: _Where) -> dict[str, str]:
    if not isinstance(value, dict):
        raise where.error("a mapping of image path to file stem", value)
    return {_relative(k, where): _relative(v, where.at(k)) for k, v in value.items()}


_FIELDS = {
    "model": _text, "engine": _text, "reason": _text, "source": _text, "started": _text,
    "conf": _number(0.0, 1.0), "nms": _number(0.0, 1.0), "size": _size,
    "classes": lambda v, w: _strings(v, w, MAX_CLASSES),
    "seconds": _number(0.0, 1e9), "cancelled": _flag, "images": _images,
    "skipped": _strings, "renamed": _renamed,
}


@dataclass
class Predictions:
    """One image's predicted boxes (float pixels, class ids of ``names``) and scores."""

    boxes: list[Box]
    scores: list[float]


def read_predictions(set_dir: Path, rel: str | Path, width: int, height: int,
                     num_classes: int | None = None,
                     renamed: dict[str, str] | None = None) -> Predictions | None:
    """The predictions of one image, or None when the set has no file for it. ``renamed``:
    the set's ``RunInfo.renamed`` (where images with clashing names were written)."""
    set_dir = check_set_dir(set_dir)
    stem = (renamed or {}).get(Path(rel).as_posix())
    path = set_dir / f"{stem}.txt" if stem else label_path(set_dir, rel)
    if not os.path.lexists(path):
        return None
    # read_bytes: a regular file under the label size cap (a FIFO would block)
    text = decode_text(read_bytes(confined(path, set_dir, "prediction set folder")), path)
    boxes, scores = parse_yolo_detections(text, path, width, height, num_classes)
    return Predictions(boxes, scores)


def read_names(set_dir: Path) -> list[str]:
    """The set's class names (``classes.txt``, the model's names at the time of the run)."""
    set_dir = check_set_dir(set_dir)
    path = set_dir / "classes.txt"
    if not path.is_file():
        return []
    return list(read_classes(confined(path, set_dir, "prediction set folder")))
