"""Training step time in float32 against mixed bfloat16 (what ``--precision auto`` picks on a
CPU with AMX / AVX-512 BF16).

    python3 bench/bench_train_precision.py [--template yolov3-tiny] [--size 416] [--batch 8]

Both contenders run the trainer's step (Keras model from the cfg, YOLO loss, Adam) on the same
batches held in memory, from the same start weights: A is built with the float32 policy, B with
``mixed_bfloat16``. After a warm-up of each, blocks of steps alternate A B A B; the figures are
medians per step. The ratio A/B is B's speed-up (> 1: bfloat16 is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--template", default="yolov3-tiny")
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=4, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=3, help="A B rounds")
    args = p.parse_args()

    import keras
    import tensorflow as tf

    from workbench.darknet.cfg import customize
    from workbench.data.folder import open_dataset
    from workbench.data.synth import CLASS_NAMES, make_demo_dataset
    from workbench.network.keras_model import build_model, heads_info, run_heads
    from workbench.train.data import examples_from_records, make_dataset, split_records
    from workbench.train.loop import resolve_template
    from workbench.train.loss import yolo_loss
    from workbench.train.precision import cpu_has_bf16

    size, batch, steps = args.size, args.batch, args.steps
    cfg = customize(resolve_template(args.template), len(CLASS_NAMES), size, size)
    heads = heads_info(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        root = make_demo_dataset(Path(tmp) / "data", images=batch * steps, seed=1, size=416,
                                 valid_fraction=0.0)
        records, _ = split_records(open_dataset(root), valid_fraction=0.0)
        examples = examples_from_records(records, len(CLASS_NAMES))
        data = [tuple(tf.identity(t) for t in b)
                for b in make_dataset(examples, size, size, batch, drop_remainder=True)]

    def contender(policy: str, start=None):
        model = build_model(cfg, size, size, dtype=policy)
        if start is not None:
            model.set_weights(start)
        optimizer = keras.optimizers.Adam(1e-4)
        optimizer.build(model.trainable_variables)

        @tf.function(autograph=False)
        def train_step(images, boxes, classes):
            with tf.GradientTape() as tape:
                parts = yolo_loss(run_heads(model, images, training=True), boxes, classes,
                                  heads, size, size)
            grads = tape.gradient(parts["total"], model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return parts["total"]

        def run() -> list[float]:
            times = []
            for i in range(steps):
                t0 = time.perf_counter()
                float(train_step(*data[i % len(data)]))
                times.append(time.perf_counter() - t0)
            return times

        return model, run

    model_a, run_a = contender("float32")
    _, run_b = contender("mixed_bfloat16", model_a.get_weights())
    run_a()
    run_b()  # warm-up: tracing, oneDNN kernel creation
    a, b = [], []
    for _ in range(args.rounds):
        a += run_a()
        b += run_b()
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{args.template} at {size}x{size}, batch {batch}, {len(a)} steps each, "
          f"{os.cpu_count()} CPUs, bf16 units: {cpu_has_bf16()}, load {os.getloadavg()[0]:.1f}")
    print(f"  A float32        : {ma * 1000:8.1f} ms/step  {batch / ma:6.1f} images/s")
    print(f"  B mixed_bfloat16 : {mb * 1000:8.1f} ms/step  {batch / mb:6.1f} images/s")
    print(f"  ratio A/B = {ma / mb:.3f}  (> 1: bfloat16 is faster)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
