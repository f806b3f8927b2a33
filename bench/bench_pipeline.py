"""Folder pipeline at the CPU's limit: the default engine end to end vs its forward-only rate,
vs ONNX Runtime fp32 and OpenCV end to end, on a folder of 640x480 JPEGs, one run.

Contenders (each a ``Detector`` over the same files, the pipeline of ``workbench detect``:
decode + resize + blob on worker threads, asynchronous forwards, decoding + NMS):

- ``default``: ``Detector(bundle, "auto")`` (OpenVINO with ``--precision auto`` here);
- ``onnxruntime``: ONNX Runtime fp32; ``opencv``: OpenCV DNN fp32.

Forward only: the default engine on pre-made inputs (float blobs, and its own input layout
when it takes uint8 images), one at a time and with its infer requests kept busy, measured in
each round just before the end-to-end runs; the highest rate of a round is the reference of
that round's default end-to-end run (the 0.8 target is the median of those ratios).
Contenders alternate run by run (A B C A B C ...; other jobs share this machine), figures are
medians.

Targets (issue 14): default end to end >= 0.8 x its forward-only rate; >= 3x ONNX Runtime fp32
end to end for yolov3-tiny@416, >= 2.5x for yolov3@416.

    python3 bench/bench_pipeline.py                          # yolov3-tiny@416
    python3 bench/bench_pipeline.py --template yolov3        # yolov3@416, random weights

``--model DIR`` runs a real bundle (e.g. ../shared/models/yolov3-tiny-coco); without it the
model has random weights with objectness biased down (a trained detector's box count).
``--images DIR`` takes JPEGs from a folder (e.g. BCCD's JPEGImages, 640x480); without it 640x480
JPEGs are generated from the synthetic shapes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "pipeline"
OBJECTNESS_BIAS = -4.0


def random_model(template: str):
    from workbench.darknet.bundle import find_bundle, write_bundle
    from workbench.darknet.cfg import customize, read_cfg
    from workbench.darknet.weights import random_weights
    from workbench.data.synth import CLASS_NAMES

    folder = OUT / f"{template}-random"
    if not folder.is_dir():
        cfg = customize(read_cfg(ROOT / "darknet_cfg" / f"{template}.cfg"), len(CLASS_NAMES),
                        416, 416)
        weights = random_weights(cfg, seed=0, scale=0.9)
        cell = 5 + len(CLASS_NAMES)  # few boxes above 0.25, as a trained detector gives
        for head in cfg.yolo_layers():
            weights.layers[head - 1].biases[4::cell] = OBJECTNESS_BIAS
        write_bundle(folder, template, cfg, weights, CLASS_NAMES)
    return find_bundle(folder)


def jpeg_folder(count: int) -> Path:
    """``count`` 640x480 JPEGs drawn from the synthetic shapes (quality 90)."""
    import cv2
    import numpy as np

    from workbench.data.synth import draw_image

    folder = OUT / f"jpeg-640x480-{count}"
    if not folder.is_dir() or len(list(folder.glob("*.jpg"))) < count:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(count):
            image, _ = draw_image(rng, 640)
            cv2.imwrite(str(folder / f"img_{i:04d}.jpg"), cv2.resize(image, (640, 480)),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])
    return folder


def end_to_end(detector, paths: list[Path]) -> float:
    """Images per second of one pipeline run (what ``workbench detect`` does, minus writing)."""
    start = time.perf_counter()
    done = sum(r.ok for r in detector.detect_many(paths, conf=0.25, nms=0.45))
    return done / (time.perf_counter() - start)


def forward_rate(backend, blobs, pipelined: bool) -> float:
    """Images per second of forwards alone on pre-made blobs (with requests kept busy or not)."""
    start = time.perf_counter()
    if pipelined:
        pending = []
        for blob in blobs:
            pending.append(backend.start(blob))
            if len(pending) >= backend.in_flight:
                pending.pop(0).result()
        for p in pending:
            p.result()
    else:
        for blob in blobs:
            backend.forward(blob)
    return len(blobs) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--template", default="yolov3-tiny", choices=["yolov3-tiny", "yolov3"])
    parser.add_argument("--model", help="a model bundle folder instead of random weights")
    parser.add_argument("--images", type=Path, help="folder of JPEGs (default: generated)")
    parser.add_argument("--count", type=int, default=64, help="images per run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, nargs="*", default=[], metavar="N",
                        help="also run OpenVINO with N infer requests (e.g. 2 3 6), alternating "
                        "with the default in the same rounds")
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_CACHE_DIR", str(OUT / "cache"))

    import cv2

    from workbench.darknet.bundle import find_bundle
    from workbench.data.images import list_images, load_bgr
    from workbench.detect.detector import Detector

    bundle = find_bundle(args.model) if args.model else random_model(args.template)
    folder = args.images or jpeg_folder(args.count)
    paths = list_images(folder)[:args.count]
    first = load_bgr(paths[0])
    contenders = {
        "default": Detector(bundle, "auto", 416),
        "onnxruntime": Detector(bundle, "onnxruntime", 416),
        "opencv": Detector(bundle, "cpu", 416),
    }
    if args.requests:
        from workbench.detect.engines.openvino import OpenVinoBackend

        for n in args.requests:
            contenders[f"openvino x{n}"] = Detector(
                bundle, OpenVinoBackend(bundle, 416, 416, requests=n), 416)
    default = contenders["default"].backend
    blobs = [contenders["default"].preprocess(load_bgr(p)) for p in paths]
    inputs = ([contenders["default"].prepare(load_bgr(p)) for p in paths]
              if default.input_layout != "blob" else blobs)
    print(f"{Path(bundle.cfg).stem}@416 ({'weights ' + args.model if args.model else 'random'}"
          f"), {len(paths)} JPEGs {first.shape[1]}x{first.shape[0]} from {folder}, "
          f"{args.rounds} rounds, {len(os.sched_getaffinity(0))} cores, OpenCV {cv2.__version__}"
          f", load average {os.getloadavg()[0]:.1f} at start")
    for name, det in contenders.items():
        print(f"  {name:12s} {det.backend.engine} ({det.backend.reason}), "
              f"{det.backend.in_flight} in flight")

    e2e: dict[str, list[float]] = {name: [] for name in contenders}
    fwd: dict[str, list[float]] = {"one at a time": [], "requests busy": []}
    if inputs is not blobs:  # the engine's own input (uint8 BGR): its blob made in the graph
        fwd[f"busy, {default.input_layout}"] = []
    for det in contenders.values():  # warm-up
        end_to_end(det, paths[:8])
    forward_rate(default, blobs[:8], True)
    forward_rate(default, inputs[:8], True)
    paired: list[float] = []  # default end to end / its forward-only rate measured next to it
    for _ in range(args.rounds):
        round_fwd = [forward_rate(default, blobs, False), forward_rate(default, blobs, True)]
        fwd["one at a time"].append(round_fwd[0])
        fwd["requests busy"].append(round_fwd[1])
        if inputs is not blobs:
            round_fwd.append(forward_rate(default, inputs, True))
            fwd[f"busy, {default.input_layout}"].append(round_fwd[-1])
        for name, det in contenders.items():
            e2e[name].append(end_to_end(det, paths))
        paired.append(e2e["default"][-1] / max(round_fwd))

    med = {k: statistics.median(v) for k, v in e2e.items()}
    fmed = {k: statistics.median(v) for k, v in fwd.items()}
    print(f"\nend to end (Detector.detect_many), images/s, median of {args.rounds} runs:")
    for name in contenders:
        print(f"  {name:12s} {med[name]:7.1f}  ({1000 / med[name]:6.1f} ms/image)  range "
              f"{min(e2e[name]):.1f}-{max(e2e[name]):.1f}")
    print(f"forward only, {default.engine}, images/s:")
    for k, v in fmed.items():
        print(f"  {k:14s} {v:7.1f}  ({1000 / v:6.1f} ms/image)")
    reference = max(fmed.values())
    ratio_of_medians = med["default"] / reference
    vs_ort = [d / o for d, o in zip(e2e["default"], e2e["onnxruntime"], strict=True)]
    vs_cv = [d / o for d, o in zip(e2e["default"], e2e["opencv"], strict=True)]
    target = 3.0 if "tiny" in Path(bundle.cfg).stem else 2.5
    ratio_fwd = statistics.median(paired)
    ratio_ort = statistics.median(vs_ort)
    print(f"\ndefault end to end / its forward-only rate: {ratio_fwd:.2f} (median of the rounds' "
          f"ratios; ratio of medians {ratio_of_medians:.2f})  -- target >= 0.8: "
          f"{'met' if ratio_fwd >= 0.8 else 'NOT met'}")
    print(f"default / ONNX Runtime fp32 end to end: {ratio_ort:.2f}x (median of paired runs)  "
          f"-- target >= {target}x: {'met' if ratio_ort >= target else 'NOT met'}")
    print(f"default / OpenCV end to end: {statistics.median(vs_cv):.2f}x; load average "
          f"{os.getloadavg()[0]:.1f} at the end")
    for name in contenders:
        if name.startswith("openvino x"):
            ratios = [c / d for c, d in zip(e2e[name], e2e["default"], strict=True)]
            print(f"{name} / default ({default.in_flight} requests) end to end: "
                  f"{statistics.median(ratios):.2f} (median of paired runs)")
    parts_bound(contenders["default"], paths, reference)


def parts_bound(detector, paths: list[Path], forward_only: float) -> None:
    """What each part costs on one thread, and the end-to-end rate perfect overlap of them
    with the forwards would give on this machine's cores (the ceiling of the 0.8 target)."""
    from workbench.data.images import load_bgr
    from workbench.detect.detector import suppress

    def ms_per_image(job) -> float:
        best = min(_timed(lambda: [job(i) for i in range(len(paths))]) for _ in range(3))
        return 1000 * best / len(paths)

    images = [load_bgr(p) for p in paths]
    heads = [detector.forward(detector.prepare(im))[0] for im in images]
    parts = {
        "decode (load_bgr)": ms_per_image(lambda i: load_bgr(paths[i])),
        "resize (prepare)": ms_per_image(lambda i: detector.prepare(images[i])),
        "boxes + NMS": ms_per_image(lambda i: suppress(detector.decode(
            heads[i], images[i].shape[1], images[i].shape[0], 0.25), 0.45)),
    }
    cores = len(os.sched_getaffinity(0))
    forward_core_ms = cores * 1000 / forward_only
    print()
    print("parts, one thread, ms/image: " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
          + f"; forward {forward_core_ms:.2f} core-ms (requests busy)")
    bound = cores * 1000 / (forward_core_ms + sum(parts.values()))
    print(f"perfect overlap on {cores} cores: {bound:.1f} img/s = {bound / forward_only:.2f} of "
          "the forward-only rate (the most the pipeline could reach)")


def _timed(job) -> float:
    start = time.perf_counter()
    job()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
