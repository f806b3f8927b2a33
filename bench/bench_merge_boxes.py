"""Merged boxes (``detect --merge-boxes``) against NMS's boxes, side by side in one process.

Each image of the split goes through the model once; its candidates (above 0.005, what mAP
counts) are then suppressed both ways: class-aware NMS at 0.45 as it is, and the same NMS
with each kept box moved to its suppressed neighbours' weighted mean. Printed: mAP@0.5
(VOC all-point), mAP@0.75 and mAP@[.5:.95] (COCO's 101 points) of each, and the time the
suppression takes per image each way against the forward pass (ratio merged / plain).

    python3 bench/bench_merge_boxes.py bench/out/bccd-default/data --model \
        bench/out/bccd-default/run/bundle [--split valid]

Figures equal `workbench detect --backend cpu --conf 0.005 [--merge-boxes]` + `workbench
eval` on the same bundle and split (checked on BCCD). DATA is a dataset folder ``workbench stats`` reads (bench_bccd.py writes one with a valid
split); the model a bundle trained on its classes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="dataset folder with labels")
    p.add_argument("--model", required=True, help="bundle folder")
    p.add_argument("--split", default="valid", help="split to score (default valid)")
    # OpenCV fp32 by default: its candidates are the ones `detect --backend cpu` keeps, to the
    # bit; bf16 engines reach them through another input path (uint8), a little apart
    p.add_argument("--engine", default="cpu", help="detector engine (default cpu)")
    args = p.parse_args()

    from workbench.data.folder import open_dataset
    from workbench.data.images import load_bgr
    from workbench.detect.config import DEFAULT_NMS, MAP_CONF
    from workbench.detect.decode import suppress
    from workbench.detect.detector import Detector
    from workbench.evaluation.evaluate import Predictions, evaluate
    from workbench.train.validation import ground_truth

    dataset = open_dataset(args.data)
    records = dataset.split.get(args.split) or dataset.images
    detector = Detector(args.model, args.engine, merge_boxes=False)
    found = {False: {}, True: {}}
    seconds = {"forward": 0.0, False: 0.0, True: 0.0}
    for record in records:
        image = load_bgr(record.path)
        start = time.perf_counter()
        candidates = detector.candidates(image, MAP_CONF)
        seconds["forward"] += time.perf_counter() - start
        for merge in (False, True):  # alternating, on the same candidates
            start = time.perf_counter()
            kept = suppress(candidates, DEFAULT_NMS, merge)
            seconds[merge] += time.perf_counter() - start
            found[merge][str(record.path)] = Predictions(kept.boxes, kept.scores,
                                                         kept.class_ids)
    truth = ground_truth(records)
    classes = len(dataset.classes.names)
    print(f"{len(records)} images of {args.data} ({args.split}), model {args.model}, "
          f"engine {detector.backend.name}")
    print("| boxes | mAP@0.5 (voc) | mAP@0.75 | mAP@[.5:.95] | suppression ms/image |")
    print("|---|---|---|---|---|")
    for merge, name in ((False, "NMS's"), (True, "merged")):
        voc = evaluate(truth, found[merge], classes, iou_threshold=0.5, metric="voc")
        coco = evaluate(truth, found[merge], classes, metric="coco")
        print(f"| {name} | {voc.map50:.4f} | {coco.map75:.4f} | {coco.map50_95:.4f} | "
              f"{seconds[merge] / len(records) * 1000:.2f} |")
    print(f"suppression time merged / plain: {seconds[True] / seconds[False]:.2f}; "
          f"merged suppression / forward pass: {seconds[True] / seconds['forward']:.3f} "
          f"(forward {seconds['forward'] / len(records) * 1000:.1f} ms/image)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
