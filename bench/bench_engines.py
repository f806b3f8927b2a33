"""OpenCV DNN engine vs ONNX Runtime engine, same model, same images, one run.

Random-weight yolov3-tiny at 416 (no pretrained weights can be downloaded here) on the
synthetic shapes images. Two figures per engine, measured alternately (A B A B) after a warm-up
pass of each, reported as medians:

- end to end: ``Detector.detect_many`` over the folder (the pipeline ``workbench detect``
  runs: decode on worker threads, blob, forward, vectorized decode, NMS), in images/s;
- forward only: pre-made batch-1 blobs, in ms/image.

Target (issue 7): ONNX Runtime >= 1.5x OpenCV's images/s end to end.

    python3 bench/bench_engines.py [--images 48] [--rounds 4] [--chunk 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "engines"
OBJECTNESS_BIAS = -4.0


def make_inputs(n_images: int):
    from workbench.darknet.bundle import find_bundle, write_bundle
    from workbench.darknet.cfg import customize, read_cfg
    from workbench.darknet.weights import random_weights
    from workbench.data.synth import CLASS_NAMES, make_demo_dataset

    model_dir = OUT / "yolov3-tiny-random-v2"
    if not model_dir.is_dir():
        cfg = customize(read_cfg(ROOT / "darknet_cfg" / "yolov3-tiny.cfg"), len(CLASS_NAMES),
                        416, 416)
        weights = random_weights(cfg, seed=0)
        # A trained detector calls most cells background; plain random weights put ~1000 boxes
        # an image above 0.25 and the run would time NMS, not the engines. Bias objectness down.
        cell = 5 + len(CLASS_NAMES)
        for head in cfg.yolo_layers():
            weights.layers[head - 1].biases[4::cell] = OBJECTNESS_BIAS
        write_bundle(model_dir, "yolov3-tiny", cfg, weights, CLASS_NAMES)
    images = OUT / f"images-{n_images}"
    if not images.is_dir():
        make_demo_dataset(images, images=n_images, seed=0, size=416)
    return find_bundle(model_dir), images


def end_to_end(detector, paths: list[Path], boxes: list[int] | None = None) -> float:
    """Images per second of one run of the folder pipeline over ``paths``."""
    start = time.perf_counter()
    results = [r for r in detector.detect_many(paths, conf=0.25, nms=0.45) if r.ok]
    seconds = time.perf_counter() - start
    if boxes is not None:
        boxes.extend(len(r.detections) for r in results)
    return len(results) / seconds


def forward_ms(detector, blob) -> float:
    """Milliseconds of one forward pass of the network alone on a pre-made blob."""
    start = time.perf_counter()
    detector.backend.forward(blob)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=4, help="passes over the images")
    parser.add_argument("--chunk", type=int, default=12,
                        help="images per pipeline run; the engines alternate run by run")
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_CACHE_DIR", str(OUT / "cache"))

    import cv2

    from workbench.data.images import list_images, load_bgr
    from workbench.detect.detector import Detector

    bundle, folder = make_inputs(args.images)
    paths = list_images(folder)
    chunks = [paths[i:i + args.chunk] for i in range(0, len(paths), args.chunk)]
    t0 = time.perf_counter()
    engines = {"opencv": Detector(bundle, backend="cpu", size=416)}
    t1 = time.perf_counter()
    engines["onnxruntime"] = Detector(bundle, backend="onnxruntime", size=416)
    t2 = time.perf_counter()
    blobs = [engines["opencv"].preprocess(load_bgr(p)) for p in paths[:16]]
    print(f"yolov3-tiny 416, random weights, {len(paths)} images in runs of {args.chunk}, "
          f"{args.rounds} rounds, {os.cpu_count()} CPUs, OpenCV {cv2.__version__} "
          f"({cv2.getNumThreads()} threads)")
    for name, det in engines.items():
        print(f"  {name:12s} backend {det.backend.name}: {det.backend.reason}")
    print(f"  setup: OpenCV net {t1 - t0:.2f}s, ONNX Runtime export + session {t2 - t1:.2f}s")

    boxes: dict[str, list[int]] = {name: [] for name in engines}
    for name, det in engines.items():  # warm up: first passes of a fresh process run slow here
        end_to_end(det, paths, boxes[name])
        for blob in blobs:
            forward_ms(det, blob)
    print("  detections per image (conf 0.25, NMS 0.45): "
          + ", ".join(f"{n} {statistics.mean(b):.1f}" for n, b in boxes.items()))

    # Other jobs share this machine and its load swings within seconds: alternate the engines
    # in short runs (A B A B ...), so each pair sees about the same load.
    e2e: dict[str, list[float]] = {name: [] for name in engines}
    fwd: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for chunk in chunks:
            for name, det in engines.items():
                e2e[name].append(end_to_end(det, chunk))
        for blob in blobs:
            for name, det in engines.items():
                fwd[name].append(forward_ms(det, blob))

    med = {name: statistics.median(v) for name, v in e2e.items()}
    fmed = {name: statistics.median(v) for name, v in fwd.items()}
    paired = statistics.median(o / c for o, c in zip(e2e["onnxruntime"], e2e["opencv"],
                                                     strict=True))
    fpaired = statistics.median(c / o for o, c in zip(fwd["onnxruntime"], fwd["opencv"],
                                                      strict=True))
    print(f"\nend to end (Detector.detect_many, the pipeline of `workbench detect`), median of "
          f"{len(e2e['opencv'])} runs:")
    for name in engines:
        print(f"  {name:12s} {med[name]:7.1f} images/s  ({1000 / med[name]:5.1f} ms/image)  "
              f"range {min(e2e[name]):.1f}-{max(e2e[name]):.1f}")
    print(f"forward only (batch 1, pre-made blobs), median of {len(fwd['opencv'])} passes:")
    for name in engines:
        print(f"  {name:12s} {fmed[name]:7.1f} ms/image")
    print(f"\nONNX Runtime / OpenCV: end to end {paired:.2f}x images/s (median of paired runs; "
          f"ratio of medians {med['onnxruntime'] / med['opencv']:.2f}x), forward only "
          f"{fpaired:.2f}x  -- target >= 1.5x end to end: {'met' if paired >= 1.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
