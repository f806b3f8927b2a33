"""The dataset model: plain Python objects, no Qt, no file parsing.

Coordinates are float pixels ``(x1, y1, x2, y2)`` in the EXIF-oriented image (the image as the
user sees it and as the detector reads it). Conversion to normalized or integer forms happens
only at the file boundary, in ``workbench.formats``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workbench.errors import FormatError


class FolderLayout(Protocol):
    """What the model knows of a folder's layout: its shape, not its class.

    The class is ``workbench.data.layouts.Layout``, which sits above this package (it reads
    folders); naming it here would make the model import the code that fills it.
    """

    kind: str
    root: Path
    label_root: Path | None
    data_yaml: Any

    def label_path(self, image: str | Path, suffix: str) -> Path: ...

    def split_files(self) -> dict[str, Path]: ...

    def classes_path(self) -> Path: ...

    def describe(self) -> str: ...


@dataclass
class Box:
    """One labeled object: float pixel corners, class index into the dataset's ClassList."""

    x1: float
    y1: float
    x2: float
    y2: float
    class_id: int
    difficult: bool = False

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x1, self.y1, self.x2, self.y2)


@dataclass
class ImageRecord:
    """One image of a dataset and its labels.

    ``labeled`` is False while no label file exists ("not labeled yet"); an image that was
    labeled with nothing in it has ``labeled=True`` and no boxes (an empty label file).
    ``width``/``height`` are those of the EXIF-oriented image; 0 until read.
    ``label_error`` says why a label file that exists could not be read at all (not UTF-8,
    refused XML, a FIFO, the image's size unknown...): such a record is labeled but its
    boxes are unknown, never "labeled with nothing".
    """

    path: Path
    width: int = 0
    height: int = 0
    boxes: list[Box] = field(default_factory=list)
    labeled: bool = False
    verified: bool = False
    problems: list[str] = field(default_factory=list)
    label_error: str | None = None
    depth: int | None = None  # the <depth> its VOC file said; kept when the file is rewritten

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def stem(self) -> str:
        return self.path.stem


# the most classes a data set may have: far above any real one (LVIS has 1,203, ImageNet-21k
# 21,841), low enough that a YOLO class id of 999999999 cannot make us build 10^9 names
MAX_CLASSES = 100_000


class ClassList:
    """The user's class names, in the user's order.

    Never re-ordered or rewritten behind the user's back: indices in existing label files
    depend on it. Unknown names met while reading are collected in ``unknown`` and appended
    only when the caller asks (:meth:`adopt_unknown`).
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names: list[str] = []
        self._index: dict[str, int] = {}  # name -> position: lookups in constant time
        self.unknown: list[str] = []
        for name in names:
            self.append(name)

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __getitem__(self, index: int) -> str:
        return self._names[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassList) and self._names == other._names

    def __repr__(self) -> str:
        return f"ClassList({self._names!r})"

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def index(self, name: str) -> int | None:
        """The index of ``name``, or None when the list does not have it."""
        return self._index.get(name)

    def append(self, name: str) -> int:
        """Add ``name`` at the end (if new) and return its index."""
        name = name.strip()
        if not name:
            raise ValueError("a class name cannot be empty")
        found = self._index.get(name)
        if found is not None:
            return found
        if len(self._names) >= MAX_CLASSES:
            raise ValueError(f"more than {MAX_CLASSES:,} classes")
        self._names.append(name)
        self._index[name] = len(self._names) - 1
        return len(self._names) - 1

    def drop_last(self, count: int) -> list[str]:
        """Remove the last ``count`` names (undoing an append; no index of the rest moves)."""
        if count <= 0:
            return []
        dropped, self._names = self._names[-count:], self._names[:-count]
        for name in dropped:
            del self._index[name]
        return dropped

    def note_unknown(self, name: str) -> None:
        """Remember a class name met in a file but missing from the list."""
        if self.index(name) is None and name not in self.unknown:
            self.unknown.append(name)

    def adopt_unknown(self) -> list[str]:
        """Append every unknown name met so far (the user asked for it); return them."""
        adopted, self.unknown = self.unknown, []
        for name in adopted:
            self.append(name)
        return adopted

    def rename(self, index: int, new_name: str) -> None:
        new_name = new_name.strip()
        if not new_name:
            raise ValueError("a class name cannot be empty")
        if self.index(new_name) not in (None, index):
            raise ValueError(f"class {new_name!r} already exists; merge instead")
        del self._index[self._names[index]]
        self._names[index] = new_name
        self._index[new_name] = index


LABEL_FORMATS = ("yolo", "voc", "coco", "none")


@dataclass
class Dataset:
    """A folder of images and their labels, read by ``workbench.data.folder.open_dataset``.

    ``label_format`` is the format the labels were read from ("yolo", "voc", "coco" or
    "none" when nothing is labeled yet). ``problems`` lists every file that could not be
    read whole (each a FormatError naming the file and the line or element); the same
    messages appear in the affected ``ImageRecord.problems``. ``split`` maps "train",
    "valid", "test" (and a VOC devkit's "trainval") to records, read from the split files of
    the folder's ``layout`` (``workbench.data.layouts``: where images, labels and split live).
    ``damaged_labels`` are label files that did not load whole: saving over one keeps a
    backup copy first, so nothing the reader skipped is lost.
    """

    root: Path
    classes: ClassList = field(default_factory=ClassList)
    images: list[ImageRecord] = field(default_factory=list)
    problems: list[FormatError] = field(default_factory=list)
    label_format: str = "none"
    split: dict[str, list[ImageRecord]] = field(default_factory=dict)
    damaged_labels: set[Path] = field(default_factory=set)
    # the messages of the problems that belong to no image, so a file read twice (a list
    # file named by two splits) is one problem
    folder_problems: set[str] = field(default_factory=set, repr=False, compare=False)
    layout: FolderLayout | None = None  # None: labels beside the images (built in code)

    def __len__(self) -> int:
        return len(self.images)

    def find(self, path: str | Path) -> ImageRecord | None:
        """The record of the image at ``path`` (absolute or relative to the root)."""
        path = Path(path)
        if not path.is_absolute():
            path = self.root / path
        for record in self.images:
            if record.path == path:
                return record
        return None

    def relative_path(self, record: ImageRecord) -> Path:
        """The record's image path relative to the dataset root."""
        return record.path.relative_to(self.root)
