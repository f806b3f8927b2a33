"""The tf.distribute strategy of ``--strategy``: default, mirrored or multiworker."""

from __future__ import annotations

from workbench.errors import WorkbenchError
from workbench.train.multiworker import make_strategy as multiworker_strategy
from workbench.train.settings import STRATEGIES


def make_strategy(name: str):
    """The tf.distribute strategy ``--strategy`` names."""
    import tensorflow as tf  # lazy: the CLI and the window start without TensorFlow

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker":  # across machines, from TF_CONFIG: workbench/train/multiworker.py
        return multiworker_strategy()
    if name != "mirrored":
        raise WorkbenchError(f"unknown strategy {name!r} (use {' or '.join(STRATEGIES)})")
    if tf.config.list_logical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    # NCCL needs GPUs; on CPU devices reduce through one device
    return tf.distribute.MirroredStrategy(
        cpus, cross_device_ops=tf.distribute.ReductionToOneDevice())
