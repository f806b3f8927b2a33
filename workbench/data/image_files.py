"""Finding image files: which names are images, every image under a folder in natural
order, and the files and links that are left out (and why)."""

from __future__ import annotations

import os
from pathlib import Path

from workbench.storage.files import not_regular

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


def is_image(path: str | Path) -> bool:
    return os.path.splitext(str(path))[1].lower() in IMAGE_EXTENSIONS


def _bad_name(name: str) -> str | None:
    """Why a file name cannot be carried into label files and lists, None when it can."""
    if name.isprintable():  # the common case; surrogates and control characters are not
        return None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "its name has a control character (a newline would split list files)"
    return None


def list_images(root: str | Path, skipped: list[tuple[Path, str]] | None = None
                ) -> list[Path]:
    """Every image under ``root`` (recursive, hidden folders skipped), in natural order of
    the relative path (``img2`` before ``img10``, as labelImg and file managers list them).

    Only regular files inside ``root`` count: a link that leads out of the folder, a
    dangling or looping link, a link to a folder, a FIFO or device named like an image,
    a name that is not UTF-8 or holds a control character, and a folder that cannot be
    read are left out, each appended to ``skipped`` as ``(path, reason)``.
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    inside = real_root.rstrip(os.sep) + os.sep

    def skip(path: str, reason: str) -> None:
        if skipped is not None:
            skipped.append((Path(path), reason))

    found: list[str] = []
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            skip(folder, f"folder not read: {exc.strerror or exc}; its images are left out")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    if is_image(entry.name) or os.path.isdir(entry.path):
                        reason = link_problem(entry.path, inside)
                        if reason is not None:
                            skip(entry.path, reason)
                            continue
                    else:
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    reason = _bad_name(entry.name)
                    if reason is None:
                        stack.append(entry.path)
                    else:
                        skip(entry.path, f"folder skipped: {reason}")
                    continue
                elif not is_image(entry.name):
                    continue
                elif not entry.is_file(follow_symlinks=False):
                    skip(entry.path, "not a regular file (a FIFO, socket or device); skipped")
                    continue
            except OSError as exc:
                skip(entry.path, f"not read: {exc.strerror or exc}")
                continue
            reason = _bad_name(entry.name)
            if reason is not None:
                skip(entry.path, f"skipped: {reason}")
                continue
            found.append(entry.path)
    # deferred: natsort takes ~40 ms to import, more than listing a small folder
    from natsort import natsorted, ns

    prefix = len(str(root)) + 1
    found = natsorted(found, key=lambda p: p[prefix:], alg=ns.IGNORECASE)  # ns.PATH: 3x slower
    return [Path(p) for p in found]


def link_problem(path: str, inside: str) -> str | None:
    """Why the link ``path`` (named like an image) is not followed; None for a link to a
    regular file inside the data set."""
    target = os.path.realpath(path)
    if not (target + os.sep).startswith(inside):
        return f"link to {target}, outside the data set folder; not followed"
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"broken link ({exc.strerror or exc}); skipped"
    kind = not_regular(mode)
    if kind == "a folder":
        return "link to a folder; not followed (each image is listed once, from its real place)"
    if kind is not None:
        return f"link to {kind}; skipped"
    return None
