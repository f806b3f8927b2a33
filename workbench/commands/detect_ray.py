"""`workbench detect SRC --ray [ADDRESS]`: the detect verb's run spread over a Ray cluster.

Same arguments, writers and closing lines as the local run (`commands/detect.py`); the work
goes to `workbench/detect/ray_runner.py`. Ctrl+C stops this job (the cluster keeps running),
keeps what was written and writes the collected COCO/CSV results of the finished images
(published to --out like a finished run, its run marker saying ``"complete": false``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def wants_ray(args: argparse.Namespace) -> bool:
    """True with --ray; the Ray-only options without it are a mistake worth one line."""
    from workbench.errors import WorkbenchError

    if args.ray is None and (args.workers is not None or args.gpus_per_worker):
        raise WorkbenchError("--workers and --gpus-per-worker need --ray")
    return args.ray is not None


def run_on_ray(args: argparse.Namespace, bundle, paths: list[Path], size,
               stems: dict[Path, Path], output=None) -> int:
    """``output``: the run's ``commands.detect.DetectOutput`` (--out checked), or None."""
    from workbench.darknet.validate import check_bundle
    from workbench.detect.detector import parse_size
    from workbench.detect.pipeline import RunSummary
    from workbench.detect.ray_runner import RaySettings, RaySummary, detect_on_ray
    from workbench.progress import ProgressBar

    from .detect import DetectionWriter, _print_detections, _relative

    src = Path(args.src)
    # the local run's checks and messages, here, before any node loads the model
    names = check_bundle(bundle, *(parse_size(size) if size else (None, None))).class_names
    settings = RaySettings(address=args.ray or None, workers=args.workers,
                           gpus_per_worker=args.gpus_per_worker,
                           verbose=getattr(args, "verbose", False))
    summary, ray_summary, skipped = RunSummary(), RaySummary(), []
    results = detect_on_ray(paths, bundle, settings, backend=args.backend, size=size,
                            letterbox=args.letterbox, conf=args.conf, nms=args.nms,
                            batch=args.batch, keep_images=args.save_images,
                            precision=args.precision, summary=ray_summary)
    writer = (DetectionWriter(output.open(), args.format, names, args.save_images)
              if output is not None else None)
    try:
        with ProgressBar("detect", len(paths)) as bar:
            for result in results:
                summary.images += 1
                summary.problems += result.problems
                if not result.ok:
                    summary.skipped += 1
                    skipped.append(result.error)
                else:
                    summary.detections += len(result.detections)
                    if writer is not None:
                        writer.add(result, _relative(result.path, src).as_posix(),
                                   stems[result.path])
                    else:
                        _print_detections(result, names)
                bar.update(summary.images)
    except BaseException as exc:  # Ctrl+C or a failed job: keep what the finished images gave
        results.close()  # stops the Ray job now; a cluster we joined keeps running
        if writer is not None:
            writer.close()
            _publish_partial(output)
        if isinstance(exc, KeyboardInterrupt):
            print(f"cancelled after {summary.images} of {len(paths)} images"
                  + (f"; their results are in {args.out}" if args.out else ""), file=sys.stderr)
        raise
    if writer is not None:
        try:
            writer.close()
            output.finish()
        except BaseException as exc:
            output.discard(exc)
            raise
    for error in skipped:
        print(f"skipped: {error}", file=sys.stderr)
    for line in summary.problems:  # decoder warnings, caught per image on the workers
        print(f"warning: {line}", file=sys.stderr)
    summary.seconds = ray_summary.seconds
    done = summary.images - summary.skipped
    print(f"{done} images, {summary.detections} detections, "
          f"{summary.images_per_second:.1f} images/s"
          + (f", {summary.skipped} skipped" if summary.skipped else "")
          + (f"; written to {args.out} ({args.format})" if args.out else ""))
    for line in ray_summary.lines():
        print(line)
    return 0 if done else 1


def _publish_partial(output) -> None:
    """Put a stopped run's finished files in place; a refusal (another run created --out
    meanwhile) is one more line, not a second traceback over the first error."""
    from workbench.errors import WorkbenchError

    try:
        output.finish(complete=False)
    except (WorkbenchError, OSError) as exc:
        output.discard()
        print(f"workbench detect: {exc}", file=sys.stderr)
