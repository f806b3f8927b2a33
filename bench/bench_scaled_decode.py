"""Large JPEGs decoded at a reduced DCT scale for detection (issue 24, part 6), in one run:

1. decode ms per image, full vs reduced, on a BCCD photo as it is (640x480: nothing may
   change) and upscaled to 1920x1440 and 3264x2448 (cv2, quality 90): what ``detect`` did
   (``load_bgr``), what it does now (``load_bgr_scaled``: OpenCV's IMREAD_REDUCED_COLOR_r),
   and the other ways to get the same pixels: simplejpeg (``min_width``/``min_height``; it
   may pick a finer M/8 scale), PIL's draft mode, PyTurboJPEG (needs the system libturbojpeg);
   each also with the resize to the network input (what the pipeline pays per image);
2. ``detect`` images/s, full vs scaled decoding, on BCCD test photos upscaled 3x and as they are;
3. agreement: the same model's detections, full vs scaled decoding, on BCCD's test photos
   upscaled 3x (1920x1440, labels scaled with them): mAP@0.5 when ``--bccd-model`` is a
   bundle trained on BCCD, and always the boxes matched between the two runs (same class,
   IoU >= 0.5: how many, their mean IoU, and the count of each run's unmatched ones);
4. mAP@0.5 of the built-in demo model on ``workbench demo-data`` images made at 416, 800 and
   1600 px (decoded at 1/2, 1/4 and 1/8 for its 192x192 input), full vs scaled.

Contenders alternate (A B A B ...), figures are medians; the rule: scaled mAP within 0.5
points of full.

    python3 bench/bench_scaled_decode.py                 # ../shared datasets and models
    python3 bench/bench_scaled_decode.py --quick         # fewer images and rounds

simplejpeg and PyTurboJPEG are not dependencies: the script uses them when importable (e.g.
``pip install --target /tmp/jpegdeps simplejpeg PyTurboJPEG`` and ``--extra-path
/tmp/jpegdeps``) and says why not otherwise. Generated images go to bench/out/scaled_decode/.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "scaled_decode"
SHARED = ROOT.parent / "shared"


def median_ms(fns: dict, reps: int) -> dict[str, float]:
    """Median ms of each callable, run alternately ``reps`` times after one warm-up each."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
    return {k: 1000 * statistics.median(v) for k, v in times.items()}


def optional_decoders(extra: str | None) -> tuple[dict, list[str]]:
    """simplejpeg and PyTurboJPEG when importable (and their library loads); why not else."""
    if extra:
        sys.path.append(extra)  # after the venv: its numpy stays the one imported
    found, missing = {}, []
    try:
        import simplejpeg
        found["simplejpeg"] = simplejpeg
    except ImportError as exc:
        missing.append(f"simplejpeg: not installed ({exc})")
    try:
        from turbojpeg import TurboJPEG
        found["turbojpeg"] = TurboJPEG()
    except ImportError as exc:
        missing.append(f"PyTurboJPEG: not installed ({exc})")
    except (RuntimeError, OSError) as exc:  # the package is there, libturbojpeg is not
        missing.append(f"PyTurboJPEG: {str(exc).splitlines()[0]}")
    return found, missing


