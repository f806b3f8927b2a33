"""Dataset layouts: where a folder keeps its images, labels, class list and split.

This module is the one place that decides a folder's layout (:func:`detect_layout`). Every
verb and the GUI open folders through ``workbench.data.folder.open_dataset``, which asks it, and
every write (labels, class list, split) goes back through the same :class:`Layout`, so files
land where they came from.

    beside        labels beside each image (labelImg's default): x.jpg + x.txt / x.xml;
                  classes.txt at the root; split in train.txt / valid.txt / test.txt
    voc-devkit    JPEGImages/ + Annotations/ (+ ImageSets/Main/{train,val,trainval,test}.txt)
    label-folder  images in one folder, labels with the same relative path in another:
                  keras-yolo3 / TF object detection (images/ + annotations/), labelImg's
                  "Change Save Dir", or any folder given with ``--labels DIR``
    ultralytics   data.yaml (names, train/val/test) with images/<split>/ + labels/<split>/
                  (Roboflow: <split>/images/ + <split>/labels/); also without a data.yaml

A folder whose label files sit where none of these rules looks is not "nothing labeled":
:func:`unplaced_labels` says what was found and what to pass.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from workbench.data.image_files import is_image, list_images
from workbench.data.ultralytics import (
    DataYaml,
    find_data_yaml,
    image_to_label,
    list_file_entries,
    read_data_yaml,
)
from workbench.errors import FormatError

LAYOUTS = ("beside", "voc-devkit", "label-folder", "ultralytics")
CLASS_FILES = ("classes.txt", "obj.names")  # labelImg's name first, then darknet's
LABEL_SUFFIXES = (".txt", ".xml")
# .txt files that are lists or notes, never label files
NOT_LABELS = frozenset({"classes.txt", "obj.names", "train.txt", "valid.txt", "val.txt",
                        "test.txt", "trainval.txt", "readme.txt", "license.txt"})
# the split files of the folder layouts, at the root: split -> file name
ROOT_SPLIT_FILES = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
# VOC devkit: ImageSets/Main/NAME.txt lists image stems; split -> file name
DEVKIT_SPLIT_FILES = {"train": "train.txt", "valid": "val.txt", "trainval": "trainval.txt",
                      "test": "test.txt"}
LABEL_FOLDER_NAMES = frozenset({"labels", "label", "annotations", "annotation", "xml", "xmls"})
# what `workbench detect --out` leaves in its folder (commands/detect.py RUN_MARKER): its .txt
# and .xml files are predictions named like the images, never anybody's labels
DETECT_OUTPUT_MARKER = ".workbench-detect.json"
_SCAN_LIMIT = 200_000  # directory entries looked at when searching for stray label files


COCO_FILES = ("annotations.json", "_annotations.coco.json", "instances.json")


def find_coco_file(root: str | Path) -> Path | None:
    """The COCO annotation file at the root of a dataset folder, if there is one."""
    root = Path(root)
    for name in COCO_FILES:
        if (root / name).is_file():
            return root / name
    return None


@dataclass
class Layout:
    """Where a dataset's files are. Paths are absolute; ``root`` is the dataset folder."""

    kind: str
    root: Path
    image_root: Path | None = None  # label-folder / voc-devkit: the images are under here
    label_root: Path | None = None  # ... and their labels mirror them under here
    data_yaml: DataYaml | None = None  # ultralytics with a data.yaml
    notes: list[FormatError] = field(default_factory=list)  # found while detecting
    # label-folder: every label directly in label_root by the image's name (labelImg's save
    # dir), even when the images lie in sub-folders; otherwise the sub-folders are mirrored
    flat: bool = False
    _images: list[Path] | None = None

    # ------------------------------------------------------------------ images and labels

    def images(self) -> list[Path]:
        """Every image of the dataset, sorted."""
        if self._images is None:
            self._images = _list_layout_images(self)
        return self._images

    def label_stem(self, image: str | Path) -> str:
        """The label file of an image, without its suffix (plain strings: this runs per
        image of large folders)."""
        image = str(image)
        if self.kind == "ultralytics":
            return image_to_label(image)
        if self.kind in ("label-folder", "voc-devkit") and self.image_root and self.label_root:
            relative = (os.path.basename(image) if self.flat
                        else os.path.relpath(image, self.image_root))
            return os.path.splitext(os.path.join(self.label_root, relative))[0]
        return os.path.splitext(image)[0]

    def label_path(self, image: str | Path, suffix: str) -> Path:
        """Where the label file of ``image`` with ``suffix`` (".txt", ".xml") lives."""
        return Path(self.label_stem(image) + suffix)

    # ------------------------------------------------------------------ class list

    def classes_path(self) -> Path:
        """The class list file: an existing classes.txt / obj.names at the root (or in the
        label folder, where labelImg's save dir puts it), else root/classes.txt."""
        folders = [self.root] + ([self.label_root] if self.label_root else [])
        for folder in folders:
            for name in CLASS_FILES:
                if (folder / name).is_file():
                    return folder / name
        return self.root / CLASS_FILES[0]

    # ------------------------------------------------------------------ split

    def split_files(self) -> dict[str, Path]:
        """Split name -> list file, for the layouts that keep the split in list files."""
        if self.kind == "voc-devkit":
            main = self.root / "ImageSets" / "Main"
            return {part: main / name for part, name in DEVKIT_SPLIT_FILES.items()}
        if self.kind == "ultralytics":
            return {}
        return {part: self.root / name for part, name in ROOT_SPLIT_FILES.items()}

    def describe(self) -> str:
        """One line for ``stats`` and the GUI: the layout and where its labels are."""
        if self.kind == "voc-devkit":
            return (f"voc-devkit (labels in {self._rel(self.label_root)}/, "
                    "split in ImageSets/Main/)")
        if self.kind == "label-folder":
            return (f"label-folder (images in {self._rel(self.image_root)}/, labels in "
                    f"{self._rel(self.label_root)}/)")
        if self.kind == "ultralytics":
            where = self.data_yaml.path.name if self.data_yaml else "images/ + labels/"
            return f"ultralytics ({where})"
        return "beside (labels beside the images)"

    def _rel(self, path: Path | None) -> str:
        if path is None:
            return "?"
        try:
            return path.relative_to(self.root).as_posix() or "."
        except ValueError:
            return str(path)


