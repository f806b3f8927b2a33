"""Import TensorFlow on demand: a one-line error when it is missing, and its start-up log kept
off the user's terminal.

TensorFlow's C++ side writes banners and harmless errors (``oneDNN custom operations are on``,
``failed call to cuInit: UNKNOWN ERROR (303)`` on a machine without a GPU) straight to file
descriptor 2 before its own log settings apply, so ``TF_CPP_MIN_LOG_LEVEL`` alone cannot hide
them. The import and the first device query run with descriptor 2 pointed at a temporary file,
which is replayed when asked for (``verbose``) or when the import fails.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from workbench.errors import WorkbenchError
from workbench.extras import install_hint


class TensorFlowMissing(WorkbenchError):
    """TensorFlow is not installed (or cannot load); the message names the extra to install."""


@contextlib.contextmanager
def _stderr_to_file() -> Iterator[Any]:
    """Point file descriptor 2 at a temporary file for the duration; yields that file."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield log
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def import_tensorflow(verbose: bool = False, purpose: str = "this") -> Any:
    """The ``tensorflow`` module, imported quietly unless ``verbose``.

    Raises TensorFlowMissing (one line, naming the ``train`` extra) when it is not installed.
    """
    if "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None:
        return sys.modules["tensorflow"]
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    else:  # 3 hides its C++ ERROR lines too: real failures still raise Python exceptions
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if verbose:
        return _import(purpose)
    with _stderr_to_file() as log:
        try:
            tf = _import(purpose)
            # the first device query is where cuInit complains on a machine without a GPU
            tf.config.list_physical_devices()
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read().decode("utf-8", "replace"))
            raise
    return tf


def _import(purpose: str) -> Any:
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise TensorFlowMissing(f"{purpose} needs TensorFlow, which is not installed here "
                                f"({exc.msg}): {install_hint('train')}") from None
    return tf
