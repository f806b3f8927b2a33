"""Engine x precision -> ms/image, mAP@0.5 and detections matched to fp32: the table behind
``--precision auto`` (docs/engines.md).

For one model and one labeled image set: every engine/precision runs the same images; ms/image
is the median batch-1 forward on pre-made blobs (engines alternate image by image); mAP@0.5 is
VOC all-point AP over detections at conf 0.005 (``workbench eval``'s default metric); "matched"
counts the OpenCV fp32 detections (conf 0.25, NMS 0.45) that the engine reproduces with the same
class, IoU >= 0.9 and a score within 0.05 (``workbench.detect.agreement``).

    python3 bench/bench_precision.py --model demo --data DEMO_FOLDER
    python3 bench/bench_precision.py --model BCCD_BUNDLE --data ../shared/datasets/bccd \\
        --list ../shared/datasets/bccd/ImageSets/Main/test.txt --calibrate-list \\
        ../shared/datasets/bccd/ImageSets/Main/train.txt

``--data`` is a dataset folder (YOLO/VOC/COCO, opened as the GUI does) or a VOC devkit
(JPEGImages/ + Annotations/, ``--list`` naming the image ids). Class names are matched to the
model's by name; a model without the data set's classes gets no mAP (only "matched").
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "precision"
ENGINES = [("cpu", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "bf16"),
           ("openvino", "fp16"), ("openvino", "int8")]


def load_ground_truth(data: Path, ids_file: Path | None, class_names: list[str]):
    """(image paths, {path: GroundTruth}) with class ids in the model's order (None: no mAP)."""
    from workbench.evaluation.inputs import GroundTruth
    from workbench.labels.dataset import Box

    if (data / "JPEGImages").is_dir():
        from workbench.formats.voc import read_voc

        ids = ([line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
               if ids_file else sorted(p.stem for p in (data / "JPEGImages").glob("*.jpg")))
        paths = [data / "JPEGImages" / f"{i}.jpg" for i in ids]
        gt = {}
        for i, path in zip(ids, paths, strict=True):
            ann = read_voc(data / "Annotations" / f"{i}.xml")
            boxes = [Box(o.x1, o.y1, o.x2, o.y2, class_names.index(o.name), o.difficult)
                     for o in ann.objects if o.name in class_names]
            if len(boxes) < len(ann.objects):
                return paths, None  # the model does not know these classes
            gt[str(path)] = GroundTruth.from_boxes(boxes)
        return paths, gt
    from workbench.data.folder import open_dataset

    dataset = open_dataset(data)
    paths = [r.path for r in dataset.images]
    names = list(dataset.classes.names)
    if any(n not in class_names for n in names):
        return paths, None
    gt = {str(r.path): GroundTruth.from_boxes(
        [Box(b.x1, b.y1, b.x2, b.y2, class_names.index(names[b.class_id]), b.difficult)
         for b in r.boxes]) for r in dataset.images}
    return paths, gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model bundle folder or 'demo'")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--list", type=Path, help="VOC devkit: the image ids to measure on")
    parser.add_argument("--calibrate-list", type=Path,
                        help="VOC devkit: the image ids int8 calibrates on (default: --data)")
    parser.add_argument("--calibrate", type=Path, help="folder of images int8 calibrates on")
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--timing-images", type=int, default=24)
    parser.add_argument("--match-conf", type=float, default=0.25,
                        help="confidence of the detections compared to fp32 (default 0.25; "
                        "lower for a model that finds little above it)")
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_CACHE_DIR", str(OUT / "cache"))

    import numpy as np

    from workbench.darknet.bundle import find_bundle
    from workbench.data.images import load_bgr
    from workbench.detect.agreement import matched_detections
    from workbench.detect.detector import Detector
    from workbench.evaluation.evaluate import evaluate
    from workbench.evaluation.inputs import Predictions

    bundle = find_bundle(args.model)
    names = bundle.class_names()
    paths, gt = load_ground_truth(args.data, args.list, names)
    if args.calibrate_list:
        calibrate = [args.data / "JPEGImages" / f"{i.strip()}.jpg"
                     for i in args.calibrate_list.read_text().splitlines() if i.strip()]
    else:
        calibrate = args.calibrate or paths
    images = [load_bgr(p) for p in paths]
    size = (args.size, args.size) if args.size else None
    detectors = {}
    for engine, precision in ENGINES:
        try:
            detectors[f"{engine} {precision}"] = Detector(
                bundle, engine, size, precision=precision,
                calibrate=calibrate if precision == "int8" else None)
        except Exception as exc:  # noqa: BLE001 - report what cannot run here, go on
            print(f"  {engine} {precision}: cannot run here: {exc}")
    reference = detectors["cpu fp32"]
    blobs = [reference.preprocess(im) for im in images[:args.timing_images]]
    times: dict[str, list[float]] = {k: [] for k in detectors}
    for blob in blobs * 2:  # the first pass warms up; engines alternate blob by blob
        for key, det in detectors.items():
            start = time.perf_counter()
            det.backend.forward(blob)
            times[key].append((time.perf_counter() - start) * 1000)
    conf = args.match_conf
    ref_dets = [reference.detect(im, conf, 0.45) for im in images]
    n_ref = sum(len(d) for d in ref_dets)
    print(f"{args.model} on {args.data} ({len(images)} images, {reference.width}x"
          f"{reference.height}), {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(f"| engine | precision | ms/image | mAP@0.5 | matched to fp32 (of {n_ref} at conf "
          f"{conf}) |")
    print("|---|---|---|---|---|")
    for key, det in detectors.items():
        matched = sum(matched_detections(r, det.detect(im, conf, 0.45))
                      for r, im in zip(ref_dets, images, strict=True))
        ms = statistics.median(times[key][len(blobs):])
        if gt is not None:
            pred = {}
            for path, im in zip(paths, images, strict=True):
                d = det.detect(im, 0.005, 0.45)
                pred[str(path)] = Predictions(np.asarray(d.boxes, float), d.scores, d.class_ids)
            m = f"{100 * evaluate(gt, pred, len(names)).map50:.2f}"
        else:
            m = "n/a (other classes)"
        engine, precision = key.split()
        print(f"| {det.backend.name} | {precision} | {ms:.1f} | {m} | {matched} "
              f"({100 * matched / max(n_ref, 1):.0f}%) |", flush=True)


if __name__ == "__main__":
    main()
