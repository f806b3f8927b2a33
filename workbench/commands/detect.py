"""`workbench detect SRC --model DIR`: run a Darknet model over images and write the boxes.

The verb parses its arguments, builds a DetectConfig and the run's sinks (the --format
writer, annotated images, the video, the --out folder) and calls
``workbench.detect.run.run_detection``; with --ray, ``commands/detect_ray.py`` runs the same
on a cluster. The detection stack (numpy, OpenCV, the engines) is imported when the verb runs,
not when the CLI builds its parser.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from workbench.commands.detect_ray import add_arguments as add_ray_arguments
from workbench.commands.spelling import PRECISION_ALIASES, Respell
from workbench.detect.config import (
    DEFAULT_BATCH,
    DEFAULT_CONF,
    DEFAULT_ENGINE,
    DEFAULT_EVERY,
    DEFAULT_FORMAT,
    DEFAULT_NMS,
    DEFAULT_PRECISION,
    DEFAULT_TTA_MERGE,
    FORMATS,
    STDOUT_FORMATS,
    TTA_MERGES,
    DetectConfig,
)
from workbench.errors import WorkbenchError


class RegistryChoices:
    """Choices read from the engine registry the first time argparse looks at them.

    The registry is the one list of engines; importing it loads numpy and OpenCV (about
    0.2 s), which ``workbench --help`` and the other verbs need not pay, so the parser holds
    this instead of a tuple: ``in`` (parsing) and iteration (--help) read the registry.
    """

    def __init__(self, read: Callable[[], tuple[str, ...]]) -> None:
        self._read = read

    def _names(self) -> tuple[str, ...]:
        return self._read()

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def _engine_names() -> tuple[str, ...]:
    from workbench.detect import engines  # lazy: numpy and OpenCV, see RegistryChoices

    return engines.choices()


def _precision_names() -> tuple[str, ...]:
    from workbench.detect import engines  # lazy: numpy and OpenCV, see RegistryChoices

    return engines.precision_choices()


BACKENDS = RegistryChoices(_engine_names)
PRECISIONS = RegistryChoices(_precision_names)
SPLITS = ("train", "valid", "test", "trainval")
__all__ = ["BACKENDS", "DEFAULT_CONF", "FORMATS", "PRECISIONS", "SPLITS", "STDOUT_FORMATS",
           "add_parser", "detect_config", "run"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "detect", help="run a YOLO model on an image, a folder, a list of images or a video",
        description="Detect objects with a Darknet model (cfg + weights + names). SRC is an "
        "image, a folder (searched recursively), a text file listing image paths, or a video "
        "(mp4, avi, mkv, ...: every frame, or one in --every N). Without "
        "--out the detections are printed, one line each (image, class, score, x1 y1 x2 y2), "
        "or as one COCO JSON document or CSV with --format coco or csv (the run's summary "
        "then goes to stderr); with --out they are written in the chosen format "
        "(YOLO labels get a trailing confidence column; a video's files are named by frame "
        "index). Images whose names clash (a.jpg and a.png) are written as a_jpg, a_png. "
        "Unreadable images are skipped and listed. The engine and precision used, and why, "
        "are printed at the end.")
    p.add_argument("src", metavar="SRC", help="image, folder, list file or video")
    p.add_argument("--split", choices=SPLITS, help="SRC is a dataset folder: detect only the "
                   "images of this split (as `workbench stats` shows it)")
    p.add_argument("--model", metavar="DIR",
                   help="model bundle folder (one .cfg, .weights, .names) or 'demo'")
    p.add_argument("--cfg", help="Darknet .cfg (with --weights and --names)")
    p.add_argument("--weights", help="Darknet .weights file, or yolov3-tiny / yolov3 (after "
                   "`workbench weights fetch NAME`) or demo")
    p.add_argument("--names", help="class names, one per line")
    _add_threshold_options(p)
    p.add_argument("--size", default=None, metavar="N|WxH",
                   help="network input, N or WxH, multiples of 32 "
                   "(default: the cfg's [net] width and height)")
    p.add_argument("--letterbox", action="store_true",
                   help="keep the aspect ratio (pad) instead of stretching the image")
    add_tta_arguments(p)
    p.add_argument("--full-decode", action="store_true",
                   help="decode large JPEGs whole, as other tools do (identical results); by "
                   "default a JPEG at least twice the network input both ways is decoded at "
                   "1/2, 1/4 or 1/8 scale, several times faster, its boxes still in its own "
                   "pixels (WORKBENCH_FULL_DECODE=1: every run, the Detect dock too)")
    # a metavar, because argparse lists the choices when the argument is added otherwise
    # (that would import every engine at each CLI start); --help still lists them below
    p.add_argument("--backend", default=DEFAULT_ENGINE, choices=BACKENDS, metavar="ENGINE",
                   help="engine: %(choices)s (default auto: OpenCV CUDA, onnxruntime CUDA, "
                   "OpenVINO CPU, onnxruntime CPU, OpenCV CPU, the first that runs here)")
    p.add_argument("--precision", default=DEFAULT_PRECISION, choices=PRECISIONS,
                   metavar="PRECISION",
                   type=Respell(PRECISION_ALIASES),  # train's float32... still parse
                   help="arithmetic of the engine: %(choices)s (default auto: bf16 on OpenVINO where the "
                   "CPU has AMX or AVX-512 BF16, else fp32); bf16, fp16 and int8 run on "
                   "OpenVINO; int8 needs --calibrate (see docs/engines.md for the accuracy)")
    p.add_argument("--calibrate", metavar="DIR", help="images to calibrate int8 on (a folder or "
                   "list file of your own images; 100-300 is plenty; the result is cached)")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="images per forward pass (default 1; "
                   "helps on a GPU, not on a small CPU)")
    p.add_argument("--out", metavar="DIR", help="write detections into this folder: a new or "
                   "empty one, or an earlier detect run of the same SRC (and --split), which "
                   "is replaced whole. The run is built in a private folder beside DIR and "
                   "moved into place when complete (of two runs into one new DIR at once, "
                   "the second says DIR was created by another run, exit 2). Any other "
                   "non-empty DIR is refused unless --exist-ok; DIR never receives "
                   "predictions over SRC's own label files")
    p.add_argument("--exist-ok", action="store_true",
                   help="add this run's files to a non-empty --out that is not an earlier run "
                   "of SRC (files of the same name are replaced, the others stay)")
    p.add_argument("--format", default=None, choices=FORMATS,
                   help="output format: with --out, yolo (default), voc, coco or csv; without "
                   "--out, coco prints one JSON document (images, categories and the "
                   "detections as annotations with a score) and csv the CSV on stdout; yolo "
                   "and voc write one file per image, so they need --out")
    p.add_argument("--save-images", action="store_true",
                   help="also write each image with its boxes drawn to OUT/annotated/, at "
                   "the image's own size (so the run decodes every pixel, as --full-decode)")
    p.add_argument("--every", type=int, default=DEFAULT_EVERY, metavar="N",
                   help="video: run on frames 0, N, 2N, ... (default 1: every frame)")
    p.add_argument("--save-video", metavar="OUT.mp4",
                   help="video: also write the video with the boxes drawn (at fps / N)")
    add_ray_arguments(p)  # --ray, --workers, --gpus-per-worker
    p.add_argument("--verbose", action="store_true",
                   help="show the engines' and Ray's own log lines (hidden by default)")
    p.set_defaults(func=run)


def _add_threshold_options(p: argparse.ArgumentParser) -> None:
    """--conf, --nms and --merge-boxes: what is kept of the candidates, and where."""
    p.add_argument("--conf", type=float, default=None,
                   help="confidence threshold, objectness x class probability (default: the "
                   "threshold `workbench train` calibrated into the bundle's thresholds.json "
                   f"when it has one, else {DEFAULT_CONF:g})")
    p.add_argument("--nms", type=float, default=DEFAULT_NMS,
                   help=f"IoU threshold of the class-aware NMS (default {DEFAULT_NMS:g})")
    p.add_argument("--merge-boxes", action=argparse.BooleanOptionalAction, default=None,
                   help="NMS keeps the same boxes with the same scores but moves each to the "
                   "mean of the candidates of its class it overlaps by more than --nms, "
                   "weighted by score x IoU (YOLOv5's merge NMS): tighter boxes, higher mAP "
                   "at IoU 0.75-0.95 (docs/engines.md). Default: what `workbench train` stored "
                   "in the bundle's thresholds.json (merged when they scored better on its "
                   "validation images), else OpenCV's NMS boxes as they are")


def add_tta_arguments(p, nms: str = "--nms") -> None:
    """--tta and --tta-merge (detect, and eval --model where ``nms`` is the fixed threshold)."""
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: also run each image flipped left to right "
                   "and at a second input size (1.3 times the model's, a multiple of 32) and "
                   "merge the three passes' boxes per class before the --conf threshold; "
                   "3 to 5 times slower (docs/engines.md)")
    p.add_argument("--tta-merge", choices=TTA_MERGES, default=DEFAULT_TTA_MERGE,
                   help=f"how --tta merges the passes' boxes: nms (class-aware NMS at {nms}) "
                   "or wbf (weighted boxes fusion: overlapping boxes averaged; default "
                   f"{DEFAULT_TTA_MERGE})")


def _bundle(args: argparse.Namespace):
    from workbench.darknet.bundle import bundle_from_files, find_bundle

    files = (args.cfg, args.weights, args.names)
    if args.model and any(files):
        raise WorkbenchError("give either --model or --cfg/--weights/--names, not both")
    if args.model:
        return find_bundle(args.model)
    if not all(files):
        raise WorkbenchError("a model is needed: --model DIR (or demo), or all three of "
                             "--cfg, --weights and --names")
    from workbench.darknet.fetch import resolve_weights

    return bundle_from_files(args.cfg, resolve_weights(args.weights), args.names)


def _split_images(src: Path, split: str) -> list[Path]:
    """The images of one split of the dataset folder ``src``, in its own layout."""
    from workbench.commands.dataset_args import split_records
    from workbench.data.folder import open_dataset

    if not src.is_dir():
        raise WorkbenchError(f"{src}: --split needs a dataset folder as SRC")
    return [r.path for r in split_records(open_dataset(src), split)]


def run(args: argparse.Namespace) -> int:
    from workbench.commands.detect_ray import run_on_ray, wants_ray
    from workbench.detect.sinks import ImageNames, RunFolder, VideoNames, output_stems
    from workbench.detect.tta import load_detector
    from workbench.detect.video import VideoWriter, is_video

    _check_options(args)
    to_stdout = _stdout_format(args)  # before any model loads: a refusal costs nothing
    src = Path(args.src)
    as_video = is_video(src) and not args.split
    _check_video_options(args, src, as_video)
    saver = VideoWriter(args.save_video) if args.save_video else None
    bundle = _bundle(args)
    _use_bundle_defaults(args, bundle)
    config = detect_config(args, bundle)
    paths = _image_paths(args, src, as_video)
    stems = output_stems(paths, src) if args.out else {}
    naming = VideoNames(src) if as_video else ImageNames(stems, src)
    # every refusal of --out before any model loads or any file is written
    folder = (RunFolder.plan(Path(args.out), src, paths, stems, args.format, split=args.split,
                             model=bundle.cfg, exist_ok=args.exist_ok, as_video=as_video)
              if args.out else None)
    if wants_ray(args):  # the same run, one Detector per Ray actor
        if as_video or args.calibrate or args.tta:
            raise WorkbenchError(f"{src}: --ray runs on images without --calibrate (int8 is "
                                 "calibrated once, locally) or --tta; run a video, "
                                 "--calibrate or --tta locally")
        return run_on_ray(args, config, paths, naming, folder)
    detector = load_detector(config)
    summary, unit = _detect(args, config, detector, src, as_video, paths, naming, folder,
                            to_stdout, saver)
    _print_summary(args, src, summary, unit, detector, folder, saver,
                   sys.stderr if to_stdout else sys.stdout)  # stdout holds the document
    return 0 if summary.images > summary.skipped else 1


def detect_config(args: argparse.Namespace, model) -> DetectConfig:
    """The run's DetectConfig from the verb's arguments (``--conf`` resolved already)."""
    from .anchors import parse_size_arg

    return DetectConfig(model=model, engine=args.backend, precision=args.precision,
                        size=parse_size_arg(args.size) if args.size else None,
                        letterbox=args.letterbox, calibrate=args.calibrate, conf=args.conf,
                        nms=args.nms, merge_boxes=bool(args.merge_boxes), batch=args.batch,
                        every=args.every,
                        tta=args.tta, tta_merge=args.tta_merge,
                        keep_images=args.save_images or bool(args.save_video),
                        full_decode=args.full_decode)


def _detect(args, config: DetectConfig, detector, src: Path, as_video: bool,
            paths: list[Path], naming, folder, to_stdout: str | None, saver):
    """Run over the images or the video into the sinks; (summary, unit). A failure drops
    the private output folder."""
    from workbench.detect.run import run_detection
    from workbench.detect.video import VideoSource
    from workbench.progress import ProgressBar

    video = VideoSource(src) if as_video else None
    try:
        if video is not None and saver is not None:
            saver.fps = video.fps / config.every
        sinks = _sinks(args, detector.class_names, naming, folder, to_stdout, saver,
                       src.name if as_video else None)
        total = video.kept(config.every) if video is not None else len(paths)
        unit = "frames" if video is not None else "images"
        with ProgressBar("detect", total, unit=unit) as bar:
            summary = run_detection(config, video if video is not None else paths, sinks,
                                    lambda done, total: bar.update(done, max(total, done)),
                                    detector=detector)
    finally:
        if video is not None:
            video.close()
    return summary, unit


def _sinks(args, names: list[str], naming, folder, to_stdout: str | None, saver,
           video: str | None) -> list:
    """The run's sinks, in the order each image reaches them: the video, the --format
    writer (files, or one document on stdout), the annotated images, the --out folder last;
    or the printed lines."""
    from workbench.detect.sinks import LinesSink, VideoSink, folder_sinks, format_sink

    sinks: list = [VideoSink(saver, names)] if saver is not None else []
    if folder is None:
        sinks.append(format_sink(to_stdout, None, names, naming, video) if to_stdout
                     else LinesSink(names))
        return sinks
    return sinks + folder_sinks(folder, args.format, names, naming,
                                save_images=args.save_images, video=video)


def _check_options(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, refused before anything is read."""
    if (args.conf is not None and not 0.0 <= args.conf <= 1.0) or not 0.0 <= args.nms <= 1.0:
        raise WorkbenchError("--conf and --nms must lie between 0 and 1")
    if args.tta and args.merge_boxes:  # the TTA detector would drop it without a word
        raise WorkbenchError("--merge-boxes with --tta: test-time augmentation merges its "
                             "passes' boxes itself (--tta-merge wbf or nms)")
    if args.save_images and not args.out:
        raise WorkbenchError("--save-images needs --out DIR")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise WorkbenchError(f"--out {args.out}: is a file; give a folder")
    if args.exist_ok and not args.out:
        raise WorkbenchError("--exist-ok needs --out DIR")
    if args.every < 1:
        raise WorkbenchError(f"--every must be 1 or more, got {args.every}")


