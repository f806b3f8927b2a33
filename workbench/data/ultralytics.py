"""The Ultralytics / Roboflow YOLO layout's ``data.yaml``: class names and where each split is.

    names: [cat, dog]          (or {0: cat, 1: dog}; ``nc`` optional)
    path: .                    (optional base folder; default the file's folder)
    train: images/train        (a folder, a list file of image paths, or a list of those)
    val: images/val
    test: images/test          (optional)

Labels are YOLO ``.txt`` files found the way Ultralytics finds them (``img2label_paths``):
the last ``/images/`` folder of the image path becomes ``/labels/``. Roboflow exports write
``train: ../train/images``; Ultralytics resolves a ``../`` entry that does not exist from the
base folder without the ``../``, and so does this module. The file is read with PyYAML's
safe loader, limited (:class:`_LimitedLoader`): a data.yaml is small and flat, so a file
over 4 MiB, nested deeper than 64 levels or using aliases that expand past a million
values (a "billion laughs" bomb) is refused before anything walks it. Rewriting it (class
names, split) keeps the other keys but not comments.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import FormatError
from workbench.formats import decode_text, read_bytes
from workbench.storage.atomic import atomic_write_text
from workbench.storage.files import MAX_DATA_YAML_BYTES

DATA_YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")
# data.yaml key -> the workbench's split name
SPLIT_KEYS = {"train": "train", "val": "valid", "test": "test"}


@dataclass
class DataYaml:
    """What a data.yaml says: class names and, per split, the folders or list files."""

    path: Path
    names: list[str]
    splits: dict[str, list[Path]] = field(default_factory=dict)  # split -> folders/list files
    raw: dict[str, Any] = field(default_factory=dict)


def looks_like_data_yaml(doc: Any) -> bool:
    return isinstance(doc, dict) and "names" in doc and any(k in doc for k in SPLIT_KEYS)


# a data.yaml is a handful of keys and one list of names: these are far beyond any real
# one and far below what makes loading or walking the document slow
MAX_YAML_DEPTH = 64
MAX_YAML_ALIASES = 1000
MAX_YAML_VALUES = 1_000_000  # with every alias expanded


class _YamlLimit(Exception):
    """A limit of :class:`_LimitedLoader` was hit; ``line`` is where (1-based)."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.line = line


def _limited_loader() -> type:
    """PyYAML's SafeLoader, counting while it composes the node graph (before any Python
    object exists): nesting depth, aliases, and the values the document holds once every
    alias is expanded, which is what any walk of the result (str(), dump) costs. The
    composer recurses per level, so the depth limit also keeps a 20,000-deep ``[[[...``
    from ending in a RecursionError."""
    import yaml  # lazy: PyYAML takes a while to import; only a data.yaml needs it

    class _LimitedLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0
            self._aliases = 0
            self._values: dict[int, int] = {}  # id(node) -> values with aliases expanded

        def _refuse(self, message: str) -> None:
            mark = self.peek_event().start_mark
            raise _YamlLimit(message, mark.line + 1 if mark is not None else None)

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self._aliases += 1
                if self._aliases > MAX_YAML_ALIASES:
                    self._refuse(f"more than {MAX_YAML_ALIASES:,} aliases")
                target = self.anchors.get(self.peek_event().anchor)
                if target is not None and id(target) not in self._values:
                    self._refuse("an alias refers to the collection that holds it")
            self._depth += 1
            if self._depth > MAX_YAML_DEPTH:
                self._refuse(f"nested more than {MAX_YAML_DEPTH} levels deep")
            try:
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            if id(node) not in self._values:  # an alias's node was counted already
                self._values[id(node)] = self._count(node)
            return node

        def _count(self, node: Any) -> int:
            if isinstance(node, yaml.SequenceNode):
                count = 1 + sum(self._values[id(child)] for child in node.value)
            elif isinstance(node, yaml.MappingNode):
                count = 1 + sum(self._values[id(k)] + self._values[id(v)]
                                for k, v in node.value)
            else:
                count = 1
            if count > MAX_YAML_VALUES:
                self._refuse(f"expands to more than {MAX_YAML_VALUES:,} values through "
                             "its aliases")
            return count

    return _LimitedLoader


