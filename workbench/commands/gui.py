"""``workbench gui [DIR]``: the annotation window (also what ``workbench`` alone runs)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from workbench.errors import WorkbenchError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gui", help="open the annotation window",
        description="Open the annotation window, optionally on a dataset folder (images with "
                    "YOLO .txt and/or Pascal VOC .xml labels beside them).")
    p.add_argument("folder", nargs="?", help="dataset folder to open")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    folder = getattr(args, "folder", None)
    if folder is not None and not Path(folder).is_dir():
        raise WorkbenchError(f"{folder}: not a folder (give a dataset folder of images)")
    try:
        # By name: the core package never imports the Qt layer (import-linter contract);
        # this verb only hands over to it when the user asks for the window.
        importlib.import_module("PySide6.QtWidgets")
        app = importlib.import_module("ui.app")
    except ImportError as exc:
        raise WorkbenchError(f"the GUI cannot start: {exc} (install PySide6-Essentials)") from None
    return int(app.main(folder))
