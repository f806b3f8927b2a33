"""Named prediction sets: a detection run's results kept in the data set folder.

``ROOT/.predictions/NAME/`` holds exactly what ``workbench detect ROOT --out DIR`` writes in
its default format (``rel/stem.txt`` lines ``class cx cy w h confidence`` and
``classes.txt``: the model's names), plus ``run.json`` saying how it was made and the images
it covers (relative path, width, height), so a set is read back (overlay, export, evaluation)
without the model and without decoding images. The folder is hidden, so the data set's image
list and statistics never see it. ``ROOT`` is the folder the images were taken from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from workbench.atomic import atomic_write_text
from workbench.dataset import Box
from workbench.errors import FormatError, WorkbenchError

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
    """Names of the prediction sets under ``root``, sorted."""
    folder = sets_folder(root)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith("."))


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
    conf: float = 0.25
    nms: float = 0.45
    size: tuple[int, int] = (0, 0)
    classes: list[str] = field(default_factory=list)
    source: str = ""
    started: str = ""
    seconds: float = 0.0
    cancelled: bool = False
    images: list[tuple[str, int, int]] = field(default_factory=list)  # rel path, w, h
    skipped: list[str] = field(default_factory=list)                  # one line each
    # rel path -> file stem, only for images whose name clashed (a.jpg and a.png): the rest
    # are at their plain name (``workbench.output_names``)
    renamed: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dict(self.__dict__)
        data["size"] = list(self.size)
        data["images"] = [list(i) for i in self.images]
        return json.dumps(data, indent=1) + "\n"


def write_info(set_dir: Path, info: RunInfo) -> None:
    atomic_write_text(Path(set_dir) / INFO_FILE, info.to_json())


def read_info(set_dir: Path) -> RunInfo:
    path = Path(set_dir) / INFO_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info = RunInfo(**{k: v for k, v in data.items() if k in RunInfo.__dataclass_fields__})
        info.size = tuple(info.size)  # type: ignore[assignment]
        info.images = [(str(r), int(w), int(h)) for r, w, h in info.images]
        info.renamed = {str(k): str(v) for k, v in dict(info.renamed).items()}
    except (OSError, ValueError, TypeError) as exc:
        raise FormatError(path, f"not a prediction set's run file: {exc}") from None
    return info


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
    from workbench.formats.yolo import parse_yolo_detections

    stem = (renamed or {}).get(Path(rel).as_posix())
    path = Path(set_dir) / f"{stem}.txt" if stem else label_path(set_dir, rel)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"cannot read: {exc}") from None
    boxes, scores = parse_yolo_detections(text, path, width, height, num_classes)
    return Predictions(boxes, scores)


def read_names(set_dir: Path) -> list[str]:
    """The set's class names (``classes.txt``, the model's names at the time of the run)."""
    from workbench.formats.yolo import read_classes

    path = Path(set_dir) / "classes.txt"
    return list(read_classes(path)) if path.is_file() else []


def detect_into_set(detector, sources, root: str | Path, set_dir: Path, conf: float,
                    nms: float, info: RunInfo, *, progress=None, cancelled=lambda: False,
                    replace: bool = False) -> RunInfo:
    """Run ``detector`` over ``sources`` with the ``workbench detect`` pipeline and writer
    (YOLO + confidence, paths relative to ``root``) into ``set_dir``; ``run.json`` last.

    ``cancelled()`` is asked after each image; a cancelled run keeps what it wrote and says
    so in ``run.json``. ``replace`` empties an existing set first.
    """
    import shutil
    import time

    from workbench.commands.detect import DetectionWriter, output_stems
    from workbench.detect.pipeline import RunSummary, resolve_sources

    set_dir = Path(set_dir)
    sources = resolve_sources(sources)
    stems = output_stems(sources, Path(root))  # detect --out's names, clashes included
    if replace and set_dir.is_dir():
        shutil.rmtree(set_dir)
    writer = DetectionWriter(set_dir, "yolo", detector.class_names, False)
    summary = RunSummary()
    info.started = info.started or time.strftime("%Y-%m-%d %H:%M:%S")
    info.classes = list(detector.class_names)
    info.engine, info.reason = detector.backend.name, detector.backend.reason
    info.size = (detector.width, detector.height)
    info.conf, info.nms = conf, nms
    for result in detector.detect_many(sources, conf, nms, progress=progress,
                                       summary=summary):
        if not result.ok:
            info.skipped.append(result.error)
        else:
            rel = relative_to_root(result.path, root)
            stem = stems[result.path]
            writer.add(result, rel.as_posix(), stem)
            if stem != rel.with_suffix(""):
                info.renamed[rel.as_posix()] = stem.as_posix()
            info.images.append((rel.as_posix(), result.width, result.height))
        if cancelled():
            info.cancelled = True
            break
    writer.close()
    info.seconds = summary.seconds
    write_info(set_dir, info)
    return info


def export_set(set_dir: Path, root: str | Path, out: str | Path, fmt: str,
               save_images: bool = False, progress=None) -> int:
    """Write a set in any format ``workbench detect --format`` writes (its own writer), to
    ``out``; ``save_images`` draws the boxes on copies as ``--save-images`` does. Returns
    the number of images written."""
    import numpy as np

    from workbench.commands.detect import DetectionWriter, output_stems
    from workbench.detect.detector import Detections
    from workbench.detect.pipeline import ImageResult
    from workbench.images import load_bgr

    info = read_info(set_dir)
    names = read_names(set_dir) or info.classes
    writer = DetectionWriter(Path(out), fmt, names, save_images)
    # detect's rule for names that clash once their suffix is dropped (a.jpg, a.png)
    stems = output_stems([Path(root) / rel for rel, _, _ in info.images], Path(root))
    for done, (rel, width, height) in enumerate(info.images, 1):
        found = read_predictions(set_dir, rel, width, height, len(names), info.renamed)
        boxes = found.boxes if found else []
        detections = Detections(
            np.array([b.xyxy() for b in boxes], np.float64).reshape(-1, 4),
            np.array(found.scores if found else [], np.float64),
            np.array([b.class_id for b in boxes], np.int64))
        path = Path(root) / rel
        image = load_bgr(path) if save_images else None
        writer.add(ImageResult(path, width, height, detections, image=image), rel, stems[path])
        if progress is not None:
            progress(done, len(info.images))
    writer.close()
    return len(info.images)
