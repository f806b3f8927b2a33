"""`detect --ray` against the local run on one machine: what Ray costs, per job and per image.

    python3 bench/bench_ray.py [--small 16] [--large 64] [--rounds 3] [--cpus 2]

Same model (yolov3-tiny at 416, random weights with bench_detect's background prior), same
images (workbench.data.synth), same engine (--backend auto) side by side in one run. A local Ray of
``--cpus`` CPUs is started once (its start-up is timed and reported apart: a cluster pays it
once, not per job). Then rounds alternate local, Ray with 1 actor, Ray with one actor per CPU,
each on a small and a large job; medians reported. The fixed cost of a job (actors starting,
the model shipped and loaded) and the cost per image are separated by the two job sizes:
per image = (T(large) - T(small)) / (large - small). On a 2-CPU machine this shows overhead,
not speed-up: the local run already keeps both cores busy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_detect import SIZE, make_model  # noqa: E402

from workbench.data.images import list_images  # noqa: E402
from workbench.data.synth import make_demo_dataset  # noqa: E402
from workbench.detect.detector import Detector  # noqa: E402
from workbench.detect.ray_runner import RaySettings, detect_on_ray  # noqa: E402


def local_run(bundle, paths) -> int:
    # a fresh Detector per job, as `workbench detect` builds one per command
    detector = Detector(bundle, "auto", size=SIZE)
    return sum(len(r.detections) for r in detector.detect_many(paths) if r.ok)


def ray_run(bundle, paths, workers: int) -> int:
    results = detect_on_ray(paths, bundle, RaySettings(workers=workers), backend="auto",
                            size=(SIZE, SIZE))
    return sum(len(r.detections) for r in results if r.ok)


def timed(fn, *args) -> tuple[float, int]:
    start = time.perf_counter()
    found = fn(*args)
    return time.perf_counter() - start, found


def main() -> None:
    import ray

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=16)
    parser.add_argument("--large", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_ray_"))
    paths = list_images(make_demo_dataset(tmp / "images", images=args.large, seed=0, size=SIZE))
    jobs = {"small": paths[:args.small], "large": paths}
    bundle = make_model(tmp / "model", objectness_bias=-8.0)

    t0 = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - t0
    contenders = {
        "local": lambda p: local_run(bundle, p),
        "ray, 1 actor": lambda p: ray_run(bundle, p, 1),
        f"ray, {args.cpus} actors": lambda p: ray_run(bundle, p, args.cpus),
    }
    engine = Detector(bundle, "auto", size=SIZE).backend.name
    print(f"yolov3-tiny {SIZE}x{SIZE}, engine {engine}, Ray {ray.__version__} local with "
          f"{args.cpus} CPUs (started in {ray_start:.1f} s, once)")
    found = {}
    for name, fn in contenders.items():  # warm up: imports, first ONNX export (cached after)
        found[name] = fn(jobs["small"])
    assert len(set(found.values())) == 1, f"detections differ: {found}"
    times = {(name, job): [] for name in contenders for job in jobs}
    for _ in range(args.rounds):
        for job, p in jobs.items():
            for name, fn in contenders.items():
                seconds, n = timed(fn, p)
                times[(name, job)].append(seconds)
                found[(name, job)] = n
    for job in jobs:
        assert len({found[(name, job)] for name in contenders}) == 1, "detections differ"
    ray.shutdown()

    med = {k: statistics.median(v) for k, v in times.items()}
    span = args.large - args.small
    print(f"{'':16s} {args.small:>3d} images  {args.large:>3d} images   per image   fixed/job")
    per_image, fixed = {}, {}
    for name in contenders:
        small, large = med[(name, "small")], med[(name, "large")]
        per_image[name] = (large - small) / span
        fixed[name] = small - per_image[name] * args.small
        print(f"{name:16s} {small:8.2f} s  {large:8.2f} s  {per_image[name] * 1e3:7.1f} ms "
              f"{fixed[name]:8.2f} s")
    for name in list(contenders)[1:]:
        extra = (per_image[name] - per_image["local"]) * 1e3
        print(f"{name}: {med[(name, 'large')] / med[('local', 'large')]:.2f}x the local time on "
              f"{args.large} images; {extra:+.1f} ms per image, "
              f"{fixed[name] - fixed['local']:+.2f} s per job over the local run")


if __name__ == "__main__":
    main()