# ---------------------------------------------------------------------- detection

def resolve_labels_arg(root: Path, labels: str | Path) -> Path:
    """``--labels DIR``: relative to the dataset folder when it is there, else to the
    current folder."""
    labels = Path(labels)
    if labels.is_absolute():
        return labels.resolve()
    inside = root / labels
    return inside.resolve() if inside.is_dir() else labels.resolve()


def detect_layout(root: str | Path, labels: str | Path | None = None) -> Layout:
    """Decide the layout of the dataset folder ``root`` (``labels``: ``--labels DIR``).

    Order: an explicit label folder; a data.yaml (Ultralytics/Roboflow); JPEGImages/ and
    Annotations/ (VOC devkit); labels beside the images; images/ with labels/ by
    Ultralytics' rule; a folder holding label files named like the images (label-folder);
    else beside (nothing labeled yet).
    """
    root = Path(root).resolve()
    if labels is not None:
        label_root = resolve_labels_arg(root, labels)
        if not label_root.is_dir():
            raise FormatError(labels, "label folder not found")
        if label_root == root:
            return Layout("beside", root)
        return _label_folder(root, label_root)
    notes: list[FormatError] = []
    yaml_path = find_data_yaml(root)
    if yaml_path is not None:
        try:
            return Layout("ultralytics", root, data_yaml=read_data_yaml(yaml_path))
        except FormatError as err:
            notes.append(err)  # fall back to looking at the files themselves
    if _is_devkit(root):
        return Layout("voc-devkit", root, image_root=root / "JPEGImages",
                      label_root=root / "Annotations", notes=notes)
    images = _list(root, notes)
    beside = Layout("beside", root, notes=notes, _images=images)
    if not images or _count_labels(beside, images) or _has_coco(root):
        return beside
    ultra = Layout("ultralytics", root, notes=notes, _images=images)
    if any("/images/" in p.as_posix() for p in images) and _count_labels(ultra, images):
        return ultra
    if _nested_devkits(root):
        # VOCdevkit/ holding VOC2007/, VOC2012/: each is a data set of its own (with
        # segmentation masks beside its JPEGImages); unplaced_labels says which to open
        return beside
    found = _best_label_folder(root, images, exclude=set())
    if found is not None:
        layout = _label_folder(root, found[0], images)
        layout.notes = notes  # the listing's notes, made above
        return layout
    return beside


def _is_devkit(folder: Path) -> bool:
    return (folder / "JPEGImages").is_dir() and (folder / "Annotations").is_dir()


def _nested_devkits(root: Path) -> list[Path]:
    found = []
    for child in sorted(_subfolders(root)):
        if _is_devkit(child):
            found.append(child)
        else:
            found += [g for g in sorted(_subfolders(child)) if _is_devkit(g)]
    return found


