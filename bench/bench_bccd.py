"""Fine-tuning on real photos: BCCD (trainval -> test), yolov3-tiny at 416 from the COCO
weights, the default recipe; the figures of issue 12's targets.

    python3 bench/bench_bccd.py DATA_DIR --weights yolov3-tiny.weights [--epochs N]

DATA_DIR is BCCD as published: a VOC devkit (JPEGImages/, Annotations/, ImageSets/Main/).
The script copies it into a labels-beside-images folder under bench/out/ (trainval becomes
train.txt, test valid.txt), then runs the CLI a user would run:

    workbench train DATA --weights W [--epochs N] --out RUN   (the default recipe otherwise)
    workbench detect valid.txt --model RUN/bundle --conf 0.005 --out PRED
    workbench eval --gt DATA --pred PRED --split valid --metric voc   (and --metric coco)

and prints mAP@0.5, mAP@[.5:.95], the training wall time and images/s, and the recall at
detect's default confidence against the recall at the best-F1 threshold (pooled over
classes). The trainer validates on the test split to pick its best epoch (and to calibrate
its confidence and merged boxes), as in the issue's baseline; ``--untouched`` trains on the
devkit's train, validates on its val and scores its test (valid.txt and test.txt: the figures
are then test.txt's, photos no choice of the run has seen). The load average is printed: on a
shared machine the wall time is inflated.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


#: the issue's protocol: validate (pick the best epoch, calibrate) on the photos scored
AS_BASELINE = {"train": "trainval", "valid": "test"}
#: --untouched: validate on the devkit's val, score its test, which no choice has seen
UNTOUCHED = {"train": "train", "valid": "val", "test": "test"}


def voc_to_folder(devkit: Path, out: Path, splits: dict[str, str] = AS_BASELINE) -> Path:
    """The devkit as one folder: images with YOLO labels beside them, classes.txt, split files
    (``splits``: the folder's split -> the devkit's image set)."""
    from workbench.storage.atomic import atomic_write_text

    names: list[str] = []
    out.mkdir(parents=True, exist_ok=True)
    for split, image_set in splits.items():
        ids = (devkit / "ImageSets" / "Main" / f"{image_set}.txt").read_text().split()
        listed = []
        for stem in ids:
            root = ET.parse(devkit / "Annotations" / f"{stem}.xml").getroot()
            w, h = float(root.findtext("size/width")), float(root.findtext("size/height"))
            rows = []
            for obj in root.iter("object"):
                name = obj.findtext("name").strip()
                if name not in names:
                    names.append(name)
                b = obj.find("bndbox")
                x1, y1, x2, y2 = (min(max(float(b.findtext(k)), 0.0), lim) for k, lim in
                                  (("xmin", w), ("ymin", h), ("xmax", w), ("ymax", h)))
                if x2 - x1 >= 1 and y2 - y1 >= 1:
                    rows.append(f"{names.index(name)} {(x1 + x2) / 2 / w:.6f} "
                                f"{(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
            shutil.copy(devkit / "JPEGImages" / f"{stem}.jpg", out / f"{stem}.jpg")
            atomic_write_text(out / f"{stem}.txt", "".join(r + "\n" for r in rows))
            listed.append(f"{stem}.jpg")
        atomic_write_text(out / f"{split}.txt", "\n".join(listed) + "\n")
    atomic_write_text(out / "classes.txt", "".join(n + "\n" for n in names))
    return out


def workbench(*args: str, capture: bool = False) -> str:
    cmd = [sys.executable, "-m", "workbench", *args]
    print("$ workbench " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, check=True, text=True, cwd=ROOT,
                          stdout=subprocess.PIPE if capture else None)
    return proc.stdout or ""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="the BCCD VOC devkit folder")
    p.add_argument("--weights", type=Path, required=True, help="COCO yolov3-tiny.weights")
    p.add_argument("--epochs", type=int,
                   help="the run's length (default: the trainer's, `workbench train`'s 50)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "bccd")
    p.add_argument("--reuse", action="store_true", help="evaluate an existing run in --out")
    p.add_argument("--untouched", action="store_true",
                   help="train on the devkit's train, validate on its val and score its test "
                   "(default: train on trainval, validate on and score test, as the issue's "
                   "baseline)")
    p.add_argument("--train-flags", default="", metavar="'FLAGS'",
                   help="more workbench train flags, to measure a recipe change, e.g. "
                   "'--box-loss ciou'")
    args = p.parse_args()

    from workbench.data.folder import open_dataset
    from workbench.detect.detector import Detector
    from workbench.evaluation.evaluate import GroundTruth, Predictions, evaluate
    from workbench.evaluation.operating_point import operating_point
    from workbench.train.protocol import read_metrics_csv

    data, run, pred = args.out / "data", args.out / "run", args.out / "pred"
    if not args.reuse:
        shutil.rmtree(args.out, ignore_errors=True)
        voc_to_folder(args.data, data, UNTOUCHED if args.untouched else AS_BASELINE)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        length = ["--epochs", str(args.epochs)] if args.epochs else []
        workbench("train", str(data), "--weights", str(args.weights), *length,
                  "--out", str(run), *args.train_flags.split())
        wall = time.perf_counter() - t0
        print(f"training wall time {wall / 60:.1f} min (load average {load:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end)")
    rows = read_metrics_csv(run / "metrics.csv")
    seconds = sum(r["seconds"] for r in rows)
    n_train = len((data / "train.txt").read_text().split())
    print(f"{len(rows)} epochs, {sum(r['images_per_s'] for r in rows) / len(rows):.2f} "
          f"images/s training (mean over epochs), {n_train * len(rows) / seconds:.2f} images/s "
          "including validation")
    shutil.rmtree(pred, ignore_errors=True)
    scored = "test" if (data / "test.txt").is_file() else "valid"
    workbench("detect", str(data / f"{scored}.txt"), "--model", str(run / "bundle"),
              "--conf", "0.005", "--out", str(pred))
    figures = {}
    for metric in ("voc", "coco"):
        out = json.loads(workbench("eval", "--gt", str(data), "--pred", str(pred), "--split",
                                   scored, "--metric", metric, "--json", capture=True))
        figures[metric] = out
    # the recall rule, pooled over classes, on the same detections (API: same code as eval)
    dataset = open_dataset(data)
    valid = dataset.split[scored]
    detector = Detector(run / "bundle")
    preds = {str(r.path): Predictions(d.boxes, d.scores, d.class_ids) for r, d in
             ((r, x.detections) for r, x in zip(valid, detector.detect_many(
                 [v.path for v in valid], 0.005, 0.45), strict=True))}
    gt = {str(r.path): GroundTruth.from_boxes(r.boxes) for r in valid}
    result = evaluate(gt, preds, len(dataset.classes.names), iou_threshold=0.5, metric="voc")
    point = operating_point(result, preds, 0.25)
    stored = run / "bundle" / "thresholds.json"
    default = json.loads(stored.read_text()).get("conf", 0.25) if stored.is_file() else 0.25
    at_default = operating_point(result, preds, default).recall_at
    voc, coco = figures["voc"], figures["coco"]
    print(f"BCCD {scored} ({voc['images']} images): mAP@0.5 {voc['map50']:.4f} (voc), "
          f"mAP@[.5:.95] {coco['map50_95']:.4f} (coco), mAP@0.5 {coco['map50']:.4f} (coco)")
    print(f"best-F1 confidence {point.conf:.3f}: recall {point.recall:.3f}, F1 {point.f1:.3f}; "
          f"recall at --conf 0.25 {point.recall_at:.3f}; at detect's default ({default}) "
          f"{at_default:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