def _load(path: Path) -> Any:
    """The YAML document of ``path`` (a regular file of at most 4 MiB), limited as above;
    every failure is a FormatError naming the file."""
    import yaml  # lazy: PyYAML takes a while to import; only a data.yaml needs it

    text = decode_text(read_bytes(path, MAX_DATA_YAML_BYTES), path)
    loader = _limited_loader()(text)
    try:
        return loader.get_single_data()
    except _YamlLimit as exc:
        raise FormatError(path, f"{exc}; not read", line=exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FormatError(path, f"malformed YAML: {problem}", line=line) from None
    except (ValueError, OverflowError, RecursionError) as exc:
        # a value PyYAML's constructors cannot make (an integer of 5,000 digits)
        raise FormatError(path, f"malformed YAML: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from None
    finally:
        loader.dispose()


def find_data_yaml(root: Path) -> Path | None:
    """The data.yaml of an Ultralytics dataset folder: a known name, else the only YAML at
    the root that has ``names`` and a split key."""
    for name in DATA_YAML_NAMES:
        # named so, it is meant as one: a FIFO, device or dangling link is returned too,
        # so reading it says why it was not read (O_NONBLOCK: a FIFO does not block)
        if os.path.lexists(root / name) and not (root / name).is_dir():
            return root / name
    found = []
    for candidate in sorted(root.glob("*.y*ml")):
        if candidate.suffix.lower() in (".yaml", ".yml") and candidate.is_file():
            try:
                if looks_like_data_yaml(_load(candidate)):
                    found.append(candidate)
            except FormatError:
                continue
    return found[0] if len(found) == 1 else None


def _names(doc: dict, path: Path) -> list[str]:
    names = doc.get("names")
    if isinstance(names, dict):
        try:
            ids = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise FormatError(path, "class ids in names must be integers", element="names") \
                from None
        if ids != list(range(len(ids))):
            raise FormatError(path, "class ids in names must run 0, 1, 2, ... without gaps",
                              element="names")
        result = [str(names[i] if i in names else names[str(i)]) for i in ids]
    elif isinstance(names, list):
        result = [str(n) for n in names]
    else:
        raise FormatError(path, "names must be a list or a mapping of id to name",
                          element="names")
    values = names.values() if isinstance(names, dict) else names
    if any(isinstance(n, (list, dict)) for n in values):
        raise FormatError(path, "a class name is a list or a mapping, not a name",
                          element="names")
    if any(not n.strip() for n in result):
        raise FormatError(path, "a class name is empty", element="names")
    nc = doc.get("nc")
    if nc is not None and nc != len(result):
        raise FormatError(path, f"nc is {nc} but names has {len(result)} classes",
                          element="nc")
    return [n.strip() for n in result]


def _base(doc: dict, path: Path) -> Path:
    base = doc.get("path")
    if isinstance(base, str) and base.strip():
        candidate = Path(base)
        candidate = candidate if candidate.is_absolute() else path.parent / candidate
        if candidate.is_dir():
            return candidate.resolve()
    return path.parent.resolve()


def _entry(base: Path, entry: str) -> Path:
    target = (base / entry).resolve()
    if not target.exists() and entry.startswith("../"):
        target = (base / entry[3:]).resolve()  # Roboflow's ../train/images, as Ultralytics
    return target


def read_data_yaml(path: str | Path) -> DataYaml:
    """Parse a data.yaml; FormatError names the file and the key at fault."""
    path = Path(path)
    doc = _load(path)
    if not isinstance(doc, dict):
        raise FormatError(path, "expected a mapping with names and train/val paths")
    names = _names(doc, path)
    base = _base(doc, path)
    splits: dict[str, list[Path]] = {}
    for key, split in SPLIT_KEYS.items():
        value = doc.get(key)
        if value is None or value == "":
            continue
        entries = value if isinstance(value, list) else [value]
        if not all(isinstance(e, str) for e in entries):
            raise FormatError(path, "expected a path or a list of paths", element=key)
        splits[split] = [_entry(base, e) for e in entries]
    return DataYaml(path=path, names=names, splits=splits, raw=doc)


def list_file_entries(path: Path) -> list[Path]:
    """The image paths of a split list file; relative ones are relative to its folder."""
    lines = decode_text(read_bytes(path), path).splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if line and not line.startswith("#"):
            if "\0" in line:  # no file name holds one; resolve() would raise ValueError
                raise FormatError(path, "holds a NUL byte, which no file name can; not a "
                                  "list of image paths", line=number)
            p = Path(line)
            found.append((p if p.is_absolute() else path.parent / p).resolve())
    return found


def image_to_label(image: str) -> str:
    """Ultralytics' rule: the label path (without ``.txt``) of an image path; the last
    ``/images/`` folder becomes ``/labels/`` (labels beside the image when there is none)."""
    sep_images, sep_labels = "/images/", "/labels/"
    image = image.replace("\\", "/")
    if sep_images in image:
        head, tail = image.rsplit(sep_images, 1)
        image = head + sep_labels + tail
    return image.rsplit(".", 1)[0]


def format_data_yaml(names: list[str], splits: dict[str, str],
                     keep: dict[str, Any] | None = None) -> str:
    """The text of a data.yaml: ``keep``'s other keys, then names, nc and the split paths."""
    import yaml  # lazy: PyYAML takes a while to import; only a data.yaml needs it

    doc: dict[str, Any] = {k: v for k, v in (keep or {}).items()
                           if k not in ("names", "nc", *SPLIT_KEYS)}
    for key, split in SPLIT_KEYS.items():
        if split in splits:
            doc[key] = splits[split]
    doc["nc"] = len(names)
    doc["names"] = dict(enumerate(names))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def write_data_yaml(path: str | Path, names: list[str], splits: dict[str, str],
                    keep: dict[str, Any] | None = None) -> None:
    atomic_write_text(path, format_data_yaml(names, splits, keep))


def rewrite_names(path: str | Path, names: list[str]) -> None:
    """Replace the class names of an existing data.yaml, keeping its other keys."""
    path = Path(path)
    doc = _load(path)
    doc = doc if isinstance(doc, dict) else {}
    doc["nc"] = len(names)
    doc["names"] = dict(enumerate(names))
    import yaml  # lazy: PyYAML takes a while to import; only a data.yaml needs it

    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def rewrite_splits(path: str | Path, splits: dict[str, str],
                   keep: Collection[str] = ()) -> None:
    """Point the train/val/test keys of an existing data.yaml at new places; the keys of
    the splits in ``keep`` stay as they are, the others not in ``splits`` go."""
    import yaml  # lazy: PyYAML takes a while to import; only a data.yaml needs it

    path = Path(path)
    doc = _load(path)
    doc = doc if isinstance(doc, dict) else {}
    for key, split in SPLIT_KEYS.items():
        if split in keep:
            continue
        if split in splits:
            doc[key] = splits[split]
        else:
            doc.pop(key, None)
    atomic_write_text(path, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
