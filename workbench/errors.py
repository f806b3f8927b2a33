"""Typed errors. Every error that comes from user data names the file and the place in it."""

from __future__ import annotations

from pathlib import Path


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""


class FormatError(WorkbenchError):
    """A file could not be read: names the file and the line (or XML element) at fault.

    ``str(err)`` is one line: ``path:line: message`` or ``path: <element>: message``.
    """

    def __init__(self, path: str | Path, message: str, *, line: int | None = None,
                 element: str | None = None) -> None:
        self.path = Path(path)
        self.line = line
        self.element = element
        self.message = message
        where = str(self.path)
        if not where.isprintable():  # a newline or undecodable byte in a name: one line
            where = repr(where)[1:-1]
        message = " ".join(message.splitlines())
        if line is not None:
            where += f":{line}"
        if element is not None:
            where += f": <{element}>"
        super().__init__(f"{where}: {message}")


class ImageError(FormatError):
    """An image file is missing, truncated, corrupt or of an unsupported kind."""


class ModelError(WorkbenchError):
    """A model file (cfg, weights, names, onnx) does not fit or cannot be used."""


class BackendUnavailable(WorkbenchError):
    """An inference backend was asked for explicitly but cannot run here; says how to get it."""


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError (disk full, permission denied, a file where a folder should
    be): the path first, then what the system said, without Python's ``[Errno N]``."""
    import os

    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return what
    where = os.fsdecode(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {os.fsdecode(exc.filename2)}"
    # a name that is not UTF-8 (surrogate escapes) must still print
    return f"{where}: {what}".encode("utf-8", "backslashreplace").decode("utf-8")
