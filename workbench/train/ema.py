"""An exponential moving average of the model's weights: what is validated and exported.

Fine-tuning on a few hundred images makes the weights of consecutive steps (and the validation
mAP of consecutive epochs) swing; the average over the last stretch of steps does not. The
decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (TensorFlow's
``ExponentialMovingAverage(num_updates=...)`` rule), so a short run averages roughly its last
tenth of steps and a long one at most ``1 / (1 - decay)`` steps: no setting depends on the size
of the data set. Batch-norm statistics are moving averages already and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_DECAY = 0.9998


class WeightAverage:
    """Shadow copies of ``variables``; ``update()`` inside the training step, ``swapped()``
    around validation and export. ``module`` goes into the checkpoint (resume keeps it)."""

    def __init__(self, variables: list[Any], decay: float = DEFAULT_DECAY) -> None:
        import tensorflow as tf

        self.variables = list(variables)
        self.decay = float(decay)
        self.module = tf.Module(name="weight_average")
        self.module.shadows = [tf.Variable(v, trainable=False, name="ema")
                               for v in self.variables]
        self.module.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates")

    @property
    def shadows(self) -> list[Any]:
        return self.module.shadows

    def update(self) -> None:
        """One step of the average (traceable: call it inside the tf.function step)."""
        import tensorflow as tf

        n = tf.cast(self.module.updates.assign_add(1), tf.float32)
        decay = tf.minimum(self.decay, (1.0 + n) / (10.0 + n))
        for shadow, v in zip(self.shadows, self.variables, strict=True):
            shadow.assign(decay * shadow + (1.0 - decay) * tf.cast(v, shadow.dtype))

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """The averaged weights in the model for the duration of the block."""
        saved = [v.numpy() for v in self.variables]
        for v, shadow in zip(self.variables, self.shadows, strict=True):
            v.assign(shadow)
        try:
            yield
        finally:
            for v, value in zip(self.variables, saved, strict=True):
                v.assign(value)
