"""Training step time in float32 against mixed bfloat16 (what ``--precision auto`` picks on a
CPU with AMX / AVX-512 BF16).

    python3 bench/bench_train_precision.py [--template yolov3-tiny] [--size 416] [--batch 8]

Both contenders run the trainer's step (Keras model from the cfg, YOLO loss, Adam) on the same
batches held in memory, from the same start weights: A is built with the float32 policy, B with
``mixed_bfloat16``. After a warm-up of each, blocks of steps alternate A B A B; the figures are
medians per step. The ratio A/B is B's speed-up (> 1: bfloat16 is faster).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _training_setup as training  # noqa: E402 - after the path


def main() -> int:
    args = training.parse_options(__doc__, steps=4, rounds=3)


    from workbench.network.keras_model import build_model
    from workbench.train.precision import cpu_has_bf16

    size, batch, steps = args.size, args.batch, args.steps
    with tempfile.TemporaryDirectory() as tmp:
        cfg, heads, examples = training.demo_training_data(args, Path(tmp), images=batch * steps)
        data = training.batches_in_memory(examples, size, batch)

    def contender(policy: str, start=None):
        model = build_model(cfg, size, size, dtype=policy)
        if start is not None:
            model.set_weights(start)
        step = training.train_step(model, heads, size)

        def run() -> list[float]:
            return training.timed_steps(steps, step, lambda i: data[i % len(data)])

        return model, run

    model_a, run_a = contender("float32")
    _, run_b = contender("mixed_bfloat16", model_a.get_weights())
    run_a()
    run_b()  # warm-up: tracing, oneDNN kernel creation
    a, b = training.alternate(args.rounds, run_a, run_b)
    training.report(args, a, b, ("float32", "mixed_bfloat16"), "> 1: bfloat16 is faster",
           machine=f", bf16 units: {cpu_has_bf16()}, load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
