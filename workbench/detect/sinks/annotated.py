"""Annotated images: each image with its boxes drawn, ``annotated/STEM.jpg`` under the output
folder (``workbench detect --save-images``); and the drawing itself, which the video sink
shares."""

from __future__ import annotations

import colorsys
from pathlib import Path

import cv2
import numpy as np

from workbench.detect.decode import Detections
from workbench.detect.pipeline import ImageResult, RunSummary
from workbench.detect.sinks.names import Naming, make_folder, target
from workbench.storage.atomic import atomic_write_bytes

JPEG_QUALITY = 92


def draw_detections(image: np.ndarray, detections: Detections, names: list[str]) -> np.ndarray:
    """A copy of the BGR ``image`` with each box and its class and score drawn."""
    image = image.copy()
    d = detections
    for (x1, y1, x2, y2), score, c in zip(d.boxes.astype(int).tolist(), d.scores.tolist(),
                                           d.class_ids.tolist(), strict=True):
        colour = tuple(int(v) for v in palette(c))
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
        label = f"{names[c] if c < len(names) else c} {score:.2f}"
        cv2.putText(image, label, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    colour, 1, cv2.LINE_AA)
    return image


def palette(class_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class (golden-angle hues)."""
    r, g, b = colorsys.hsv_to_rgb((class_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


class AnnotatedImagesSink:
    """Writes ``out/annotated/STEM.jpg`` for each result that carries its image (the run's
    ``keep_images``)."""

    def __init__(self, out: Path, class_names: list[str], naming: Naming) -> None:
        self.out, self.names, self.naming = make_folder(out), class_names, naming

    def write(self, result: ImageResult) -> None:
        if result.image is None:
            return
        image = draw_detections(result.image, result.found, self.names)
        path = target(self.out / "annotated", self.naming, result, ".jpg")
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            atomic_write_bytes(path, data.tobytes())

    def close(self, summary: RunSummary) -> None:
        pass

    def abort(self, error: BaseException) -> None:
        pass
