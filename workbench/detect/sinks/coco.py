"""COCO: ``detections.json`` (a results list for pycocotools ``loadRes``; category_id = class
index + 1) and ``images.json`` (image ids and categories); without an output folder, one
self-contained COCO document on stdout."""

from __future__ import annotations

import json
from pathlib import Path

from workbench.detect.sinks.rows import CollectedRows
from workbench.formats.coco import write_coco_results
from workbench.storage.atomic import atomic_write_text


class CocoSink(CollectedRows):
    def write_files(self, out: Path) -> None:
        write_coco_results(out / "detections.json", self.rows)
        atomic_write_text(out / "images.json",
                          json.dumps(self.images_document(), indent=1) + "\n")

    def document(self) -> str:
        """images.json's images and categories with the detections as annotations (each with
        its score), so ``> found.json`` or ``| jq`` needs no second file to turn ids into
        names."""
        doc = self.images_document()
        doc["annotations"] = [
            {"id": i, "image_id": r["image_id"], "category_id": r["category_id"],
             "bbox": [round(float(v), 2) for v in r["bbox"]],
             "area": round(float(r["bbox"][2] * r["bbox"][3]), 2), "iscrowd": 0,
             "score": round(float(r["score"]), 6)}
            for i, r in enumerate(self.rows, start=1)]
        return json.dumps(doc, indent=1) + "\n"
