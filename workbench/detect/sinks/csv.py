"""CSV: ``detections.csv``, one row per detection (image, [frame,] width, height, class_id,
class_name, score, x1, y1, x2, y2); without an output folder, the same text on stdout."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from workbench.detect.sinks.rows import CollectedRows
from workbench.storage.atomic import atomic_write_text


class CsvSink(CollectedRows):
    def write_files(self, out: Path) -> None:
        atomic_write_text(out / "detections.csv", self.document())

    def document(self) -> str:
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
