"""Training step time with the default reach (scale_x_y 2: three cells per box) against YOLOv3's
(scale_x_y 1: one cell), the same model and batches in one process.

    python3 bench/bench_train_reach.py [--template yolov3-tiny] [--size 416] [--batch 8]

`workbench train` writes ``scale_x_y=2`` into a template's [yolo] sections that have none: the
loss then also assigns each box to the two neighbour cells nearest its centre and decodes the
centres at twice the reach. A and B run the trainer's step (YOLO loss, Adam) on the same
batches held in memory, with the trainer's other defaults (iou_thresh 0.213) on both sides;
blocks of steps alternate A B A B after a warm-up of each, medians per step. The issue's
rule: the training throughput at most 15 % below the recipe before (ratio <= 1.15).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _training_setup as training  # noqa: E402 - after the path


def main() -> int:
    args = training.parse_options(__doc__, steps=4, rounds=4)

    from workbench.network.keras_model import build_model
    from workbench.train.augment import AugmentSettings
    from workbench.train.settings import DEFAULT_ANCHOR_IOU, DEFAULT_SCALE_XY

    size, batch, steps = args.size, args.batch, args.steps
    with tempfile.TemporaryDirectory() as tmp:
        cfg, heads, examples = training.demo_training_data(args, Path(tmp), images=batch * steps)
        in_memory = training.batches_in_memory(examples, size, batch,
                                               AugmentSettings.from_cfg(cfg))
        model = build_model(cfg, size, size)

        def step_with(scale_xy: float):
            return training.train_step(model, [dataclasses.replace(
                h, scale_xy=scale_xy, iou_thresh=DEFAULT_ANCHOR_IOU) for h in heads], size)

        wide, plain = step_with(DEFAULT_SCALE_XY), step_with(1.0)

        def run(step):
            return lambda: training.timed_steps(steps, step, lambda i: in_memory[i])

        run(wide)()  # warm up: trace both steps
        run(plain)()
        a, b = training.alternate(args.rounds, run(wide), run(plain))
    training.report(args, a, b, (f"scale_x_y {DEFAULT_SCALE_XY:g} (default)", "scale_x_y 1"),
                    "target <= 1.15")
    return 0


if __name__ == "__main__":
    sys.exit(main())
