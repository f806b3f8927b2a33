"""The main window's actions and menus; keys come from ui.shortcuts.

Each function takes the workbench's ``ui.main_window.MainWindow``; it is typed as the Qt class
it derives from because main_window imports this module (naming it here would close a circle).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMainWindow

from ui.shortcuts import keys_for

FORMATS = {"yolo": "YOLO (.txt)", "voc": "Pascal VOC (.xml)", "yolo+voc": "YOLO and VOC"}


def build_actions(w: QMainWindow) -> dict[str, QAction]:
    s, c = w.session, w.canvas
    slots: dict[str, tuple[str, Callable[[], object]]] = {
        "open": ("&Open folder…", w.choose_folder),
        "save": ("&Save", w.save_current),
        "quit": ("&Quit", w.close),
        "next": ("&Next image", w.next_image),
        "previous": ("&Previous image", w.previous_image),
        "jump": ("&Jump to image…", w.ask_jump),
        "find": ("&Find image by name", lambda: w.images.name_edit.setFocus()),
        "create": ("Create &box", w.start_drawing),
        "delete": ("&Delete box", lambda: s.delete(c.selected())),
        "duplicate": ("D&uplicate box", lambda: s.duplicate(c.selected())),
        "copy_previous": ("Copy &previous image's boxes", w.copy_previous),
        "difficult": ("Toggle &difficult", lambda: s.toggle_difficult(c.selected())),
        "verify": ("&Verify image", w.toggle_verified),
        "select_all": ("Select &all boxes", lambda: c.select(list(range(len(c.boxes))))),
        "propose": ("&Propose boxes on this image", w.prelabeler.propose_current),
        "accept": ("&Accept proposals", w.accept_proposals),
        "reject": ("&Reject proposals", s.reject_proposals),
        "fit": ("&Fit to window", c.fit),
        "actual_size": ("&Actual size (1:1)", c.actual_size),
        "zoom_in": ("Zoom &in", lambda: c.zoom_by(1.25)),
        "zoom_out": ("Zoom &out", lambda: c.zoom_by(0.8)),
        "cheat_sheet": ("&Keyboard shortcuts", w.show_cheat_sheet),
    }
    actions = {}
    for key, (text, slot) in slots.items():
        action = QAction(text, w)
        action.setShortcuts(keys_for(key))
        action.triggered.connect(lambda _=False, f=slot: f())
        w.addAction(action)  # shortcuts work with the menu bar hidden too
        actions[key] = action
    undo = s.undo_group.createUndoAction(w, "&Undo")
    undo.setShortcuts(keys_for("undo"))
    redo = s.undo_group.createRedoAction(w, "&Redo")
    redo.setShortcuts(keys_for("redo"))
    actions["undo"], actions["redo"] = undo, redo
    for n in range(1, 10):
        action = QAction(f"Class {n}", w)
        action.setShortcut(QKeySequence(str(n)))
        action.triggered.connect(lambda _=False, k=n - 1: w.set_class_by_key(k))
        w.addAction(action)
        actions[f"class_{n}"] = action
    actions["propose_unlabeled"] = QAction("Propose boxes on all &unlabeled images", w)
    actions["propose_unlabeled"].triggered.connect(w.propose_unlabeled)
    actions["load_model"] = QAction("&Load model…", w)
    actions["load_model"].triggered.connect(w.load_model)
    actions.update(_dock_actions(w))
    actions["messages"] = QAction("&Messages…", w)   # no key: an occasional look back
    actions["messages"].triggered.connect(w.show_messages)
    actions["demo_model"] = QAction("Built-in &demo model", w)
    actions["demo_model"].triggered.connect(lambda: w.use_model("demo"))
    actions["cancel_proposals"] = QAction("&Cancel proposing", w)
    actions["cancel_proposals"].triggered.connect(w.prelabeler.cancel)
    actions["autosave"] = QAction("&Autosave", w, checkable=True, checked=True)
    actions["autosave"].toggled.connect(lambda on: setattr(s, "autosave", on))
    actions["keep_drawing"] = QAction("&Keep drawing after each box", w, checkable=True)
    actions["keep_drawing"].toggled.connect(lambda on: setattr(c, "keep_drawing", on))
    # Enter/Esc only while proposals exist: otherwise the keys go to the focused widget
    for key in ("accept", "reject"):
        actions[key].setEnabled(False)
        actions[key].setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    return actions


def _dock_actions(w: QMainWindow) -> dict[str, QAction]:
    """The docks' own show/hide actions, so the menu check marks follow the docks."""
    actions = {}
    for key, text, has_keys in (
            ("inspect", "&Inspect predictions (IoU, NMS)", True),
            ("train", "&Train a model on this dataset…", True),
            ("evaluate", "&Evaluate predictions (mAP, PR curves, confusion)", False),
            ("detect", "&Detect on a folder or the data set…", True)):
        action = w.docks[key].toggleViewAction()
        action.setText(text)
        if has_keys:
            action.setShortcuts(keys_for(key))
            w.addAction(action)
        actions[key] = action
    return actions


