"""`workbench detect SRC --model DIR`: run a Darknet model over images and write the boxes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from workbench.commands.spelling import PRECISION_ALIASES, Respell

BACKENDS = ("auto", "cpu", "cuda", "cuda-fp16", "onnxruntime", "onnxruntime-cuda", "openvino",
            "tensorflow")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
FORMATS = ("yolo", "voc", "coco", "csv")
# printed on stdout without --out: one document each; yolo and voc are one file per image
STDOUT_FORMATS = ("coco", "csv")
SPLITS = ("train", "valid", "test", "trainval")
DEFAULT_CONF = 0.25
RUN_MARKER = ".workbench-detect.json"  # in every --out folder detect made: what made it


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
    p.add_argument("--conf", type=float, default=None,
                   help="confidence threshold, objectness x class probability (default: the "
                   "threshold `workbench train` calibrated into the bundle's thresholds.json "
                   "when it has one, else 0.25)")
    p.add_argument("--nms", type=float, default=0.45,
                   help="IoU threshold of the class-aware NMS (default 0.45)")
    p.add_argument("--size", default=None, metavar="N|WxH",
                   help="network input, N or WxH, multiples of 32 "
                   "(default: the cfg's [net] width and height)")
    p.add_argument("--letterbox", action="store_true",
                   help="keep the aspect ratio (pad) instead of stretching the image")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="engine (default auto: OpenCV CUDA, onnxruntime CUDA, OpenVINO CPU, "
                   "onnxruntime CPU, OpenCV CPU, the first that runs here)")
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   type=Respell(PRECISION_ALIASES),  # train's float32... still parse
                   help="arithmetic of the engine (default auto: bf16 on OpenVINO where the "
                   "CPU has AMX or AVX-512 BF16, else fp32); bf16, fp16 and int8 run on "
                   "OpenVINO; int8 needs --calibrate (see docs/engines.md for the accuracy)")
    p.add_argument("--calibrate", metavar="DIR", help="images to calibrate int8 on (a folder or "
                   "list file of your own images; 100-300 is plenty; the result is cached)")
    p.add_argument("--batch", type=int, default=1, help="images per forward pass (default 1; "
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
                   help="also write each image with its boxes drawn to OUT/annotated/")
    p.add_argument("--every", type=int, default=1, metavar="N",
                   help="video: run on frames 0, N, 2N, ... (default 1: every frame)")
    p.add_argument("--save-video", metavar="OUT.mp4",
                   help="video: also write the video with the boxes drawn (at fps / N)")
    from .detect_ray import add_arguments as add_ray_arguments

    add_ray_arguments(p)  # --ray, --workers, --gpus-per-worker
    p.add_argument("--verbose", action="store_true",
                   help="show the engines' and Ray's own log lines (hidden by default)")
    p.set_defaults(func=run)


def _bundle(args: argparse.Namespace):
    from workbench.darknet.bundle import bundle_from_files, find_bundle
    from workbench.errors import WorkbenchError

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


def _relative(path: Path, src: Path) -> Path:
    """Where an image's outputs go under OUT: its path relative to SRC (or its list file)."""
    base = src if src.is_dir() else src.parent
    try:
        return path.resolve().relative_to(base.resolve())
    except ValueError:
        return Path(path.name)


def _split_images(src: Path, split: str) -> list[Path]:
    """The images of one split of the dataset folder ``src``, in its own layout."""
    from workbench.commands.dataset_args import split_records
    from workbench.data.folder import open_dataset
    from workbench.errors import WorkbenchError

    if not src.is_dir():
        raise WorkbenchError(f"{src}: --split needs a dataset folder as SRC")
    return [r.path for r in split_records(open_dataset(src), split)]


def output_stems(paths: list[Path], src: Path) -> dict[Path, Path]:
    """Each image's output path under OUT without a suffix: its path relative to SRC (subfolders
    mirrored), made unique so that no two images write the same file (the rule of
    ``workbench.detect.output_names``, which eval and prediction sets read back with)."""
    from workbench.detect.output_names import unique_stems

    return dict(zip(paths, unique_stems([_relative(p, src) for p in paths]), strict=True))


def _video_stems(stem: str):
    """Output name of a video frame: the video's stem and the frame index."""
    return lambda frame: Path(f"{stem}_{frame:06d}")


