"""The labeling session: one dataset, the current image, per-image undo stacks, saving.

No widgets here: the main window and the canvas call these methods and listen to the
signals. Label files are read and written only through ``workbench.data.folder``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoGroup, QUndoStack

from ui import edits
from ui.geometry import Rect, clip, moved
from workbench.data import folder
from workbench.labels.dataset import Box, Dataset, ImageRecord

MIN_BOX = 2.0  # pixels; smaller drags are clicks, not boxes
SAME_OBJECT_IOU = 0.5  # a proposal this close to a label of its class is that label again
DUPLICATE_OFFSET = 10.0


@dataclass
class Proposal:
    """A box proposed by the model, shown dashed until accepted or rejected."""

    box: Box      # class_id is the dataset's index, or -1 when the list lacks ``name``
    score: float
    name: str


def without_duplicates(proposals: list[Proposal], boxes: list[Box], class_names: list[str],
                       iou: float = SAME_OBJECT_IOU) -> tuple[list[Proposal], int]:
    """Drop proposals that match an existing label of the same class name (IoU >= ``iou``):
    proposing on a labeled image must not duplicate its boxes. Returns (kept, dropped)."""
    from workbench.geometry.boxes import iou_matrix

    if not proposals or not boxes:
        return list(proposals), 0
    names = [class_names[b.class_id] if 0 <= b.class_id < len(class_names) else None
             for b in boxes]
    overlap = iou_matrix([p.box.xyxy() for p in proposals], [b.xyxy() for b in boxes])
    kept = [p for i, p in enumerate(proposals)
            if not any(overlap[i, j] >= iou and names[j] == p.name for j in range(len(boxes)))]
    return kept, len(proposals) - len(kept)


def default_formats(dataset: Dataset) -> tuple[str, ...]:
    """Save in the format the labels came in; YOLO for a fresh folder."""
    return ("voc",) if dataset.label_format == "voc" else ("yolo",)


class LabelSession(QObject):
    dataset_changed = Signal()
    current_changed = Signal(int)          # row of the new current image
    boxes_changed = Signal(object)         # the current image's boxes changed; list[int] to select
    record_changed = Signal(int)           # a row's status (labeled, verified, unsaved) changed
    dirty_changed = Signal(bool)           # the current image has unsaved edits or not
    classes_changed = Signal()
    proposals_changed = Signal()
    current_class_changed = Signal(int)
    class_file_failed = Signal(str)        # the class list file could not follow an undo/redo

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dataset: Dataset | None = None
        self.index = -1
        self.previous_index: int | None = None
        self.formats: tuple[str, ...] = ("yolo",)
        self.autosave = True
        self.undo_group = QUndoGroup(self)
        self._stacks: dict[int, QUndoStack] = {}
        self.proposals: dict[int, list[Proposal]] = {}
        self._saved: dict[int, tuple[list[Box], bool]] = {}  # boxes, verified at the last save
        self._current_class = 0
        self.skipped_duplicates = 0  # proposals the last accept skipped as existing labels

    # --- dataset and navigation -------------------------------------------------------
    def set_dataset(self, dataset: Dataset, formats: tuple[str, ...] | None = None) -> None:
        for stack in self._stacks.values():
            self.undo_group.removeStack(stack)
            stack.deleteLater()
        self._stacks.clear()
        self._saved.clear()
        self.proposals.clear()
        self.dataset = dataset
        self.formats = formats or default_formats(dataset)
        self.index = -1
        self.previous_index = None
        self._current_class = 0
        self.dataset_changed.emit()

    def __len__(self) -> int:
        return len(self.dataset.images) if self.dataset else 0

    @property
    def record(self) -> ImageRecord | None:
        if self.dataset is None or not 0 <= self.index < len(self.dataset.images):
            return None
        return self.dataset.images[self.index]

    def go_to(self, index: int) -> None:
        """Make ``index`` current. Unsaved edits must be dealt with first (see the window)."""
        if self.dataset is None or not 0 <= index < len(self.dataset.images):
            return
        if index != self.index and self.index >= 0:
            self.previous_index = self.index
        self.index = index
        self.undo_group.setActiveStack(self.stack(index))
        self.current_changed.emit(index)
        self.dirty_changed.emit(self.is_dirty())

    # --- undo stacks and saving -------------------------------------------------------
    def stack(self, index: int | None = None) -> QUndoStack:
        index = self.index if index is None else index
        stack = self._stacks.get(index)
        if stack is None:
            stack = QUndoStack(self)
            self.undo_group.addStack(stack)
            stack.cleanChanged.connect(lambda clean, row=index: self._clean_changed(row, clean))
            self._stacks[index] = stack
        return stack

    def _clean_changed(self, row: int, clean: bool) -> None:
        self.record_changed.emit(row)
        if row == self.index:
            self.dirty_changed.emit(not clean)

    def is_dirty(self, index: int | None = None) -> bool:
        index = self.index if index is None else index
        stack = self._stacks.get(index)
        return stack is not None and not stack.isClean()

    def dirty_indices(self) -> list[int]:
        return sorted(i for i, s in self._stacks.items() if not s.isClean())

    def save(self, index: int | None = None) -> None:
        """Write the image's labels in ``self.formats`` (atomic); raises on failure."""
        index = self.index if index is None else index
        if self.dataset is None or index < 0:
            return
        record = self.dataset.images[index]
        folder.save_labels(self.dataset, record, formats=self.formats)
        self._saved[index] = ([replace(b) for b in record.boxes], record.verified)
        record.labeled = True
        self.stack(index).setClean()
        self.record_changed.emit(index)

    def save_all(self) -> None:
        for index in self.dirty_indices():
            self.save(index)

    def discard(self, index: int | None = None) -> None:
        """Undo back to what is on disk."""
        index = self.index if index is None else index
        stack = self.stack(index)
        if stack.cleanIndex() >= 0:
            stack.setIndex(stack.cleanIndex())
            return
        saved = self._saved.get(index)
        if saved is None or self.dataset is None:
            stack.setIndex(0)
            return
        # saved, undone past the save, edited again: no index of the stack is what is on
        # disk any more, so put back what the last save wrote
        record = self.dataset.images[index]
        record.boxes = [replace(b) for b in saved[0]]
        record.verified = saved[1]
        stack.clear()  # clean: memory is the file again
        self._notify(index)([])

    def clear_history(self) -> None:
        """Forget every undo stack (after class edits renumbered every file)."""
        for stack in self._stacks.values():
            stack.clear()
        self._saved.clear()  # snapshots carry old class indices

    # --- edits of the current image ---------------------------------------------------
    @property
    def current_class(self) -> int:
        return self._current_class

    def set_current_class(self, class_id: int) -> None:
        self._current_class = class_id
        self.current_class_changed.emit(class_id)

    def push(self, command: QUndoCommand) -> None:
        self.stack().push(command)

    def _notify(self, row: int):
        def notify(selection: list[int] | None) -> None:
            self.record_changed.emit(row)
            if row == self.index:
                self.boxes_changed.emit(selection)
        return notify

    def image_size(self) -> tuple[float, float]:
        record = self.record
        return (float(record.width), float(record.height)) if record else (0.0, 0.0)

    def add_box(self, rect: Rect, class_id: int | None = None) -> bool:
        """Add a box (clipped to the image); False when it is too small to be one."""
        record = self.record
        if record is None or record.width <= 0:
            return False
        x1, y1, x2, y2 = clip(rect, *self.image_size())
        if x2 - x1 < MIN_BOX or y2 - y1 < MIN_BOX:
            return False
        class_id = self._current_class if class_id is None else class_id
        self.push(edits.AddBoxes(record, [Box(x1, y1, x2, y2, class_id)], self._notify(self.index)))
        return True

    def delete(self, indices: list[int]) -> None:
        if self.record is not None and indices:
            self.push(edits.RemoveBoxes(self.record, indices, self._notify(self.index)))

    def set_geometry(self, changes: dict[int, Rect], text: str = "Move box",
                     nudge: bool = False) -> None:
        record = self.record
        if record is None:
            return
        changes = {i: r for i, r in changes.items() if record.boxes[i].xyxy() != tuple(r)}
        if changes:
            self.push(edits.SetGeometry(record, changes, self._notify(self.index), text, nudge))

    def nudge(self, indices: list[int], dx: float, dy: float) -> None:
        record = self.record
        if record is None or not indices:
            return
        w, h = self.image_size()
        self.set_geometry({i: moved(record.boxes[i].xyxy(), dx, dy, w, h) for i in indices},
                          "Nudge box", nudge=True)

    def set_class(self, indices: list[int], class_id: int) -> None:
        self.set_current_class(class_id)
        if self.record is not None and indices:
            self.push(edits.SetClass(self.record, indices, class_id, self._notify(self.index)))

    def toggle_difficult(self, indices: list[int]) -> None:
        if self.record is not None and indices:
            self.push(edits.ToggleDifficult(self.record, indices, self._notify(self.index)))

    def toggle_verified(self) -> None:
        record = self.record
        if record is not None:
            self.push(edits.SetVerified(record, not record.verified, self._notify(self.index)))

    def duplicate(self, indices: list[int]) -> None:
        record = self.record
        if record is None or not indices:
            return
        w, h = self.image_size()
        copies = []
        for i in indices:
            x1, y1, x2, y2 = moved(record.boxes[i].xyxy(), DUPLICATE_OFFSET, DUPLICATE_OFFSET, w, h)
            copies.append(replace(record.boxes[i], x1=x1, y1=y1, x2=x2, y2=y2))
        self.push(edits.AddBoxes(record, copies, self._notify(self.index), "Duplicate box"))

    def copy_previous(self) -> int:
        """Copy the boxes of the image shown before this one (else the one before in the
        list), clipped to this image. Returns how many were copied."""
        record = self.record
        if record is None or self.dataset is None or record.width <= 0:
            return 0
        source = self.previous_index
        if source is None or source == self.index:
            source = self.index - 1
        if source < 0:
            return 0
        w, h = self.image_size()
        copies = []
        for box in self.dataset.images[source].boxes:
            x1, y1, x2, y2 = clip(box.xyxy(), w, h)
            if x2 - x1 >= MIN_BOX and y2 - y1 >= MIN_BOX:
                copies.append(replace(box, x1=x1, y1=y1, x2=x2, y2=y2))
        if copies:
            self.push(edits.AddBoxes(record, copies, self._notify(self.index),
                                     "Copy previous boxes"))
        return len(copies)

    # --- proposals ----------------------------------------------------------------------
    def set_proposals(self, index: int, proposals: list[Proposal]) -> None:
        self.proposals[index] = proposals
        if index == self.index:
            self.proposals_changed.emit()

    def current_proposals(self) -> list[Proposal]:
        return self.proposals.get(self.index, [])

    def new_class_names(self, index: int | None = None) -> list[str]:
        """Class names of image ``index``'s proposals (default: the current image's) that
        the data set's list lacks, in order."""
        names: list[str] = []
        if self.dataset is None:
            return names
        index = self.index if index is None else index
        for p in self.proposals.get(index, []):
            if self.dataset.classes.index(p.name) is None and p.name not in names:
                names.append(p.name)
        return names

    def accept_proposals(self, add_classes: bool = True, index: int | None = None) -> int:
        """Accepted proposals of image ``index`` (default: the current one) become one
        undoable edit on that image's stack. Model classes map to the data set's by name;
        names it lacks are appended (in the same undoable edit) when ``add_classes``, else
        their proposals are dropped. Proposals that repeat a label of the same class are
        skipped (``skipped_duplicates``). Returns the boxes added."""
        index = self.index if index is None else index
        proposals = self.proposals.get(index, [])
        record = (self.dataset.images[index]
                  if self.dataset is not None and 0 <= index < len(self.dataset.images) else None)
        self.skipped_duplicates = 0
        if record is None or not proposals:
            return 0
        classes = self.dataset.classes
        new = self.new_class_names(index) if add_classes else []
        if not add_classes:
            proposals = [p for p in proposals if classes.index(p.name) is not None]
        proposals, self.skipped_duplicates = without_duplicates(proposals, record.boxes,
                                                                classes.names)
        ids = {name: classes.index(name) for name in {p.name for p in proposals}}
        ids.update({name: len(classes) + i for i, name in enumerate(new)})
        boxes = [replace(p.box, class_id=ids[p.name]) for p in proposals]
        if new:
            for name in new:
                classes.append(name)
            try:
                self._write_class_file()
            except Exception:
                classes.drop_last(len(new))  # the proposals stay on screen
                raise
        del self.proposals[index]
        if new or boxes:
            stack = self.stack(index)
            stack.beginMacro("Accept proposals")
            if new:
                stack.push(edits.AddClasses(self.dataset, new, self._classes_edited,
                                            applied=True))
                self.classes_changed.emit()
            if boxes:
                stack.push(edits.AddBoxes(record, boxes, self._notify(index),
                                          "Accept proposals"))
            stack.endMacro()
        if index == self.index:
            self.proposals_changed.emit()
        return len(boxes)

    def _write_class_file(self) -> None:
        """The class list file, where the labels need one (YOLO) or one exists."""
        if "yolo" in self.formats or folder.classes_path(self.dataset.root).is_file():
            folder.save_classes(self.dataset)

    def _classes_edited(self) -> None:
        try:
            self._write_class_file()
        except OSError as exc:
            self.class_file_failed.emit(f"Class list not saved: {exc}")
        self.classes_changed.emit()

    def reject_proposals(self) -> int:
        rejected = self.proposals.pop(self.index, [])
        self.proposals_changed.emit()
        return len(rejected)
