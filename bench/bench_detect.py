"""Detection throughput: the book's pipeline vs the forward pass alone vs `workbench detect`'s engine.

    python3 bench/bench_detect.py [--images 40] [--rounds 3]

Same model (yolov3-tiny at 416, random weights written by our writer, 4 classes) and the same
images (workbench.data.synth), side by side in one run: a warm-up pass of each, then A B C rounds;
medians reported. All three use OpenCV DNN on the CPU, so the comparison is about the
pipeline, not the engine. Random weights make almost every row a confident box; the head
convolutions' objectness rows get a background prior (bias -8, weights x2.5) so the candidate
counts look like a trained model's (tens at 0.25, hundreds at 0.005); the figures with plain random
weights are printed too.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.darknet.bundle import write_bundle  # noqa: E402
from workbench.darknet.cfg import customize, read_cfg  # noqa: E402
from workbench.darknet.weights import random_weights  # noqa: E402
from workbench.data.images import list_images  # noqa: E402
from workbench.data.synth import CLASS_NAMES, make_demo_dataset  # noqa: E402
from workbench.detect.decode import decode  # noqa: E402
from workbench.detect.detector import Detector, suppress  # noqa: E402

SIZE = 416


def make_model(folder: Path, objectness_bias: float | None):
    cfg = customize(read_cfg(ROOT / "darknet_cfg" / "yolov3-tiny.cfg"), len(CLASS_NAMES),
                    SIZE, SIZE)
    weights = random_weights(cfg, seed=0)
    if objectness_bias is not None:
        per_anchor = 5 + len(CLASS_NAMES)
        for i in cfg.yolo_layers():
            head = weights.layers[i - 1]
            head.biases[4::per_anchor] = objectness_bias
            head.kernel[4::per_anchor] *= 2.5  # spread: a few confident rows, many faint ones
    return write_bundle(folder, "tiny", cfg, weights, CLASS_NAMES)


def book_pipeline(net, names, paths, conf=0.25, nms=0.45) -> int:
    """The book's loop: sequential imread, blobFromImage, forward, per-row loop, NMSBoxes."""
    found = 0
    for path in paths:
        image = cv2.imread(str(path))
        h, w = image.shape[:2]
        net.setInput(cv2.dnn.blobFromImage(image, 1 / 255.0, (SIZE, SIZE), swapRB=True,
                                           crop=False))
        boxes, scores, classes = [], [], []
        for output in net.forward(names):
            for row in output:
                row_scores = row[5:]
                class_id = int(np.argmax(row_scores))
                score = float(row_scores[class_id])
                if score > conf:
                    cx, cy, bw, bh = row[0] * w, row[1] * h, row[2] * w, row[3] * h
                    boxes.append([int(cx - bw / 2), int(cy - bh / 2), int(bw), int(bh)])
                    scores.append(score)
                    classes.append(class_id)
        found += len(cv2.dnn.NMSBoxes(boxes, scores, conf, nms))
    return found


def forward_only(net, names, blobs) -> None:
    for blob in blobs:
        net.setInput(blob)
        net.forward(names)


def engine(detector, folder) -> int:
    return sum(len(r.detections) for r in detector.detect_many(folder) if r.ok)


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def decode_cost(detector, heads, conf, repeats=5) -> tuple[float, float]:
    """Median ms per image of decode + class-aware NMS, and the mean candidate count."""
    times, counts = [], []
    for _ in range(repeats):
        for h in heads:
            start = time.perf_counter()
            c = decode(h, SIZE, SIZE, SIZE, SIZE, conf)
            suppress(c, 0.45)
            times.append(time.perf_counter() - start)
            counts.append(len(c))
    return statistics.median(times) * 1e3, float(np.mean(counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_detect_"))
    folder = make_demo_dataset(tmp / "images", images=args.images, seed=0, size=SIZE)
    paths = list_images(folder)
    bundle = make_model(tmp / "model", objectness_bias=-8.0)
    net = cv2.dnn.readNetFromDarknet(str(bundle.cfg), str(bundle.weights))
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    names = net.getUnconnectedOutLayersNames()
    blobs = [cv2.dnn.blobFromImage(cv2.imread(str(p)), 1 / 255.0, (SIZE, SIZE), swapRB=True,
                                   crop=False) for p in paths]
    detector = Detector(bundle, "cpu", size=SIZE)
    # what `workbench detect` runs by default: --backend auto (ONNX Runtime on a CPU-only box)
    auto = Detector(bundle, "auto", size=SIZE)
    n = len(paths)
    print(f"yolov3-tiny {SIZE}x{SIZE}, {n} images, OpenCV {cv2.__version__}, "
          f"{cv2.getNumThreads()} threads, engine backend {detector.backend.name}")

    contenders = {
        "book pipeline": lambda: book_pipeline(net, names, paths),
        "forward only": lambda: forward_only(net, names, blobs),
        "engine (detect_many)": lambda: engine(detector, folder),
        "engine, auto backend": lambda: engine(auto, folder),
    }
    for fn in contenders.values():  # warm up: first passes run slow on this VM
        fn()
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            times[name].append(timed(fn))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        print(f"  {name:22s} {n / t:6.1f} images/s  {t / n * 1e3:6.1f} ms/image")
    ratio = med["forward only"] / med["engine (detect_many)"]
    print(f"engine / forward-only throughput: {ratio:.3f} (target >= 0.90)")
    print(f"engine / book throughput:         {med['book pipeline'] / med['engine (detect_many)']:.2f}x")
    print(f"engine with --backend auto ({auto.backend.name}) / book throughput: "
          f"{med['book pipeline'] / med['engine, auto backend']:.2f}x")

    forward_ms = med["forward only"] / n * 1e3
    heads = [detector.forward(b)[0] for b in blobs[:10]]
    for conf in (0.25, 0.005):
        ms, count = decode_cost(detector, heads, conf)
        print(f"decode+NMS at conf {conf:<5}: {ms:.3f} ms/image = {100 * ms / forward_ms:.2f}% "
              f"of forward ({count:.0f} candidates/image; target < 5%)")
    plain = Detector(make_model(tmp / "plain", objectness_bias=None), "cpu", size=SIZE)
    heads = [plain.forward(b)[0] for b in blobs[:3]]
    for conf in (0.25, 0.005):
        ms, count = decode_cost(plain, heads, conf, repeats=2)
        print(f"  plain random weights, conf {conf:<5}: {ms:.2f} ms/image = "
              f"{100 * ms / forward_ms:.1f}% of forward ({count:.0f} candidates/image)")


if __name__ == "__main__":
    main()
