"""Undoable edits of one image's boxes: QUndoCommands over an ImageRecord.

Each command changes ``record.boxes`` (or ``record.verified``) in place and then calls
``notify(selection)`` so views redraw and select what the edit touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from PySide6.QtGui import QUndoCommand

from workbench.labels.dataset import Box, ImageRecord

Notify = Callable[[list[int] | None], None]
NUDGE_ID = 1001


class _Edit(QUndoCommand):
    def __init__(self, record: ImageRecord, notify: Notify, text: str) -> None:
        super().__init__(text)
        self.record = record
        self._notify = notify


class AddBoxes(_Edit):
    """Append boxes (drawn, duplicated, copied or accepted proposals)."""

    def __init__(self, record: ImageRecord, boxes: Iterable[Box], notify: Notify,
                 text: str = "Add box") -> None:
        super().__init__(record, notify, text)
        self.boxes = [replace(b) for b in boxes]

    def redo(self) -> None:
        start = len(self.record.boxes)
        self.record.boxes.extend(replace(b) for b in self.boxes)
        self._notify(list(range(start, len(self.record.boxes))))

    def undo(self) -> None:
        del self.record.boxes[len(self.record.boxes) - len(self.boxes):]
        self._notify([])


class RemoveBoxes(_Edit):
    def __init__(self, record: ImageRecord, indices: Iterable[int], notify: Notify) -> None:
        super().__init__(record, notify, "Delete box")
        self.removed = [(i, replace(record.boxes[i])) for i in sorted(set(indices))]

    def redo(self) -> None:
        for i, _ in reversed(self.removed):
            del self.record.boxes[i]
        self._notify([])

    def undo(self) -> None:
        for i, box in self.removed:
            self.record.boxes.insert(i, replace(box))
        self._notify([i for i, _ in self.removed])


class SetGeometry(_Edit):
    """Move, resize or nudge: new corners for some boxes. Consecutive nudges merge."""

    def __init__(self, record: ImageRecord, changes: dict[int, tuple[float, float, float, float]],
                 notify: Notify, text: str = "Move box", nudge: bool = False) -> None:
        super().__init__(record, notify, text)
        self.old = {i: record.boxes[i].xyxy() for i in changes}
        self.new = dict(changes)
        self._nudge = nudge

    def id(self) -> int:
        return NUDGE_ID if self._nudge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetGeometry) or other.new.keys() != self.new.keys():
            return False
        self.new = dict(other.new)
        return True

    def _apply(self, corners: dict[int, tuple[float, float, float, float]]) -> None:
        for i, (x1, y1, x2, y2) in corners.items():
            box = self.record.boxes[i]
            box.x1, box.y1, box.x2, box.y2 = x1, y1, x2, y2
        self._notify(sorted(corners))

    def redo(self) -> None:
        self._apply(self.new)

    def undo(self) -> None:
        self._apply(self.old)


class _SetBoxField(_Edit):
    """One field (``field_name``) of some boxes set to ``value``; undo gives each box its own
    value back. A subclass sets ``value`` after this ``__init__`` (it may look at ``old``)."""

    field_name = ""
    value: object

    def __init__(self, record: ImageRecord, indices: Iterable[int], notify: Notify,
                 text: str) -> None:
        super().__init__(record, notify, text)
        self.old = {i: getattr(record.boxes[i], self.field_name) for i in indices}

    def redo(self) -> None:
        for i in self.old:
            setattr(self.record.boxes[i], self.field_name, self.value)
        self._notify(sorted(self.old))

    def undo(self) -> None:
        for i, value in self.old.items():
            setattr(self.record.boxes[i], self.field_name, value)
        self._notify(sorted(self.old))


class SetClass(_SetBoxField):
    field_name = "class_id"

    def __init__(self, record: ImageRecord, indices: Iterable[int], class_id: int,
                 notify: Notify) -> None:
        super().__init__(record, indices, notify, "Change class")
        self.value = class_id


class ToggleDifficult(_SetBoxField):
    """All selected become difficult, or all become not difficult when they already were."""

    field_name = "difficult"

    def __init__(self, record: ImageRecord, indices: Iterable[int], notify: Notify) -> None:
        super().__init__(record, indices, notify, "Toggle difficult")
        self.value = not all(self.old.values())


class SetVerified(_Edit):
    def __init__(self, record: ImageRecord, value: bool, notify: Notify) -> None:
        super().__init__(record, notify, "Verify" if value else "Unverify")
        self.old = record.verified
        self.value = value

    def redo(self) -> None:
        self.record.verified = self.value
        self._notify(None)

    def undo(self) -> None:
        self.record.verified = self.old
        self._notify(None)


class AddClasses(QUndoCommand):
    """Append class names to the data set's list (proposals of classes it lacked).

    ``changed()`` writes the class list file and tells the views. Undo drops the names
    again only while no box of any image uses them (drawn with them since, say): removing a
    used class would leave boxes without a name, so then the names stay.
    """

    def __init__(self, dataset, names: list[str], changed: Callable[[], None],
                 applied: bool = False) -> None:
        super().__init__("Add classes " + ", ".join(names))
        self.dataset = dataset
        self.names = list(names)
        self._changed = changed
        self._skip_redo = applied   # the caller appended them already (to save the file first)
        self.first = len(dataset.classes) - (len(names) if applied else 0)

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        for name in self.names:
            self.dataset.classes.append(name)
        self._changed()

    def undo(self) -> None:
        classes = self.dataset.classes
        if classes.names[self.first:] != self.names:
            return  # the list changed since (renamed, merged): leave it to the user
        if any(b.class_id >= self.first for r in self.dataset.images for b in r.boxes):
            return
        classes.drop_last(len(self.names))
        self._changed()
