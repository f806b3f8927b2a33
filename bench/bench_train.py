"""Training step time: the real tf.data pipeline against the same steps on tensors in memory.

    python3 bench/bench_train.py [--template yolov3-tiny] [--size 416] [--batch 8] [--steps 6]

Both contenders run the trainer's step (Keras model from the cfg, YOLO loss, Adam) on the same
batches: A reads them through ``workbench.train.data.make_dataset`` (decode, augment, prefetch)
while training, B feeds batches taken from that pipeline beforehand and held in memory.
After a warm-up pass of each, blocks of steps alternate A B A B; the figures are medians per
step. Target: the pipeline adds at most 15% (ratio <= 1.15).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _training_setup as training  # noqa: E402 - after the path


def main() -> int:
    args = training.parse_options(__doc__, steps=6, rounds=4)

    import tensorflow as tf

    from workbench.network.keras_model import build_model
    from workbench.train.augment import AugmentSettings
    from workbench.train.data import make_dataset

    size, batch, steps = args.size, args.batch, args.steps
    with tempfile.TemporaryDirectory() as tmp:
        # one epoch long enough for the warm-up and every timed block of A
        cfg, heads, examples = training.demo_training_data(args, Path(tmp),
                                                  images=batch * steps * (args.rounds + 1))
        augment = AugmentSettings.from_cfg(cfg)
        step = training.train_step(build_model(cfg, size, size), heads, size)

        def batches(epoch: int):
            return make_dataset(examples, size, size, batch, augment=augment, seed=0,
                                epoch=epoch, shuffle=True, drop_remainder=True)

        in_memory = [tuple(tf.identity(t) for t in b) for b in batches(0).take(steps)]
        stream = iter(batches(1))

        def run_pipeline() -> list[float]:
            return training.timed_steps(steps, step, lambda i: next(stream))

        def run_memory() -> list[float]:
            return training.timed_steps(steps, step, lambda i: in_memory[i % len(in_memory)])

        # warm up: trace the step, touch the memory, fill the decoders' caches
        run_memory()
        run_pipeline()
        run_memory()
        a, b = training.alternate(args.rounds, run_pipeline, run_memory)
    training.report(args, a, b, ("real tf.data pipeline", "tensors in memory"), "target <= 1.15")
    return 0


if __name__ == "__main__":
    sys.exit(main())