def _has_coco(root: Path) -> bool:
    return find_coco_file(root) is not None


def _label_folder(root: Path, label_root: Path, images: list[Path] | None = None) -> Layout:
    notes: list[FormatError] = []
    if images is None:
        images = [p for p in _list(root, notes) if label_root not in p.parents]
    # the image folder is where the images named like the labels are (not, say, a
    # segmentation-masks folder beside it)
    try:
        stems = {os.path.splitext(n)[0] for n in os.listdir(label_root)}
    except OSError:
        stems = set()
    parents = ({os.path.dirname(str(p)) for p in images if p.stem in stems}
               or {os.path.dirname(str(p)) for p in images})
    image_root = Path(os.path.commonpath(sorted(parents))) if parents else root
    # images in several folders, labels in one without sub-folders: labelImg's save dir
    flat = len(parents) > 1 and not _subfolders(label_root)
    return Layout("label-folder", root, image_root=image_root, label_root=label_root,
                  notes=notes, flat=flat, _images=images)


def _list(root: Path, notes: list[FormatError]) -> list[Path]:
    """list_images, with every file it skipped (links out of the folder, FIFOs, bad names,
    unreadable folders) noted for the data set's problem list."""
    skipped: list[tuple[Path, str]] = []
    images = list_images(root, skipped)
    notes.extend(FormatError(path, reason) for path, reason in skipped)
    return images


def _list_layout_images(layout: Layout) -> list[Path]:
    if layout.kind == "voc-devkit" and layout.image_root is not None:
        return _list(layout.image_root, layout.notes)
    if layout.kind == "ultralytics" and layout.data_yaml is not None:
        found: set[Path] = set()
        for sources in layout.data_yaml.splits.values():
            for source in sources:
                found.update(_split_source_images(source, layout.notes))
        inside = [p for p in found if layout.root in p.parents]
        if len(inside) < len(found):  # paths relative to the root are the records' keys
            layout.notes.append(FormatError(
                layout.data_yaml.path, f"{len(found) - len(inside)} image(s) named by it lie "
                f"outside the dataset folder {layout.root}; left out"))
        if inside:
            return sorted(inside, key=lambda p: p.as_posix())
    images = _list(layout.root, layout.notes)
    if layout.label_root is not None:
        images = [p for p in images if layout.label_root not in p.parents]
    return images


def _split_source_images(source: Path, notes: list[FormatError]) -> list[Path]:
    """The images of one data.yaml split entry: a folder (recursive) or a list file."""
    if source.is_dir():
        return list_images(source)
    if source.is_file():
        try:
            return [p for p in list_file_entries(source) if is_image(p)]
        except FormatError as err:
            notes.append(err)
            return []
    notes.append(FormatError(source, "split folder or list file named in data.yaml not found"))
    return []


def _label_files_in(folders: set[str]) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        found.update(os.path.join(folder, n) for n in names if n[-4:] in LABEL_SUFFIXES)
    return found


def _count_labels(layout: Layout, images: list[Path]) -> int:
    """How many of ``images`` have a label file where ``layout`` looks (a few found among
    the first images is enough to decide: opening a large folder must not pay twice)."""
    for chunk in (images[:64], images):
        stems = [layout.label_stem(p) for p in chunk]
        present = _label_files_in({os.path.dirname(s) for s in stems})
        found = sum(s + ".txt" in present or s + ".xml" in present for s in stems)
        if found:
            return found
    return 0


@dataclass
class _Folder:
    path: Path
    matching: int = 0  # label files named like an image of the dataset
    kinds: Counter = field(default_factory=Counter)  # "VOC"/"YOLO" -> files


def _walk(top: Path, max_depth: int, budget: list[int], skip: set[Path] | None = None,
          prune=None):
    """(folder, its visible files) for ``top`` and the folders below it, ``max_depth`` down;
    hidden entries are skipped, and so is a folder in ``skip`` or one for which
    ``prune(entries)`` is true, with its subfolders. ``budget[0]`` counts down the entries
    read, so a huge tree stops the walk instead of the program."""
    stack = [(top, 0)]
    while stack and budget[0] > 0:
        folder, depth = stack.pop()
        if skip and folder in skip:
            continue
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        budget[0] -= len(entries)
        if prune is not None and prune(entries):
            continue
        files = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < max_depth:
                    stack.append((Path(entry.path), depth + 1))
            else:
                files.append(entry)
        yield folder, files


