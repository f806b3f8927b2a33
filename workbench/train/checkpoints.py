"""TensorFlow checkpoints of a run, each failure as one line naming the folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from workbench.errors import WorkbenchError


def restore_checkpoint(checkpoint, prefix: Path) -> None:
    """Restore every variable of ``checkpoint`` from ``prefix``; a damaged or foreign checkpoint
    is one WorkbenchError (TensorFlow raises DataLossError, IndexError, NotFoundError, ...)."""
    import tensorflow as tf  # lazy: the CLI and the window start without TensorFlow

    try:
        checkpoint.restore(str(prefix)).assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, IndexError, AssertionError) as exc:
        raise WorkbenchError(f"{prefix}: the checkpoint is damaged or from another model "
                             f"({tf_message(exc)}); the run cannot be resumed (nothing was "
                             "changed)") from None


def save_checkpoint(manager, step: int) -> str:
    """``manager.save``; a full disk (TensorFlow's OutOfRangeError, not an OSError) becomes one
    line naming the folder. The previous checkpoints stay: TensorFlow writes to a temporary
    name first."""
    import tensorflow as tf  # lazy: the CLI and the window start without TensorFlow

    try:
        return manager.save(checkpoint_number=step)
    except tf.errors.OpError as exc:
        # what TensorFlow left half-written: its temporary folder, named in its message
        shutil.rmtree(Path(manager.directory, f"ckpt-{step}_temp"), ignore_errors=True)
        # "<temporary file>; File too large [Op:SaveV2]": the reason, not the temporary name
        reason = re.sub(r"\s*\[Op:\w+\]$", "", tf_message(exc).rsplit("; ", 1)[-1])
        raise WorkbenchError(f"{manager.directory}: cannot save a checkpoint: {reason}") from None


def tf_message(exc: BaseException) -> str:
    """The first line of a TensorFlow error, without its {{function_node ...}} prefix."""
    text = re.sub(r"\{\{.*?\}\}\s*", "", str(exc)).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]
