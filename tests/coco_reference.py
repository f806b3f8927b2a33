"""pycocotools' side of the COCO comparisons: our ground truth and predictions as its COCO
objects (tests/test_eval_coco_parity.py, bench/bench_eval.py)."""

from __future__ import annotations

import contextlib
import io


def to_coco(gt, pred, classes: int, image_size: int = 640):
    """pycocotools' ``COCO`` of ``gt`` (name -> GroundTruth) and the ``COCO`` of the results
    ``pred`` (name -> Predictions; an image may have none). Image ids follow the gt dict's
    order from 1, category ids are class ids + 1, boxes go as Python numbers."""
    from pycocotools.coco import COCO

    images, annotations, results = [], [], []
    for image_id, (name, g) in enumerate(gt.items(), start=1):
        images.append({"id": image_id, "file_name": name, "width": image_size,
                       "height": image_size})
        for box, label, crowd in zip(g.boxes.tolist(), g.class_ids.tolist(), g.crowd.tolist(),
                                     strict=True):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": label + 1, "bbox": [box[0], box[1], w, h],
                                "area": w * h, "iscrowd": int(crowd)})
        p = pred.get(name)
        if p is None:
            continue
        for box, score, label in zip(p.boxes.tolist(), p.scores.tolist(),
                                     p.class_ids.tolist(), strict=True):
            results.append({"image_id": image_id, "category_id": label + 1, "score": score,
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = {"images": images, "annotations": annotations,
                           "categories": [{"id": k + 1, "name": str(k)} for k in range(classes)]}
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
    return coco_gt, coco_dt