def _check_video_options(args: argparse.Namespace, src: Path, as_video: bool) -> None:
    if not as_video and (args.save_video or args.every != 1):
        raise WorkbenchError(f"{src}: --every and --save-video need a video as SRC")
    if args.save_video:
        from workbench.storage.output_guard import refuse_input_as_output

        refuse_input_as_output(args.save_video, [src], "--save-video")


def _use_bundle_defaults(args: argparse.Namespace, bundle) -> None:
    """Without --conf, the model's calibrated threshold, else the default; without
    --[no-]merge-boxes, merged boxes when the model's training found them better (both from
    its thresholds.json, read once); each taken from the bundle said on stderr."""
    if args.conf is not None and args.merge_boxes is not None:
        return
    from workbench.darknet.bundle import THRESHOLDS_FILE, read_model_defaults

    stored, where = read_model_defaults(bundle), bundle.cfg.parent / THRESHOLDS_FILE
    if args.conf is None:
        args.conf = DEFAULT_CONF if stored.conf is None else stored.conf
        if stored.conf is not None:
            print(f"using the model's calibrated --conf {stored.conf:g} ({where}); pass --conf "
                  "to override", file=sys.stderr)
    if args.merge_boxes is None:
        args.merge_boxes = bool(stored.merge_boxes)
        if args.merge_boxes:
            print(f"merging boxes as the model's training run found better ({where}); pass "
                  "--no-merge-boxes to keep NMS's boxes", file=sys.stderr)