def _is_detect_output(entries) -> bool:
    """A detect run (and its subfolders) holds predictions, not labels."""
    return any(entry.name == DETECT_OUTPUT_MARKER for entry in entries)


def _scan_label_folders(top: Path, image_stems: set[str], skip: set[Path],
                        max_depth: int, budget: list[int], theirs: frozenset[str] = frozenset()
                        ) -> list[_Folder]:
    """Folders under ``top`` (hidden ones skipped) holding .xml/.txt files, with how many
    are named like one of the images. Label files named like one of ``theirs`` (the images
    of another data set under ``top``) are that data set's, not counted."""
    found = []
    for folder, files in _walk(top, max_depth, budget, skip, _is_detect_output):
        info = _Folder(folder)
        for entry in files:
            stem, suffix = os.path.splitext(entry.name)
            if (suffix.lower() not in LABEL_SUFFIXES or entry.name.lower() in NOT_LABELS
                    or stem in theirs):
                continue
            info.kinds["VOC" if suffix.lower() == ".xml" else "YOLO"] += 1
            info.matching += stem in image_stems
        if info.kinds:
            found.append(info)
    return found


def _best_label_folder(root: Path, images: list[Path], exclude: set[Path]
                       ) -> tuple[Path, int] | None:
    """The folder under ``root`` (not holding the images) with the most label files named
    like the images, with that count."""
    image_dirs = {p.parent for p in images}
    stems = {p.stem for p in images}
    folders = _scan_label_folders(root, stems, exclude, 3, [_SCAN_LIMIT])
    candidates = [f for f in folders if f.path not in image_dirs and f.matching]
    if not candidates:
        return None
    best = max(candidates, key=lambda f: (f.matching, -len(f.path.parts)))
    return best.path, best.matching


def unplaced_labels(layout: Layout, images: list[Path]) -> str | None:
    """When no image of the dataset has a label: the label files that exist elsewhere (in
    the dataset folder or beside it), as one line that says what to do; None if none."""
    if not images:
        return None
    stems = {p.stem for p in images}
    image_dirs = {p.parent for p in images}
    budget = [_SCAN_LIMIT]
    # inside the dataset folder, label files named like no image are worth a word only
    # when they are surely labels (VOC XML, a folder called labels/annotations); beside
    # it, only files named like the images count (a sibling docs/ folder is not news)
    folders = [f for f in _scan_label_folders(layout.root, stems, set(), 3, budget)
               if f.path not in image_dirs and (f.matching or f.kinds["VOC"]
                                                or f.path.name.lower() in LABEL_FOLDER_NAMES)]
    parent = layout.root.parent
    if parent != layout.root:
        for sibling in sorted(p for p in _subfolders(parent) if p != layout.root):
            # a sibling data set's labels belong to its own images (named like ours, as
            # demo-data and cameras name them): not ours to point at
            folders += [f for f in _scan_label_folders(sibling, stems, set(), 1, budget,
                                                       _image_stems(sibling, 2, budget))
                        if f.matching or _is_devkit(f.path.parent)]
    if not folders:
        return None
    best = max(folders, key=lambda f: (f.matching, sum(f.kinds.values())))
    kind, count = best.kinds.most_common(1)[0]
    where = os.path.relpath(best.path, layout.root)
    if best.path.name == "Annotations" and _is_devkit(best.path.parent):
        devkit = best.path.parent
        name = (f"{devkit.relative_to(layout.root).as_posix()}/"
                if layout.root in devkit.parents else str(devkit))
        return (f"{count} VOC files in {where}/: {name} is a VOC devkit; open that folder "
                "to read its labels and split")
    if best.matching == 0:
        return (f"{count} {kind} files in {where}/, but none is named like an image of "
                "the dataset; no image is labeled")
    inside = layout.root in best.path.parents
    hint = (f"pass --labels {where}" if inside else
            f"open the parent folder {parent} or pass --labels {where}")
    return (f"{best.matching} {kind} files in {where}/ not beside the images; {hint}")


def _image_stems(top: Path, max_depth: int, budget: list[int]) -> frozenset[str]:
    """The names (without suffix) of the images under ``top``, ``max_depth`` folders down."""
    return frozenset(os.path.splitext(entry.name)[0]
                     for _, files in _walk(top, max_depth, budget)
                     for entry in files if is_image(entry.name))


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(folder)
                if e.is_dir(follow_symlinks=False) and not e.name.startswith(".")]
    except OSError:
        return []