def run(args: argparse.Namespace) -> int:
    from workbench.detect.detector import Detector
    from workbench.detect.video import VideoWriter, is_video
    from workbench.errors import WorkbenchError

    from .anchors import parse_size_arg
    from .detect_ray import run_on_ray, wants_ray

    _check_options(args)
    to_stdout = _stdout_format(args)  # before any model loads: a refusal costs nothing
    src = Path(args.src)
    as_video = is_video(src) and not args.split
    _check_video_options(args, src, as_video)
    saver = (VideoWriter(args.save_video) if args.save_video else None)
    bundle = _bundle(args)
    _use_calibrated_conf(args, bundle)
    paths = _image_paths(args, src, as_video)
    stems = output_stems(paths, src) if args.out else {}
    # every refusal of --out before any model loads or any file is written
    output = (DetectOutput.plan(args, src, paths, stems, as_video, bundle) if args.out
              else None)
    size = parse_size_arg(args.size) if args.size else None
    if wants_ray(args):  # the same run, one Detector per Ray actor
        if as_video or args.calibrate:
            raise WorkbenchError(f"{src}: --ray runs on images without --calibrate (int8 is "
                                 "calibrated once, locally); run a video or --calibrate locally")
        return run_on_ray(args, bundle, paths, size, stems, output)
    detector = Detector(bundle, args.backend, size, args.letterbox,
                        precision=args.precision, calibrate=args.calibrate)
    summary, skipped, unit = _detect_and_write(args, detector, src, as_video, paths, stems,
                                               output, to_stdout, saver)
    _print_summary(args, src, summary, skipped, unit, detector, output, saver,
                   sys.stderr if to_stdout else sys.stdout)  # stdout holds the document
    return 0 if summary.images > summary.skipped else 1


def _check_options(args: argparse.Namespace) -> None:
    """Option combinations that cannot work, refused before anything is read."""
    from workbench.errors import WorkbenchError

    if (args.conf is not None and not 0.0 <= args.conf <= 1.0) or not 0.0 <= args.nms <= 1.0:
        raise WorkbenchError("--conf and --nms must lie between 0 and 1")
    if args.save_images and not args.out:
        raise WorkbenchError("--save-images needs --out DIR")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise WorkbenchError(f"--out {args.out}: is a file; give a folder")
    if args.exist_ok and not args.out:
        raise WorkbenchError("--exist-ok needs --out DIR")
    if args.every < 1:
        raise WorkbenchError(f"--every must be 1 or more, got {args.every}")


def _check_video_options(args: argparse.Namespace, src: Path, as_video: bool) -> None:
    from workbench.errors import WorkbenchError

    if not as_video and (args.save_video or args.every != 1):
        raise WorkbenchError(f"{src}: --every and --save-video need a video as SRC")
    if args.save_video:
        from workbench.storage.output_guard import refuse_input_as_output

        refuse_input_as_output(args.save_video, [src], "--save-video")


def _use_calibrated_conf(args: argparse.Namespace, bundle) -> None:
    """Without --conf, the model's calibrated threshold (thresholds.json), else the default."""
    if args.conf is not None:
        return
    from workbench.darknet.bundle import THRESHOLDS_FILE, read_model_conf

    calibrated = read_model_conf(bundle)
    args.conf = DEFAULT_CONF if calibrated is None else calibrated
    if calibrated is not None:
        print(f"using the model's calibrated --conf {calibrated:g} "
              f"({bundle.cfg.parent / THRESHOLDS_FILE}); pass --conf to override",
              file=sys.stderr)


def _image_paths(args: argparse.Namespace, src: Path, as_video: bool) -> list[Path]:
    from workbench.detect.pipeline import resolve_sources
    from workbench.errors import WorkbenchError

    if as_video:
        return []
    paths = _split_images(src, args.split) if args.split else resolve_sources(src)
    if not paths:
        raise WorkbenchError(f"{src}: no images found")
    return paths