def photo(bccd: Path, size: tuple[int, int]) -> Path:
    """BCCD's first photo at ``size`` (cv2 cubic upscale, JPEG quality 90), cached."""
    src = bccd / "JPEGImages" / "BloodImage_00000.jpg"
    if size == (640, 480):
        return src
    path = OUT / f"photo_{size[0]}x{size[1]}.jpg"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        big = cv2.resize(cv2.imread(str(src)), size, interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def decode_table(bccd: Path, net: int, reps: int, extra: dict) -> None:
    from PIL import Image

    from workbench.data.images import load_bgr, load_bgr_scaled, reduction

    print(f"\n1. decode ms per image (median of {reps}, alternating), network input {net}")
    for size in ((640, 480), (1920, 1440), (3264, 2448)):
        path = photo(bccd, size)
        data = path.read_bytes()
        r = reduction(*size, net, net)

        def pil_draft(data=data, r=r, size=size):
            with Image.open(io.BytesIO(data)) as im:
                im.draft("RGB", (-(-size[0] // r), -(-size[1] // r)))
                im.load()
                return np.ascontiguousarray(np.asarray(im)[:, :, ::-1])

        buf = np.frombuffer(data, np.uint8)
        flag = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[r]
        fns = {"full: load_bgr (before)": lambda p=path: load_bgr(p),
               f"scaled: load_bgr_scaled (1/{r})": lambda p=path: load_bgr_scaled(p, net, net)[0],
               "cv2.imdecode full (bytes)": lambda b=buf: cv2.imdecode(b, cv2.IMREAD_COLOR),
               f"cv2.imdecode REDUCED (1/{r}, bytes)": lambda b=buf, f=flag: cv2.imdecode(b, f),
               f"PIL draft (1/{r}, bytes)": pil_draft}
        if "simplejpeg" in extra:
            sj = extra["simplejpeg"]
            fns["simplejpeg min_width/height"] = (
                lambda d=data, sj=sj: sj.decode_jpeg(d, "BGR", min_width=net, min_height=net))
            fns[f"simplejpeg (1/{r}, bytes)"] = (
                lambda d=data, r=r, s=size, sj=sj: sj.decode_jpeg(
                    d, "BGR", min_width=-(-s[0] // r), min_height=-(-s[1] // r)))
        if "turbojpeg" in extra:
            tj = extra["turbojpeg"]
            fns[f"PyTurboJPEG (1/{r}, bytes)"] = (
                lambda d=data, r=r, tj=tj: tj.decode(d, scaling_factor=(1, r)))
        shapes = {k: fn().shape[1::-1] for k, fn in fns.items()}
        ms = median_ms(fns, reps)
        resize = {k: (lambda fn=fn: cv2.resize(fn(), (net, net), interpolation=cv2.INTER_LINEAR))
                  for k, fn in fns.items()}
        ms_resized = median_ms(resize, reps)
        full = ms["full: load_bgr (before)"]
        full_resized = ms_resized["full: load_bgr (before)"]
        print(f"  {size[0]}x{size[1]} ({len(data) // 1024} KiB): ratio 1/{r}")
        for k in fns:
            w, h = shapes[k]
            print(f"    {k:36s} {ms[k]:7.2f} ms ({full / ms[k]:4.2f}x)   + resize "
                  f"{ms_resized[k]:7.2f} ms ({full_resized / ms_resized[k]:4.2f}x)   {w}x{h}")


def upscaled_bccd(bccd: Path, factor: int, count: int | None):
    """BCCD's test images upscaled ``factor`` times (cv2 cubic, quality 90; cached), and
    their labels scaled with them: [(path, GroundTruth)], the class names."""
    from workbench.data.folder import open_dataset
    from workbench.evaluation.evaluate import GroundTruth

    dataset = open_dataset(bccd)
    records = dataset.split["test"][:count]
    folder = OUT / f"bccd_x{factor}"
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for record in records:
        path = folder / record.path.name
        if factor == 1:
            path = record.path
        elif not path.is_file():
            image = cv2.imread(str(record.path))
            big = cv2.resize(image, (image.shape[1] * factor, image.shape[0] * factor),
                             interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(path), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
        truth = GroundTruth.from_boxes(record.boxes)
        pairs.append((path, GroundTruth(truth.boxes * factor, truth.class_ids,
                                        truth.difficult)))
    return pairs, dataset.classes.names


def run_images(detector, paths, full_decode: bool, conf: float, nms: float):
    """{path: detections}, images/s of one detect run."""
    start = time.perf_counter()
    found = {str(r.path): r.detections for r in
             detector.detect_many(paths, conf, nms, full_decode=full_decode)}
    return found, len(paths) / (time.perf_counter() - start)


def throughput(detector, bccd: Path, count: int, rounds: int) -> None:
    print(f"\n2. detect images/s ({detector.backend.engine}, {detector.width}x"
          f"{detector.height}; median of {rounds} alternating runs of {count} images)")
    for factor in (5, 3, 1):
        pairs, _ = upscaled_bccd(bccd, factor, count)
        paths = [p for p, _ in pairs]
        rates: dict[bool, list[float]] = {False: [], True: []}
        found: dict[bool, dict] = {}
        run_images(detector, paths, False, 0.25, 0.45)  # warm-up
        for i in range(rounds):
            for full in ((True, False) if i % 2 == 0 else (False, True)):  # A B B A ...
                found[full], rate = run_images(detector, paths, full, 0.25, 0.45)
                rates[full].append(rate)
        f, s = statistics.median(rates[True]), statistics.median(rates[False])
        paired = statistics.median(b / a for a, b in zip(rates[True], rates[False], strict=True))
        same = all(np.array_equal(found[True][k].boxes, found[False][k].boxes)
                   and np.array_equal(found[True][k].scores, found[False][k].scores)
                   for k in found[True])
        print(f"  BCCD x{factor} ({640 * factor}x{480 * factor}): full {f:6.1f} img/s, "
              f"scaled {s:6.1f} img/s: {s / f:4.2f}x (paired {paired:4.2f}x); detections "
              f"identical: {same}")


def agreement(a: dict, b: dict, iou: float = 0.5) -> tuple[int, float, int, int]:
    """(matched, mean IoU of the matched, unmatched in a, unmatched in b): greedy per image,
    highest score of ``a`` first, same class, IoU >= ``iou``."""
    from workbench.geometry.boxes import iou_matrix

    matched, ious, left_a, left_b = 0, [], 0, 0
    for key, da in a.items():
        db = b[key]
        used = np.zeros(len(db), bool)
        if len(da) and len(db):
            overlap = iou_matrix(np.asarray(da.boxes, np.float64), np.asarray(db.boxes, np.float64))
            overlap[np.asarray(da.class_ids)[:, None] != np.asarray(db.class_ids)[None, :]] = 0
            for i in np.argsort(-np.asarray(da.scores), kind="stable"):
                row = np.where(used, 0.0, overlap[i])
                j = int(np.argmax(row))
                if row[j] >= iou:
                    used[j] = True
                    matched += 1
                    ious.append(row[j])
        left_a += len(da) - int(used.sum())
        left_b += len(db) - int(used.sum())
    return matched, float(np.mean(ious)) if ious else float("nan"), left_a, left_b


def map50(found: dict, truth: dict, classes: int, to_dataset: np.ndarray | None = None) -> float:
    from workbench.evaluation.evaluate import Predictions, evaluate

    predictions = {}
    for key, d in found.items():
        ids = np.asarray(d.class_ids) if to_dataset is None else to_dataset[d.class_ids]
        keep = ids >= 0
        predictions[key] = Predictions(np.asarray(d.boxes)[keep], np.asarray(d.scores)[keep],
                                       ids[keep])
    return 100 * float(evaluate(truth, predictions, classes, iou_threshold=0.5,
                                metric="voc").map50)


def bccd_agreement(detector, bccd: Path, count: int | None, label: str,
                   scored: bool = False) -> None:
    pairs, classes = upscaled_bccd(bccd, 3, count)
    paths = [p for p, _ in pairs]
    truth = {str(p): t for p, t in pairs}
    to_dataset = np.array([classes.index(c) if c in classes else -1
                           for c in detector.class_names], np.int64)
    print(f"\n3. {label} on {len(paths)} BCCD test photos upscaled 3x (1920x1440)")
    if scored:  # the reference: the photos as they are (640x480, decoded whole either way)
        originals, _ = upscaled_bccd(bccd, 1, count)
        found, _ = run_images(detector, [p for p, _ in originals], False, 0.005, 0.45)
        print(f"  mAP@0.5 on the 640x480 originals: "
              f"{map50(found, {str(p): t for p, t in originals}, len(classes), to_dataset):.2f}")
    for conf in (0.25, 0.005):
        full, _ = run_images(detector, paths, True, conf, 0.45)
        scaled, _ = run_images(detector, paths, False, conf, 0.45)
        n, mean_iou, only_full, only_scaled = agreement(full, scaled)
        total_f = sum(len(d) for d in full.values())
        total_s = sum(len(d) for d in scaled.values())
        print(f"  conf {conf:g}: full {total_f} boxes, scaled {total_s} ({total_s - total_f:+d});"
              f" matched {n} (IoU >= 0.5, same class), mean IoU {mean_iou:.3f}; only in full "
              f"{only_full}, only in scaled {only_scaled}")
        if scored and conf == 0.005:
            mf = map50(full, truth, len(classes), to_dataset)
            ms = map50(scaled, truth, len(classes), to_dataset)
            print(f"  mAP@0.5 full {mf:.2f}, scaled {ms:.2f} ({ms - mf:+.2f} points)")


def demo_maps(count: int) -> None:
    from workbench.data.folder import open_dataset
    from workbench.data.images import reduction
    from workbench.data.synth import make_demo_dataset
    from workbench.detect.detector import Detector
    from workbench.evaluation.evaluate import GroundTruth

    detector = Detector("demo")
    print(f"\n4. demo model ({detector.width}x{detector.height}, {detector.backend.engine}) on "
          f"{count} `workbench demo-data` images per size: mAP@0.5 (conf 0.005, NMS 0.45)")
    for size in (416, 800, 1600):
        root = OUT / f"demo_{size}_{count}"
        if not (root / "classes.txt").is_file():
            make_demo_dataset(root, images=count, seed=7, size=size)
        dataset = open_dataset(root)
        paths = [r.path for r in dataset.images]
        truth = {str(r.path): GroundTruth.from_boxes(r.boxes) for r in dataset.images}
        full, _ = run_images(detector, paths, True, 0.005, 0.45)
        scaled, _ = run_images(detector, paths, False, 0.005, 0.45)
        n_classes = len(dataset.classes.names)
        mf, ms = map50(full, truth, n_classes), map50(scaled, truth, n_classes)
        n, mean_iou, only_full, only_scaled = agreement(
            *(dict((k, v.take(v.scores > 0.25)) for k, v in d.items()) for d in (full, scaled)))
        r = reduction(size, size, detector.width, detector.height)
        print(f"  {size}x{size} (1/{r}): mAP@0.5 full {mf:.2f}, scaled {ms:.2f} "
              f"({ms - mf:+.2f} points); boxes above 0.25 matched {n}, mean IoU {mean_iou:.3f},"
              f" only full {only_full}, only scaled {only_scaled}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bccd", type=Path, default=SHARED / "datasets" / "bccd")
    p.add_argument("--model", type=Path, default=SHARED / "models" / "yolov3-tiny-coco",
                   help="the model of parts 2 and 3 (default: yolov3-tiny COCO)")
    p.add_argument("--bccd-model", type=Path, help="a bundle trained on BCCD: part 3 also "
                   "gives its mAP@0.5, full vs scaled")
    p.add_argument("--engine", default="auto")
    p.add_argument("--extra-path", help="a folder holding simplejpeg / PyTurboJPEG")
    p.add_argument("--quick", action="store_true", help="fewer images and rounds")
    args = p.parse_args()
    from workbench.detect.detector import Detector

    reps, count, rounds, demo = (7, 12, 2, 40) if args.quick else (15, 48, 5, 100)
    extra, missing = optional_decoders(args.extra_path)
    print("optional decoders:", ", ".join(extra) or "none", *(f"\n  {m}" for m in missing))
    detector = Detector(args.model, args.engine)
    decode_table(args.bccd, detector.width, reps, extra)
    throughput(detector, args.bccd, count, rounds)
    bccd_agreement(detector, args.bccd, None, f"{args.model.name}: detections, full vs scaled")
    if args.bccd_model:
        trained = Detector(args.bccd_model, args.engine)
        bccd_agreement(trained, args.bccd, None, f"{args.bccd_model}: mAP and detections",
                       scored=True)
    demo_maps(demo)


if __name__ == "__main__":
    main()