def _image_paths(args: argparse.Namespace, src: Path, as_video: bool) -> list[Path]:
    from workbench.detect.sources import resolve_sources

    if as_video:
        return []
    paths = _split_images(src, args.split) if args.split else resolve_sources(src)
    if not paths:
        raise WorkbenchError(f"{src}: no images found")
    return paths


def _stdout_format(args: argparse.Namespace) -> str | None:
    """The format printed on stdout instead of the default lines (None: those lines), or
    WorkbenchError for a --format that cannot go to stdout. Sets the --out default (yolo)."""
    if args.out:
        args.format = args.format or DEFAULT_FORMAT
        return None
    if args.format is None:
        return None
    if args.format not in STDOUT_FORMATS:
        raise WorkbenchError(f"--format {args.format} writes one file per image: give --out "
                             "DIR (without --out, --format coco or csv prints one document, "
                             "and no --format prints one line per detection)")
    if args.ray is not None:
        raise WorkbenchError(f"--format {args.format} without --out runs locally; with --ray "
                             "give --out DIR")
    return args.format


def _print_summary(args, src: Path, summary, unit: str, detector, output, saver,
                   stream) -> None:
    """Skipped images and decoder warnings (stderr), then what was done and on which
    engine (``stream``: stderr when stdout carries a --format document)."""
    for error in summary.errors:
        print(f"skipped: {error}", file=sys.stderr)
    for line in summary.problems:  # decoder warnings, caught per image (never raw lines)
        print(f"warning: {line}", file=sys.stderr)
    done = summary.images - summary.skipped
    print(f"{done} {unit}, {summary.detections} detections, "
          f"{summary.images_per_second:.1f} {unit}/s"
          + (f", {summary.skipped} skipped" if summary.skipped else "")
          + (f"; written to {args.out} ({args.format})" if args.out else "")
          + (f" (replacing the earlier run of {src} there)" if output and output.replaces
             else "")
          + (f"; video written to {args.save_video}" if saver is not None else ""),
          file=stream)
    print(f"backend: {detector.backend.engine} ({detector.backend.reason})", file=stream)