def _detect_and_write(args, detector, src: Path, as_video: bool, paths: list[Path],
                      stems: dict, output, to_stdout: str | None, saver):
    """Run the detector over the images or the video, writing each result as it comes;
    (summary, skipped errors, unit). A failure drops the private output folder."""
    from workbench.detect.pipeline import RunSummary
    from workbench.detect.video import VideoSource, detect_video
    from workbench.progress import ProgressBar

    names = detector.class_names
    summary, skipped = RunSummary(), []
    keep = args.save_images or saver is not None
    video = VideoSource(src) if as_video else None
    writer = None
    try:
        if output is not None or to_stdout is not None:  # a private folder exists from here
            writer = DetectionWriter(output.open() if output is not None else None,
                                     args.format if output is not None else to_stdout, names,
                                     args.save_images and output is not None,
                                     video=src.name if as_video else None)
        if video is not None:
            total, unit = video.kept(args.every), "frames"
            if saver is not None:
                saver.fps = video.fps / args.every
            results = detect_video(detector, src, args.conf, args.nms, every=args.every,
                                   batch=args.batch, summary=summary, keep_images=keep,
                                   video=video)
            frame_stem = _video_stems(src.stem)
        else:
            total, unit = len(paths), "images"
            results = detector.detect_many(paths, args.conf, args.nms, batch=args.batch,
                                           summary=summary, keep_images=keep)
        with ProgressBar("detect", total, unit=unit) as bar:
            for result in results:
                bar.update(summary.images, max(total, summary.images))
                if not result.ok:
                    skipped.append(result.error)
                    continue
                if saver is not None:
                    saver.write(draw_detections(result.image, result.detections, names))
                if writer is None:
                    _print_detections(result, names)
                    continue
                stem = frame_stem(result.frame) if video else stems.get(result.path)
                file_name = src.name if video else _relative(result.path, src).as_posix()
                writer.add(result, file_name, stem)
    except BaseException as exc:
        if saver is not None:
            saver.abort()
        if output is not None:
            output.discard(exc)  # nothing of a failed run reaches OUT
        raise
    finally:
        if video is not None:
            video.close()
    if saver is not None:
        saver.close()
    if writer is not None:
        _close_writer(writer, output)
    return summary, skipped, unit


def _close_writer(writer, output) -> None:
    """Write the run's files that need every image (classes.txt, COCO, CSV), then publish."""
    try:
        writer.close()
        if output is not None:
            output.finish()
    except BaseException as exc:
        if output is not None:
            output.discard(exc)
        raise


def _stdout_format(args: argparse.Namespace) -> str | None:
    """The format printed on stdout instead of the default lines (None: those lines), or
    WorkbenchError for a --format that cannot go to stdout. Sets the --out default (yolo)."""
    from workbench.errors import WorkbenchError

    if args.out:
        args.format = args.format or "yolo"
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


def _print_summary(args, src: Path, summary, skipped: list, unit: str, detector, output,
                   saver, stream) -> None:
    """Skipped images and decoder warnings (stderr), then what was done and on which
    engine (``stream``: stderr when stdout carries a --format document)."""
    for error in skipped:
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


def _print_detections(result, names: list[str]) -> None:
    d = result.detections
    where = f"{result.path}#{result.frame}" if result.frame is not None else str(result.path)
    for (x1, y1, x2, y2), score, c in zip(d.boxes.tolist(), d.scores.tolist(),
                                           d.class_ids.tolist(), strict=True):
        name = names[c] if c < len(names) else str(c)
        print(f"{where}\t{name}\t{score:.4f}\t{x1:.1f}\t{y1:.1f}\t{x2:.1f}\t{y2:.1f}")


