"""``workbench gui [DIR]``: the annotation window (also what ``workbench`` alone runs)."""

from __future__ import annotations

import argparse
import ctypes.util
import importlib
import os
import sys
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
    problem = display_problem(os.environ)
    if problem:
        raise WorkbenchError(problem)
    try:
        # By name: the core package never imports the Qt layer (import-linter contract);
        # this verb only hands over to it when the user asks for the window.
        importlib.import_module("PySide6.QtWidgets")
        app = importlib.import_module("ui.app")
    except ImportError as exc:
        raise WorkbenchError(f"the GUI cannot start: {exc} (install PySide6-Essentials)") from None
    return int(app.main(folder))


# Libraries Qt's X11 (xcb) platform plugin loads (``ldd libqxcb.so``) that a bare Linux box
# may lack, with the Debian package of each. Without them Qt aborts the process (SIGABRT)
# with a line about xcb-cursor whatever is missing.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0", "xcb-icccm": "libxcb-icccm4", "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0", "xcb-render-util": "libxcb-render-util0",
    "xcb-randr": "libxcb-randr0", "xcb-shape": "libxcb-shape0", "xcb-xkb": "libxcb-xkb1",
    "xkbcommon-x11": "libxkbcommon-x11-0", "EGL": "libegl1", "GL": "libgl1",
    "fontconfig": "libfontconfig1", "dbus-1": "libdbus-1-3",
}

HEADLESS_HINT = ("run it on a desktop, under a virtual display (xvfb-run workbench gui), or "
                 "with QT_QPA_PLATFORM=offscreen")


def display_problem(env, platform: str = sys.platform) -> str | None:
    """Why Qt could not open a window here (one line), or None. Checked before Qt starts,
    because Qt aborts the whole process when its platform plugin cannot load."""
    if not platform.startswith("linux"):
        return None
    qpa = env.get("QT_QPA_PLATFORM", "")
    if qpa and not qpa.startswith(("xcb", "wayland")):
        return None  # offscreen, minimal, vnc, eglfs, ... need no display server
    if qpa.startswith("wayland") or (not qpa and env.get("WAYLAND_DISPLAY")):
        if env.get("WAYLAND_DISPLAY"):
            return None
        return f"no display: WAYLAND_DISPLAY is not set; {HEADLESS_HINT}"
    if not env.get("DISPLAY"):
        return f"no display: DISPLAY is not set (no X server to open a window on); {HEADLESS_HINT}"
    missing = sorted(pkg for lib, pkg in XCB_LIBRARIES.items()
                     if ctypes.util.find_library(lib) is None)
    if missing:
        return ("Qt's X11 platform needs system libraries that are missing: "
                f"sudo apt-get install {' '.join(missing)} (or {HEADLESS_HINT})")
    return None
