"""`workbench detect SRC --ray [ADDRESS]`: the detect verb's run spread over a Ray cluster.

Same arguments, sinks and closing lines as the local run (`commands/detect.py`): the same
``run_detection`` with ``workbench.detect.ray_runner.RayRunner`` as its runner. Ctrl+C stops this job (the cluster keeps running),
keeps what was written and writes the collected COCO/CSV results of the finished images
(published to --out like a finished run, its run marker saying ``"complete": false``).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from workbench.detect.config import DetectConfig
from workbench.errors import WorkbenchError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run on a Ray cluster (ray://HOST:10001 or HOST:6379; without ADDRESS "
                   "a local Ray on every core, or RAY_ADDRESS). Images must sit on storage "
                   "every node reads; needs the cluster extra (docs/scaling.md)")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="with --ray: Ray actors, each holding one model (default: one per "
                   "CPU, or per GPU share with --gpus-per-worker)")
    p.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="with --ray: GPUs each actor reserves, e.g. 1 or 0.5 (default 0: CPU)")


@contextlib.contextmanager
def _ctrl_c_sets(stop: threading.Event):
    """Ctrl+C sets ``stop`` (the run ends after the image in hand) instead of raising wherever
    the main thread is: raised inside Ray Data's iterator, on a loaded machine the interrupt
    was swallowed there and the job ran to its end. A second Ctrl+C raises at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def wants_ray(args: argparse.Namespace) -> bool:
    """True with --ray; the Ray-only options without it are a mistake worth one line."""
    if args.ray is None and (args.workers is not None or args.gpus_per_worker):
        raise WorkbenchError("--workers and --gpus-per-worker need --ray")
    return args.ray is not None


def run_on_ray(args: argparse.Namespace, config: DetectConfig, paths: list[Path], naming,
               folder=None) -> int:
    """``folder``: the run's ``workbench.detect.sinks.RunFolder`` (--out checked), or None."""
    from workbench.darknet.validate import check_bundle
    from workbench.detect.detector import parse_size
    from workbench.detect.ray_runner import RayRunner, RaySettings
    from workbench.detect.run import run_detection
    from workbench.progress import ProgressBar

    # the local run's checks and messages, here, before any node loads the model
    size = config.size
    names = check_bundle(config.model, *(parse_size(size) if size else (None, None))).class_names
    settings = RaySettings(address=args.ray or None, workers=args.workers,
                           gpus_per_worker=args.gpus_per_worker,
                           verbose=getattr(args, "verbose", False))
    runner = RayRunner(config.model, settings)
    runner.connect()  # a bad address fails here, before anything is written
    sinks = _sinks(args, names, naming, folder)
    stop = threading.Event()
    with ProgressBar("detect", len(paths)) as bar, _ctrl_c_sets(stop):
        try:
            summary = run_detection(config, paths, sinks, lambda done, _total: bar.update(done),
                                    cancel=stop, runner=runner)
            if stop.is_set():
                raise KeyboardInterrupt
        except KeyboardInterrupt:  # the sinks kept what the finished images gave
            print(f"cancelled after {bar.done} of {len(paths)} images"
                  + (f"; their results are in {args.out}" if args.out else ""), file=sys.stderr)
            raise
    summary.seconds = runner.summary.seconds  # the job's time, as the cluster saw it
    for error in summary.errors:
        print(f"skipped: {error}", file=sys.stderr)
    for line in summary.problems:  # decoder warnings, caught per image on the workers
        print(f"warning: {line}", file=sys.stderr)
    done = summary.images - summary.skipped
    print(f"{done} images, {summary.detections} detections, "
          f"{summary.images_per_second:.1f} images/s"
          + (f", {summary.skipped} skipped" if summary.skipped else "")
          + (f"; written to {args.out} ({args.format})" if args.out else ""))
    for line in runner.summary.lines():
        print(line)
    return 0 if done else 1


def _sinks(args: argparse.Namespace, names: list[str], naming, folder) -> list:
    """The --format writer, the annotated images and the --out folder; or the printed lines."""
    from workbench.detect.sinks import LinesSink, folder_sinks

    if folder is None:
        return [LinesSink(names)]
    return folder_sinks(folder, args.format, names, naming, save_images=args.save_images)
