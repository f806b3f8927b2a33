"""Every keyboard shortcut in one table: menus take their keys from it, the Help cheat sheet
and docs/gui.md show it. labelImg's keys are kept (A/D, W, Del, Ctrl+S, Space, Ctrl+D)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class Shortcut:
    action: str          # the action's id in the main window ("" for canvas gestures)
    keys: tuple[str, ...]
    text: str
    group: str


SHORTCUTS: tuple[Shortcut, ...] = (
    Shortcut("open", ("Ctrl+U", "Ctrl+O"), "Open a dataset folder", "File"),
    Shortcut("save", ("Ctrl+S",), "Save this image's labels (also when unchanged)", "File"),
    Shortcut("quit", ("Ctrl+Q",), "Quit (saves or asks first)", "File"),
    Shortcut("next", ("D",), "Next image", "Navigate"),
    Shortcut("previous", ("A",), "Previous image", "Navigate"),
    Shortcut("jump", ("Ctrl+G",), "Jump to an image number", "Navigate"),
    Shortcut("find", ("Ctrl+L",), "Filter the image list by file name", "Navigate"),
    Shortcut("create", ("W",), "Draw a box (drag; crosshair shows)", "Edit"),
    Shortcut("delete", ("Del", "Backspace"), "Delete the selected boxes", "Edit"),
    Shortcut("duplicate", ("Ctrl+D",), "Duplicate the selected boxes", "Edit"),
    Shortcut("copy_previous", ("Ctrl+V",), "Copy the previous image's boxes", "Edit"),
    Shortcut("difficult", ("T",), "Toggle 'difficult' on the selected boxes", "Edit"),
    Shortcut("verify", ("Space",), "Mark the image verified (toggle)", "Edit"),
    Shortcut("select_all", ("Ctrl+A",), "Select every box", "Edit"),
    Shortcut("class_keys", ("1", "2", "…", "9"), "Set the class of the selected boxes "
             "(and of new boxes)", "Edit"),
    Shortcut("undo", ("Ctrl+Z",), "Undo (per image)", "Edit"),
    Shortcut("redo", ("Ctrl+Shift+Z", "Ctrl+Y"), "Redo", "Edit"),
    Shortcut("", ("Arrows",), "Nudge the selected boxes 1 px", "Edit"),
    Shortcut("", ("Shift+Arrows",), "Nudge the selected boxes 10 px", "Edit"),
    Shortcut("", ("Drag a box",), "Move it; drag a handle to resize", "Edit"),
    Shortcut("", ("Shift+Click",), "Add a box to the selection", "Edit"),
    Shortcut("", ("Esc",), "Stop drawing / clear the selection", "Edit"),
    Shortcut("propose", ("Ctrl+P",), "Propose boxes on this image with the model", "Model"),
    Shortcut("accept", ("Return", "Enter"), "Accept the proposed (dashed) boxes", "Model"),
    Shortcut("reject", ("Esc",), "Reject the proposed boxes", "Model"),
    Shortcut("inspect", ("Ctrl+I",), "Show or hide the Inspect dock (IoU and NMS decisions "
             "of the model's predictions)", "Model"),
    Shortcut("train", ("Ctrl+T",), "Show or hide the Train dock (train a model on this "
             "dataset in a child process)", "Model"),
    Shortcut("detect", ("Ctrl+R",), "Show or hide the Detect dock (run a model on the data "
             "set or a folder, browse, export and accept the results)", "Model"),
    Shortcut("fit", ("Ctrl+F",), "Fit the image to the window", "View"),
    Shortcut("actual_size", ("Ctrl+1",), "Actual size (1:1)", "View"),
    Shortcut("zoom_in", ("Ctrl++", "Ctrl+="), "Zoom in", "View"),
    Shortcut("zoom_out", ("Ctrl+-",), "Zoom out", "View"),
    Shortcut("", ("Ctrl+Wheel",), "Zoom at the pointer", "View"),
    Shortcut("", ("Drag background", "Middle drag"), "Pan", "View"),
    Shortcut("cheat_sheet", ("F1",), "This cheat sheet", "Help"),
)


def keys_for(action: str) -> list[QKeySequence]:
    for shortcut in SHORTCUTS:
        if shortcut.action == action:
            return [QKeySequence(k) for k in shortcut.keys]
    raise KeyError(action)


def cheat_sheet_rows() -> list[tuple[str, str, str]]:
    return [(s.group, " / ".join(s.keys), s.text) for s in SHORTCUTS]


class CheatSheet(QDialog):
    """Help > Keyboard shortcuts."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = cheat_sheet_rows()
        table = QTableWidget(len(rows), 3, self)
        table.setHorizontalHeaderLabels(["Group", "Keys", "What it does"])
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                table.setItem(r, c, QTableWidgetItem(text))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, parent=self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        layout.addWidget(buttons)
        self.resize(620, 640)