def build_menus(w: QMainWindow) -> None:
    a = w.act
    bar = w.menuBar()
    file = bar.addMenu("&File")
    file.addAction(a["open"])
    w.recent_menu = file.addMenu("Open &recent")
    file.addAction(a["save"])
    formats = file.addMenu("Save &format")
    w.format_group = QActionGroup(w)
    for key, text in FORMATS.items():
        action = formats.addAction(text)
        action.setCheckable(True)
        action.setData(key)
        action.setChecked(key == "yolo")
        w.format_group.addAction(action)
        action.triggered.connect(lambda _=False, k=key: w.set_formats(tuple(k.split("+"))))
    file.addAction(a["autosave"])
    file.addSeparator()
    file.addAction(a["quit"])
    edit = bar.addMenu("&Edit")
    for key in ("undo", "redo", None, "create", "delete", "duplicate", "copy_previous",
                "difficult", "verify", "select_all", "keep_drawing"):
        edit.addSeparator() if key is None else edit.addAction(a[key])
    classes = edit.addMenu("Set &class")
    for n in range(1, 10):
        classes.addAction(a[f"class_{n}"])
    view = bar.addMenu("&View")
    for key in ("fit", "actual_size", "zoom_in", "zoom_out"):
        view.addAction(a[key])
    view.addSeparator()
    for dock in w.docks.values():
        view.addAction(dock.toggleViewAction())
    view.addSeparator()
    view.addAction(a["messages"])   # the status bar's messages, full and with their times
    go = bar.addMenu("&Go")
    for key in ("next", "previous", "jump", "find"):
        go.addAction(a[key])
    model = bar.addMenu("&Model")
    model.addAction(a["load_model"])
    model.addAction(a["demo_model"])
    w.recent_models_menu = model.addMenu("Recent &models")
    w.recent_models_menu.aboutToShow.connect(lambda: rebuild_recent_models(w))
    rebuild_recent_models(w)
    model.addSeparator()
    for key in ("propose", "propose_unlabeled", "cancel_proposals", "accept", "reject"):
        model.addAction(a[key])
    model.addSeparator()
    model.addAction(a["detect"])
    model.addAction(a["inspect"])
    model.addAction(a["train"])
    model.addAction(a["evaluate"])
    help_menu = bar.addMenu("&Help")
    help_menu.addAction(a["cheat_sheet"])


def rebuild_recent_models(w: QMainWindow) -> None:
    """Model > Recent models: one click back to any model used before."""
    from ui import settings

    menu = w.recent_models_menu
    menu.clear()
    for folder in settings.recent_models():
        action = menu.addAction(folder)
        action.triggered.connect(lambda _=False, f=folder: w.use_model(f))
    menu.setEnabled(not menu.isEmpty())
