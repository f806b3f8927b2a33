"""What the training benchmarks (bench_train.py, bench_train_precision.py) share: their options,
the synthetic data and cfg they train on, the trainer's step and the timed blocks of steps.

TensorFlow and the trainer's modules are imported by the functions that need them, after the
options are parsed (``--help`` stays fast); importing this module quiets TensorFlow's C++ log.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_options(doc: str, steps: int, rounds: int) -> argparse.Namespace:
    """--template, --size, --batch, --steps (per timed block) and --rounds (A B rounds)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--template", default="yolov3-tiny")
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=steps, help="steps per timed block")
    p.add_argument("--rounds", type=int, default=rounds, help="A B rounds")
    return p.parse_args()


def demo_training_data(args: argparse.Namespace, folder: Path, images: int):
    """The cfg (``--template`` at ``--size`` for the demo classes), its heads and the training
    examples of ``images`` synthetic images written into ``folder / "data"`` (all train)."""
    from workbench.darknet.cfg import customize
    from workbench.data.folder import open_dataset
    from workbench.data.synth import CLASS_NAMES, make_demo_dataset
    from workbench.network.keras_model import heads_info
    from workbench.train.data import examples_from_records, split_records
    from workbench.train.loop import resolve_template

    cfg = customize(resolve_template(args.template), len(CLASS_NAMES), args.size, args.size)
    root = make_demo_dataset(folder / "data", images=images, seed=1, size=416,
                             valid_fraction=0.0)
    records, _ = split_records(open_dataset(root), valid_fraction=0.0)
    return cfg, heads_info(cfg), examples_from_records(records, len(CLASS_NAMES))


def batches_in_memory(examples, size: int, batch: int, augment=None) -> list[tuple]:
    """Every full batch of ``examples`` through the trainer's pipeline, held as tensors (the
    step then times the model alone)."""
    import tensorflow as tf

    from workbench.train.data import make_dataset

    batches = make_dataset(examples, size, size, batch, augment=augment, seed=0, epoch=0,
                           shuffle=augment is not None, drop_remainder=True)
    return [tuple(tf.identity(t) for t in b) for b in batches]


def train_step(model, heads, size: int):
    """The trainer's step on ``model`` (YOLO loss, Adam at 1e-4, its state built now), traced
    once: ``step(images, boxes, classes)`` returns the total loss."""
    import keras
    import tensorflow as tf

    from workbench.network.keras_model import run_heads
    from workbench.train.loss import yolo_loss

    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)

    @tf.function(autograph=False)
    def step(images, boxes, classes):
        with tf.GradientTape() as tape:
            parts = yolo_loss(run_heads(model, images, training=True), boxes, classes,
                              heads, size, size)
        grads = tape.gradient(parts["total"], model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return parts["total"]

    return step


def timed_steps(steps: int, step, batch: Callable[[int], tuple[Any, ...]]) -> list[float]:
    """Seconds of each of ``steps`` steps on ``batch(i)``, fetching the batch included."""
    times = []
    for i in range(steps):
        t0 = time.perf_counter()
        float(step(*batch(i)))
        times.append(time.perf_counter() - t0)
    return times


def alternate(rounds: int, run_a: Callable[[], list[float]], run_b: Callable[[], list[float]]
              ) -> tuple[list[float], list[float]]:
    """The step times of ``rounds`` blocks of A and of B, run A B A B."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a += run_a()
        b += run_b()
    return a, b


def report(args: argparse.Namespace, a: list[float], b: list[float], names: tuple[str, str],
           ratio_note: str, machine: str = "") -> None:
    """Print the median step of A and of B (ms/step, images/s) and the ratio A/B."""
    medians = statistics.median(a), statistics.median(b)
    print(f"{args.template} at {args.size}x{args.size}, batch {args.batch}, {len(a)} steps each, "
          f"{os.cpu_count()} CPUs{machine}")
    width = max(len(name) for name in names)
    for letter, name, m in zip("AB", names, medians, strict=True):
        print(f"  {letter} {name:<{width}} : {m * 1000:8.1f} ms/step  "
              f"{args.batch / m:6.1f} images/s")
    print(f"  ratio A/B = {medians[0] / medians[1]:.3f}  ({ratio_note})")
