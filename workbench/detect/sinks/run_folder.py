"""The ``--out`` folder of a detect run: checked before the model loads, built in a private
folder beside OUT and published whole when the run completes.

:class:`RunFolder` is the last sink of a run: its ``close`` writes the run marker
(:data:`RUN_MARKER`, what made the folder) and publishes the files the sinks before it wrote
into :meth:`RunFolder.open`'s folder; its ``abort`` drops them. A run stopped on the way
(``summary.cancelled``: Ctrl+C on a Ray run) is published with ``"complete": false``.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from workbench.data.layouts import CLASS_FILES, LABEL_SUFFIXES, Layout, detect_layout
from workbench.data.ultralytics import image_to_label
from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.names import with_suffix
from workbench.errors import WorkbenchError
from workbench.storage.atomic import atomic_write_text
from workbench.storage.output_guard import StagedFolder, file_id, folder_state

RUN_MARKER = ".workbench-detect.json"  # in every --out folder detect made: what made it


class RunFolder:
    """How a run reaches ``--out``: built in a private folder beside OUT and published whole
    by one rename (OUT new, empty, or an earlier run of the same source, which it replaces),
    or written into OUT as it goes (``--exist-ok`` on another non-empty folder).

    ``plan`` only checks (nothing is written); ``open`` returns the folder to write into;
    ``finish`` writes the run marker and publishes; ``discard`` drops a failed run.
    """

    def __init__(self, out: Path, state: tuple[str, bytes | None], marker: dict,
                 earlier: dict | None) -> None:
        self.out, self.state, self.marker, self.earlier = out, state, marker, earlier
        self.adding = state[0] in ("other", "link") or (state[0] == "marked"
                                                          and earlier is not None
                                                          and not _same_run(earlier, marker))
        self.replaces = state[0] == "marked" and not self.adding
        self.staged: StagedFolder | None = None

    @classmethod
    def plan(cls, out: Path, src: Path, paths: list[Path], stems: dict[Path, Path], fmt: str,
             *, split: str | None, model: Path, exist_ok: bool, as_video: bool) -> RunFolder:
        """The checks of --out: no label file of SRC written over, no silent mix of runs."""
        out = Path(out)
        state = folder_state(out, RUN_MARKER)
        if state[0] != "absent" and not as_video:  # a new folder holds no label file
            _refuse_label_overwrite(out, src, paths, stems, fmt)
        marker = {"made_by": "workbench detect", "source": str(src.resolve()),
                  "split": split, "format": fmt, "model": str(model),
                  "run": uuid.uuid4().hex}
        earlier = _read_marker(state[1]) if state[0] == "marked" else None
        if state[0] == "marked" and earlier is None:
            state = ("other", None)  # a marker we cannot read is not ours to replace
        plan = cls(out, state, marker, earlier)
        if plan.adding and not exist_ok:
            what = (f"holds the output of an earlier detect of {earlier['source']}"
                    + (f" --split {earlier['split']}" if earlier.get("split") else "")
                    + (" and others" if earlier.get("mixed") else "")
                    if earlier is not None else "is a link to a folder" if state[0] == "link"
                    else f"is not empty and is not an earlier `workbench detect` run of {src}")
            raise WorkbenchError(f"{out}: {what}; choose another folder, or add --exist-ok to "
                                 "add this run's files to it")
        return plan

    def open(self) -> Path:
        if self.adding:
            return self.out
        staged = StagedFolder(self.out, RUN_MARKER, self.state)
        self.staged = staged
        return staged.path

    def finish(self, complete: bool = True) -> None:
        """Write the marker and put the run in place; WorkbenchError when another run
        created OUT meanwhile (this run's files are dropped then)."""
        if self.staged is not None:
            self.marker["complete"] = complete
            atomic_write_text(self.staged.path / RUN_MARKER,
                              json.dumps(self.marker, indent=1) + "\n")
            self.staged.publish()
        elif self.earlier is not None:  # added to an earlier run: never replaced as one again
            added = self.earlier.setdefault("added", [])
            added.append({k: self.marker[k] for k in ("source", "split", "format", "run")})
            self.earlier["mixed"] = True
            atomic_write_text(self.out / RUN_MARKER, json.dumps(self.earlier, indent=1) + "\n")

    def discard(self, error: BaseException | None = None) -> None:
        """Drop a failed run's private folder; an OSError raised while writing it names the
        file as it would have been in OUT (the private folder's name means nothing to the
        user and is gone now)."""
        if self.staged is None:
            return
        if isinstance(error, OSError):
            for attr in ("filename", "filename2"):
                name = getattr(error, attr)
                if isinstance(name, str) and Path(name).is_relative_to(self.staged.path):
                    setattr(error, attr, str(self.out / Path(name).relative_to(
                        self.staged.path)))
        self.staged.discard()

    # --- the sink: last of a run's sinks, after the writers closed
    def write(self, result: ImageResult) -> None:
        pass

    def close(self, summary: RunSummary) -> None:
        """Publish: a complete run, or (``summary.cancelled``) what the finished images gave;
        a refusal of a stopped run (another run created OUT meanwhile) is one more line,
        not a second traceback over the first error."""
        if not summary.cancelled:
            self.finish()
            return
        try:
            self.finish(complete=False)
        except (WorkbenchError, OSError) as exc:
            self.discard()
            print(f"workbench detect: {exc}", file=sys.stderr)

    def abort(self, error: BaseException) -> None:
        self.discard(error)


def _read_marker(data: bytes | None) -> dict | None:
    """A run marker's contents, None when it is not one detect wrote."""
    try:
        marker = json.loads(data or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(marker, dict) or marker.get("made_by") != "workbench detect":
        return None
    return marker


def _same_run(earlier: dict, marker: dict) -> bool:
    """OUT holds only an earlier run of this source (and split): a rerun replaces it."""
    return (not earlier.get("mixed") and earlier.get("source") == marker["source"]
            and earlier.get("split") == marker["split"])


def _planned_files(out: Path, stems: dict[Path, Path], fmt: str) -> list[Path]:
    """The label-like files a run writes under ``out`` (not its annotated images)."""
    suffix = {"yolo": ".txt", "voc": ".xml"}.get(fmt)
    files = [with_suffix(out / stem, suffix) for stem in stems.values()] if suffix else []
    fixed = {"yolo": ["classes.txt"], "coco": ["detections.json", "images.json"],
             "csv": ["detections.csv"]}.get(fmt, [])
    return files + [out / name for name in fixed]


def _source_label_files(src: Path, paths: list[Path]) -> list[Path]:
    """Where SRC's labels are (or would be): each image's label files in SRC's layout, its
    class lists, split lists and COCO files (a list file or an image: labels beside). SRC
    may be the image folder of a larger data set (``ds/images/train``, ``VOC/JPEGImages``):
    the labels Ultralytics' and the VOC devkit's rules give its images count too."""
    if src.is_dir():
        layout = detect_layout(src)
        images = layout.images()
        folders = {layout.root, *([layout.label_root] if layout.label_root else [])}
        extra = [*layout.split_files().values(), *layout.root.glob("*.json")]
    else:
        layout = Layout("beside", src.resolve().parent)
        images = [p.resolve() for p in paths]
        folders, extra = {p.parent for p in images}, []
    extra += [folder / name for folder in folders for name in CLASS_FILES]
    labels = [layout.label_path(p, s) for p in images for s in LABEL_SUFFIXES]
    for image in images:  # the rules of the data set SRC may be a part of; cheap, no scan
        posix = image.as_posix()
        if "/images/" in posix:
            labels.append(Path(image_to_label(posix) + ".txt"))
        if "/JPEGImages/" in posix:
            head, tail = posix.rsplit("/JPEGImages/", 1)
            labels.append(with_suffix(Path(head, "Annotations", tail).with_suffix(""), ".xml"))
    return labels + extra


def _refuse_label_overwrite(out: Path, src: Path, paths: list[Path], stems: dict[Path, Path],
                            fmt: str) -> None:
    """WorkbenchError when a file this run would write under ``out`` is (or would become)
    a label file of SRC: the same folder and name, or the same file through a link."""
    labels = _source_label_files(src, paths)
    folder_ids: dict[Path, tuple[int, int] | None] = {}

    def slot(path: Path):  # (folder's id, name): also matches a label not written yet
        if path.parent not in folder_ids:
            folder_ids[path.parent] = file_id(path.parent)
        return folder_ids[path.parent], path.name

    slots = {slot(p) for p in labels}
    existing = {file_id(p) for p in labels} - {None}
    for planned in _planned_files(out, stems, fmt):
        where = slot(planned)
        if (where[0] is not None and where in slots) or file_id(planned) in existing:
            raise WorkbenchError(f"{planned}: is a label file of the source {src}; detect "
                                 f"--out {out} would write predictions over it. Write them to "
                                 "a prediction set (the Detect dock) or another folder")
