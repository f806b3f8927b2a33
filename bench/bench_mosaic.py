"""Input pipeline speed with and without mosaic, against the model's own training rate.

    python3 bench/bench_mosaic.py [--data DATASET] [--size 416] [--batch 8] [--batches 12]

Reads DATASET's labeled images (default: 64 synthetic 416x416 ones written to a temporary
folder; BCCD: the folder bench_bccd.py writes, bench/out/bccd*/data) through
``workbench.train.data.make_dataset`` five ways, in blocks that alternate A B C D E A ...:
A single images with the cfg's augmentation (jitter crop, flip, HSV), B mosaics of four,
C mosaics at multi-scale +-30 %, D single images with copy-paste 0.5 (each object copied to
its mirrored place with chance 0.5), E mosaics with copy-paste 0.5. Each prints images/s
through the pipeline alone (decoding, augmenting, batching; no model). Then the training
step on in-memory batches (model, loss, Adam) gives the rate the pipeline has to keep up with
on the same cores: a pipeline at least that fast does not starve the model (the issue's rule).
The load average is printed: another job on the 2 cores slows every figure.
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
    p.add_argument("--data", type=Path, help="a labeled data set folder")
    p.add_argument("--template", default="yolov3-tiny")
    p.add_argument("--size", type=int, default=416)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=12, help="batches per timed block")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    import tensorflow as tf

    from bench._training_setup import train_step
    from workbench.darknet.cfg import customize
    from workbench.data.folder import open_dataset
    from workbench.data.synth import make_demo_dataset
    from workbench.network.keras_model import build_model, heads_info
    from workbench.train.augment import AugmentSettings
    from workbench.train.data import examples_from_records, make_dataset, split_records
    from workbench.train.loop import resolve_template
    from workbench.train.mosaic import MosaicSettings

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or make_demo_dataset(Path(tmp) / "data", images=64, seed=1, size=416,
                                              valid_fraction=0.0)
        dataset = open_dataset(root)
        records, _ = split_records(dataset, valid_fraction=0.0)
        names = dataset.classes.names
        examples = examples_from_records(records, len(names))
        cfg = customize(resolve_template(args.template), len(names), args.size, args.size)
        augment = AugmentSettings.from_cfg(cfg)
        kinds = {"A single images + augment": {},
                 "B mosaic": {"mosaic": MosaicSettings()},
                 "C mosaic, multi-scale 0.3": {"mosaic": MosaicSettings(), "multiscale": 0.3},
                 "D single + copy-paste 0.5": {"copy_paste": 0.5},
                 "E mosaic + copy-paste 0.5": {"mosaic": MosaicSettings(), "copy_paste": 0.5}}
        times: dict[str, list[float]] = {k: [] for k in kinds}
        epoch = 0
        for round_ in range(args.rounds + 1):  # the first round warms up, not counted
            for name, kw in kinds.items():
                epoch += 1
                ds = make_dataset(examples, args.size, args.size, args.batch, augment=augment,
                                  seed=0, epoch=epoch, shuffle=True, drop_remainder=True, **kw)
                it = iter(ds.take(args.batches))
                next(it)  # the first batch fills the prefetch buffer: not the steady rate
                t0 = time.perf_counter()
                count = sum(1 for _ in it)
                if round_:
                    times[name].append(count * args.batch / (time.perf_counter() - t0))
        batches = list(make_dataset(examples, args.size, args.size, args.batch, augment=augment,
                                    drop_remainder=True).take(3))
        model = build_model(cfg, args.size, args.size)
        step = train_step(model, heads_info(cfg), args.size)
        float(step(*batches[0]))  # traced
        rates = []
        for i in range(args.rounds * 2):
            t0 = time.perf_counter()
            float(step(*batches[i % len(batches)]))
            rates.append(args.batch / (time.perf_counter() - t0))

    print(f"{len(records)} images from {root}, {args.template} at {args.size}, batch "
          f"{args.batch}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"TensorFlow {tf.__version__}")
    model_rate = statistics.median(rates)
    for name, values in times.items():
        rate = statistics.median(values)
        print(f"  {name:<28}: {rate:7.1f} images/s through the pipeline  "
              f"({rate / model_rate:.2f}x the training step's rate)")
    print(f"  training step (in memory)   : {model_rate:7.1f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
