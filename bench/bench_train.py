"""Training step time: the real tf.data pipeline against the same steps on tensors in memory.

    python3 bench/bench_train.py [--template yolov3-tiny] [--size 416] [--batch 8] [--steps 6]

Both contenders run the trainer's step (Keras model from the cfg, YOLO loss, Adam) on the same
batches: A reads them through ``workbench.train.data.make_dataset`` (decode, augment, prefetch)
while training, B feeds batches taken from that pipeline beforehand and held in memory.
After a warm-up pass of each, blocks of steps alternate A B A B; the figures are medians per
step. Target: the pipeline adds at most 15% (ratio <= 1.15).
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
    p.add_argument("--steps", type=int, default=6, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=4, help="A B rounds")
    args = p.parse_args()

    import keras
    import tensorflow as tf

    from workbench.darknet.cfg import customize
    from workbench.data.folder import open_dataset
    from workbench.data.synth import CLASS_NAMES, make_demo_dataset
    from workbench.network.keras_model import build_model, heads_info
    from workbench.train.augment import AugmentSettings
    from workbench.train.data import examples_from_records, make_dataset, split_records
    from workbench.train.loop import resolve_template
    from workbench.train.loss import yolo_loss

    size, batch, steps = args.size, args.batch, args.steps
    cfg = customize(resolve_template(args.template), len(CLASS_NAMES), size, size)
    heads = heads_info(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        # one epoch long enough for the warm-up and every timed block of A
        n_images = batch * steps * (args.rounds + 1)
        root = make_demo_dataset(Path(tmp) / "data", images=n_images, seed=1, size=416,
                                 valid_fraction=0.0)
        records, _ = split_records(open_dataset(root), valid_fraction=0.0)
        examples = examples_from_records(records, len(CLASS_NAMES))
        augment = AugmentSettings.from_cfg(cfg)
        model = build_model(cfg, size, size)
        optimizer = keras.optimizers.Adam(1e-4)
        optimizer.build(model.trainable_variables)

        @tf.function(autograph=False)
        def train_step(images, boxes, classes):
            with tf.GradientTape() as tape:
                parts = yolo_loss(model(images, training=True), boxes, classes, heads, size, size)
            grads = tape.gradient(parts["total"], model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return parts["total"]

        def batches(epoch: int):
            return make_dataset(examples, size, size, batch, augment=augment, seed=0,
                                epoch=epoch, shuffle=True, drop_remainder=True)

        in_memory = [tuple(tf.identity(t) for t in b) for b in batches(0).take(steps)]
        stream = iter(batches(1))

        def run_pipeline() -> list[float]:
            times = []
            for _ in range(steps):
                t0 = time.perf_counter()
                images, boxes, classes = next(stream)
                float(train_step(images, boxes, classes))
                times.append(time.perf_counter() - t0)
            return times

        def run_memory() -> list[float]:
            times = []
            for i in range(steps):
                t0 = time.perf_counter()
                float(train_step(*in_memory[i % len(in_memory)]))
                times.append(time.perf_counter() - t0)
            return times

        # warm up: trace the step, touch the memory, fill the decoders' caches
        run_memory()
        run_pipeline()
        run_memory()
        a, b = [], []
        for _ in range(args.rounds):
            a += run_pipeline()
            b += run_memory()
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"{args.template} at {size}x{size}, batch {batch}, {len(a)} steps each, "
          f"{os.cpu_count()} CPUs")
    print(f"  A real tf.data pipeline : {ma * 1000:8.1f} ms/step  {batch / ma:6.1f} images/s")
    print(f"  B tensors in memory     : {mb * 1000:8.1f} ms/step  {batch / mb:6.1f} images/s")
    print(f"  ratio A/B = {ma / mb:.3f}  (target <= 1.15)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