class DetectOutput:
    """How a run reaches ``--out``: built in a private folder beside OUT and published whole
    by one rename (OUT new, empty, or an earlier run of the same source, which it replaces),
    or written into OUT as it goes (``--exist-ok`` on another non-empty folder).

    ``plan`` only checks (nothing is written); ``open`` returns the folder to write into;
    ``finish`` writes the run marker and publishes; ``discard`` drops a failed run.
    """

    def __init__(self, out: Path, state: tuple[str, bytes | None], marker: dict,
                 earlier: dict | None) -> None:
        self.out, self.state, self.marker, self.earlier = out, state, marker, earlier
        self.adding = state[0] in ("other", "link") or (state[0] == "marked"
                                                          and earlier is not None
                                                          and not _same_run(earlier, marker))
        self.replaces = state[0] == "marked" and not self.adding
        self.staged = None

    @classmethod
    def plan(cls, args: argparse.Namespace, src: Path, paths: list[Path],
             stems: dict[Path, Path], as_video: bool, bundle) -> DetectOutput:
        """The checks of --out: no label file of SRC written over, no silent mix of runs."""
        import uuid

        from workbench.errors import WorkbenchError
        from workbench.storage.output_guard import folder_state

        out = Path(args.out)
        state = folder_state(out, RUN_MARKER)
        if state[0] != "absent" and not as_video:  # a new folder holds no label file
            _refuse_label_overwrite(out, src, paths, stems, args.format)
        marker = {"made_by": "workbench detect", "source": str(src.resolve()),
                  "split": args.split, "format": args.format, "model": str(bundle.cfg),
                  "run": uuid.uuid4().hex}
        earlier = _read_marker(state[1]) if state[0] == "marked" else None
        if state[0] == "marked" and earlier is None:
            state = ("other", None)  # a marker we cannot read is not ours to replace
        plan = cls(out, state, marker, earlier)
        if plan.adding and not args.exist_ok:
            what = (f"holds the output of an earlier detect of {earlier['source']}"
                    + (f" --split {earlier['split']}" if earlier.get("split") else "")
                    + (" and others" if earlier.get("mixed") else "")
                    if earlier is not None else "is a link to a folder" if state[0] == "link"
                    else f"is not empty and is not an earlier `workbench detect` run of {src}")
            raise WorkbenchError(f"{out}: {what}; choose another folder, or add --exist-ok to "
                                 "add this run's files to it")
        return plan

    def open(self) -> Path:
        from workbench.storage.output_guard import StagedFolder

        if self.adding:
            return self.out
        self.staged = StagedFolder(self.out, RUN_MARKER, self.state)
        return self.staged.path

    def finish(self, complete: bool = True) -> None:
        """Write the marker and put the run in place; WorkbenchError when another run
        created OUT meanwhile (this run's files are dropped then)."""
        import json

        from workbench.storage.atomic import atomic_write_text

        if self.staged is not None:
            self.marker["complete"] = complete
            atomic_write_text(self.staged.path / RUN_MARKER,
                              json.dumps(self.marker, indent=1) + "\n")
            self.staged.publish()
        elif self.earlier is not None:  # added to an earlier run: never replaced as one again
            added = self.earlier.setdefault("added", [])
            added.append({k: self.marker[k] for k in ("source", "split", "format", "run")})
            self.earlier["mixed"] = True
            atomic_write_text(self.out / RUN_MARKER, json.dumps(self.earlier, indent=1) + "\n")

    def discard(self, error: BaseException | None = None) -> None:
        """Drop a failed run's private folder; an OSError raised while writing it names the
        file as it would have been in OUT (the private folder's name means nothing to the
        user and is gone now)."""
        if self.staged is None:
            return
        if isinstance(error, OSError):
            for attr in ("filename", "filename2"):
                name = getattr(error, attr)
                if isinstance(name, str) and Path(name).is_relative_to(self.staged.path):
                    setattr(error, attr, str(self.out / Path(name).relative_to(
                        self.staged.path)))
        self.staged.discard()


def _read_marker(data: bytes | None) -> dict | None:
    """A run marker's contents, None when it is not one detect wrote."""
    import json

    try:
        marker = json.loads(data or b"")
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(marker, dict) or marker.get("made_by") != "workbench detect":
        return None
    return marker


def _same_run(earlier: dict, marker: dict) -> bool:
    """OUT holds only an earlier run of this source (and split): a rerun replaces it."""
    return (not earlier.get("mixed") and earlier.get("source") == marker["source"]
            and earlier.get("split") == marker["split"])


def _planned_files(out: Path, stems: dict[Path, Path], fmt: str) -> list[Path]:
    """The label-like files a run writes under ``out`` (not its annotated images)."""
    suffix = {"yolo": ".txt", "voc": ".xml"}.get(fmt)
    files = [_with_suffix(out / stem, suffix) for stem in stems.values()] if suffix else []
    fixed = {"yolo": ["classes.txt"], "coco": ["detections.json", "images.json"],
             "csv": ["detections.csv"]}.get(fmt, [])
    return files + [out / name for name in fixed]


def _source_label_files(src: Path, paths: list[Path]) -> list[Path]:
    """Where SRC's labels are (or would be): each image's label files in SRC's layout, its
    class lists, split lists and COCO files (a list file or an image: labels beside). SRC
    may be the image folder of a larger data set (``ds/images/train``, ``VOC/JPEGImages``):
    the labels Ultralytics' and the VOC devkit's rules give its images count too."""
    from workbench.data.layouts import CLASS_FILES, LABEL_SUFFIXES, Layout, detect_layout
    from workbench.data.ultralytics import image_to_label

    if src.is_dir():
        layout = detect_layout(src)
        images = layout.images()
        folders = {layout.root, *([layout.label_root] if layout.label_root else [])}
        extra = [*layout.split_files().values(), *layout.root.glob("*.json")]
    else:
        layout = Layout("beside", src.resolve().parent)
        images = [p.resolve() for p in paths]
        folders, extra = {p.parent for p in images}, []
    extra += [folder / name for folder in folders for name in CLASS_FILES]
    labels = [layout.label_path(p, s) for p in images for s in LABEL_SUFFIXES]
    for image in images:  # the rules of the data set SRC may be a part of; cheap, no scan
        posix = image.as_posix()
        if "/images/" in posix:
            labels.append(Path(image_to_label(posix) + ".txt"))
        if "/JPEGImages/" in posix:
            head, tail = posix.rsplit("/JPEGImages/", 1)
            labels.append(_with_suffix(Path(head, "Annotations", tail).with_suffix(""), ".xml"))
    return labels + extra


