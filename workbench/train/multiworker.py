"""Training across machines: ``--strategy multiworker``, TensorFlow's MultiWorkerMirroredStrategy.

Every worker runs the same ``workbench train`` command; ``TF_CONFIG`` (JSON, one per worker)
names the cluster and this worker's place in it::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}'

Variables start equal (the strategy broadcasts worker 0's initial values), each global batch is
split over the workers (tf.data auto-sharding, by data) and gradients are all-reduced every
step, so every worker holds the same weights after each step. The chief (task ``chief``, or
worker 0 without one) writes the run folder: config, checkpoints, metrics and the exported
bundle. The others must still take part in saving (collectives may run while variables are
read), so they write to a scratch folder of their own, ``RUN_DIR/.worker-N``, removed when the
run ends. A resumed run restores every worker from the chief's checkpoints, so RUN_DIR must be
storage every worker sees (or a copy of it on each).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import WorkbenchError


@dataclass(frozen=True)
class WorkerRole:
    task_type: str
    index: int
    workers: int  # chief included
    has_chief: bool = False  # a "chief" task apart from the workers

    @property
    def chief(self) -> bool:
        return self.task_type == "chief" or (self.task_type == "worker" and self.index == 0
                                             and not self.has_chief)

    @property
    def name(self) -> str:
        return f"{self.task_type}-{self.index}"


def role_from_env(environ: Mapping[str, str] | None = None) -> WorkerRole:
    """This process's place in the cluster, read from TF_CONFIG; one clear error otherwise."""
    text = (os.environ if environ is None else environ).get("TF_CONFIG", "")
    if not text.strip():
        raise WorkbenchError("--strategy multiworker needs TF_CONFIG: set it on every worker to "
                             '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": '
                             '{"type": "worker", "index": N}} (docs/scaling.md, "Training across machines")')
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        task_type, index = str(task["type"]), int(task["index"])
        members = {k: list(v) for k, v in cluster.items() if k in ("chief", "worker")}
    except (ValueError, KeyError, TypeError) as exc:
        raise WorkbenchError(f"TF_CONFIG is not a cluster description ({exc}); expected "
                             '{"cluster": {"worker": [...]}, "task": {"type": "worker", '
                             '"index": N}}') from None
    if task_type not in members or not 0 <= index < len(members[task_type]):
        raise WorkbenchError(f"TF_CONFIG: task {task_type} {index} is not in the cluster "
                             f"{members}")
    if len(members.get("chief", [])) > 1:
        raise WorkbenchError("TF_CONFIG: a cluster has at most one chief")
    return WorkerRole(task_type, index, sum(len(v) for v in members.values()),
                      "chief" in members)


def make_strategy():
    """The strategy for TF_CONFIG's cluster; blocks until every worker has started."""
    import tensorflow as tf

    role_from_env()  # a readable error before TensorFlow's own
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def is_chief(strategy) -> bool:
    """Whether this process writes the run folder: always, except a non-chief multi-worker."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return role_from_env().chief


def write_dir(run_dir: Path, strategy) -> Path:
    """Where this worker writes: RUN_DIR for the chief, its own scratch folder otherwise."""
    if is_chief(strategy):
        return run_dir
    return run_dir / f".{role_from_env().name}"


def remove_scratch(run_dir: Path, out_dir: Path) -> None:
    """Delete a non-chief's scratch folder once the run is over (the chief's copy is the run)."""
    if out_dir != run_dir:
        shutil.rmtree(out_dir, ignore_errors=True)


def sync_batch_norm(model) -> None:
    """Batch statistics over the global batch, all-reduced across workers.

    Without it each worker's BatchNormalization moving means and variances follow its own
    share of the batch, so the workers (and the chief's exported model) drift apart; with it
    they stay equal, and a step equals one on the whole global batch.
    """
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True


def weights_digest(model) -> str:
    """SHA-256 of every weight in order: equal on every worker of a healthy run."""
    digest = hashlib.sha256()
    for w in model.get_weights():
        digest.update(w.tobytes())
    return digest.hexdigest()