def _refuse_label_overwrite(out: Path, src: Path, paths: list[Path], stems: dict[Path, Path],
                            fmt: str) -> None:
    """WorkbenchError when a file this run would write under ``out`` is (or would become)
    a label file of SRC: the same folder and name, or the same file through a link."""
    from workbench.errors import WorkbenchError
    from workbench.storage.output_guard import file_id

    labels = _source_label_files(src, paths)
    folder_ids: dict[Path, tuple[int, int] | None] = {}

    def slot(path: Path):  # (folder's id, name): also matches a label not written yet
        if path.parent not in folder_ids:
            folder_ids[path.parent] = file_id(path.parent)
        return folder_ids[path.parent], path.name

    slots = {slot(p) for p in labels}
    existing = {file_id(p) for p in labels} - {None}
    for planned in _planned_files(out, stems, fmt):
        where = slot(planned)
        if (where[0] is not None and where in slots) or file_id(planned) in existing:
            raise WorkbenchError(f"{planned}: is a label file of the source {src}; detect "
                                 f"--out {out} would write predictions over it. Write them to "
                                 "a prediction set (the Detect dock) or another folder")


def _with_suffix(stem: Path, suffix: str) -> Path:
    """``stem`` + ``suffix`` (Path.with_suffix would cut a stem such as "img.v2" at its dot)."""
    return stem.parent / (stem.name + suffix)


class DetectionWriter:
    """Writes each image's detections under ``out`` in one of FORMATS, atomically.

    yolo: ``stem.txt`` lines ``class cx cy w h confidence`` + ``classes.txt``;
    voc: ``stem.xml`` (a ``<score>`` per object, which labelImg ignores); coco:
    ``detections.json`` (a results list for pycocotools ``loadRes``; category_id = class
    index + 1) and ``images.json`` (image ids and categories); csv: ``detections.csv``.
    ``stem`` is the image's path under OUT without a suffix (see ``output_stems``; for a
    video, the video's stem and the frame index).

    ``video`` (the video's file name) adds the frame index: a ``frame_id`` in images.json and a
    ``frame`` column in the CSV.

    ``out`` None prints one document on stdout at ``close`` (coco or csv only, see
    ``stdout_document``) instead of writing files.
    """

    def __init__(self, out: Path | None, fmt: str, class_names: list[str], save_images: bool,
                 video: str | None = None) -> None:
        self.out, self.format, self.names, self.save_images = out, fmt, class_names, save_images
        self.video = video
        if out is None and (fmt not in STDOUT_FORMATS or save_images):
            raise ValueError(f"{fmt} detections (or drawn images) need an output folder")
        try:
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            from workbench.errors import WorkbenchError

            raise WorkbenchError(f"{out}: cannot create the output folder: {exc}") from None
        self.rows: list[dict] = []
        self.images: list[tuple[str, object]] = []
        self.frames: list[int | None] = []

    def add(self, result, file_name: str, stem: Path) -> None:
        from workbench.formats.voc import format_voc
        from workbench.formats.yolo import format_yolo_detections
        from workbench.labels.dataset import Box, ImageRecord
        from workbench.storage.atomic import atomic_write_bytes, atomic_write_text

        d = result.detections
        boxes = [Box(*b, class_id=c) for b, c in zip(d.boxes.tolist(), d.class_ids.tolist(),
                                                      strict=True)]
        if self.format in ("yolo", "voc"):  # one file per image (never to stdout)
            target = self.out / stem
            target.parent.mkdir(parents=True, exist_ok=True)
        if self.format == "yolo":
            atomic_write_text(_with_suffix(target, ".txt"), format_yolo_detections(
                boxes, d.scores.tolist(), result.width, result.height))
        elif self.format == "voc":
            atomic_write_bytes(_with_suffix(target, ".xml"), format_voc(
                boxes, self.names, result.path, result.width, result.height,
                scores=d.scores.tolist()))  # <score>: eval ranks the detections by it
        else:
            image_id = len(self.images) + 1
            self.images.append((file_name, ImageRecord(result.path, result.width,
                                                       result.height)))
            self.frames.append(result.frame)
            for b, s in zip(boxes, d.scores.tolist(), strict=True):
                self.rows.append({"image_id": image_id, "file_name": file_name,
                                  "frame": result.frame,
                                  "width": result.width, "height": result.height,
                                  "category_id": b.class_id + 1, "class_id": b.class_id,
                                  "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1], "score": s})
        if self.save_images and result.image is not None:
            self._save_drawn(result, stem)

    def _save_drawn(self, result, stem: Path) -> None:
        import cv2

        from workbench.storage.atomic import atomic_write_bytes

        image = draw_detections(result.image, result.detections, self.names)
        target = _with_suffix(self.out / "annotated" / stem, ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if ok:
            atomic_write_bytes(target, data.tobytes())

    def close(self) -> None:
        import json

        from workbench.formats.coco import write_coco_results
        from workbench.formats.yolo import format_classes
        from workbench.storage.atomic import atomic_write_text

        if self.out is None:
            sys.stdout.write(self.stdout_document())
        elif self.format == "yolo":
            atomic_write_text(self.out / "classes.txt", format_classes(self.names))
        elif self.format == "coco":
            write_coco_results(self.out / "detections.json", self.rows)
            atomic_write_text(self.out / "images.json",
                              json.dumps(self._images_document(), indent=1) + "\n")
        elif self.format == "csv":
            atomic_write_text(self.out / "detections.csv", self._csv_text())

    def stdout_document(self) -> str:
        """What ``--format coco|csv`` prints without --out. coco: one self-contained COCO
        document, images.json's images and categories with the detections as annotations
        (each with its score), so ``> found.json`` or ``| jq`` needs no second file to turn
        ids into names; csv: detections.csv's text."""
        import json

        if self.format == "csv":
            return self._csv_text()
        doc = self._images_document()
        doc["annotations"] = [
            {"id": i, "image_id": r["image_id"], "category_id": r["category_id"],
             "bbox": [round(float(v), 2) for v in r["bbox"]],
             "area": round(float(r["bbox"][2] * r["bbox"][3]), 2), "iscrowd": 0,
             "score": round(float(r["score"]), 6)}
            for i, r in enumerate(self.rows, start=1)]
        return json.dumps(doc, indent=1) + "\n"

    def _images_document(self) -> dict:
        """images.json: the COCO images (a video's frames with their index) and categories."""
        from workbench.formats.coco import coco_document

        doc = coco_document(self.images, self.names)
        if self.video is not None:  # one image entry per frame, in frame order
            for entry, frame in zip(doc["images"], self.frames, strict=True):
                entry["frame_id"] = frame
                entry["video"] = self.video
        return doc

    def _csv_text(self) -> str:
        import csv
        import io

        text = io.StringIO()
        w = csv.writer(text, lineterminator="\n")
        frame = ["frame"] if self.video is not None else []
        w.writerow(["image", *frame, "width", "height", "class_id", "class_name", "score",
                    "x1", "y1", "x2", "y2"])
        for r in self.rows:
            x, y, bw, bh = r["bbox"]
            c = r["class_id"]
            w.writerow([r["file_name"], *([r["frame"]] if frame else []), r["width"],
                        r["height"], c, self.names[c] if c < len(self.names) else c,
                        f"{r['score']:.6f}", f"{x:.2f}", f"{y:.2f}", f"{x + bw:.2f}",
                        f"{y + bh:.2f}"])
        return text.getvalue()


def draw_detections(image, detections, names: list[str]):
    """A copy of the BGR ``image`` with each box and its class and score drawn."""
    import cv2

    image = image.copy()
    d = detections
    for (x1, y1, x2, y2), score, c in zip(d.boxes.astype(int).tolist(), d.scores.tolist(),
                                           d.class_ids.tolist(), strict=True):
        colour = tuple(int(v) for v in _palette(c))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        label = f"{names[c] if c < len(names) else c} {score:.2f}"
        cv2.putText(image, label, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)
    return image


def _palette(class_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class (golden-angle hues)."""
    import colorsys

    r, g, b = colorsys.hsv_to_rgb((class_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)
