"""The Detector: a model bundle on a backend, from BGR images to boxes in pixels."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from threading import Event
from typing import TYPE_CHECKING

import numpy as np

from workbench.darknet.bundle import ModelBundle, find_bundle
from workbench.darknet.validate import check_bundle, check_input_size
from workbench.detect.backends import Backend, make_backend
from workbench.detect.decode import Candidates, class_aware_nms, decode, letterbox_geometry
from workbench.errors import ImageError

if TYPE_CHECKING:
    from workbench.detect.pipeline import ImageResult, RunSummary


class Detections(Candidates):
    """What survived NMS: boxes (N, 4) xyxy float pixels, scores (N,), class_ids (N,),
    highest score first."""


def parse_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(width, height) from 416 or (w, h); each a positive multiple of 32."""
    width, height = (size, size) if isinstance(size, int | np.integer) else size
    width, height = int(width), int(height)
    check_input_size(width, height)
    return width, height


def preprocess(image_bgr: np.ndarray, width: int, height: int,
               letterbox: bool = False) -> np.ndarray:
    """One image as a (1, 3, height, width) float32 RGB blob in [0, 1].

    Stretch resize by default (OpenCV and AlexeyAB's darknet); ``letterbox`` keeps the aspect
    ratio and pads with darknet's 0.5 grey.
    """
    import cv2

    if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        shape = None if image_bgr is None else image_bgr.shape
        raise ImageError("<array>", f"expected an HxWx3 BGR image, got shape {shape}")
    if not letterbox:
        return cv2.dnn.blobFromImage(image_bgr, 1 / 255.0, (width, height), swapRB=True,
                                     crop=False)
    h, w = image_bgr.shape[:2]
    g = letterbox_geometry(w, h, width, height)
    canvas = np.full((height, width, 3), 127, np.uint8)
    canvas[g.pad_y:g.pad_y + g.new_height, g.pad_x:g.pad_x + g.new_width] = cv2.resize(
        image_bgr, (g.new_width, g.new_height), interpolation=cv2.INTER_LINEAR)
    return cv2.dnn.blobFromImage(canvas, 1 / 255.0, swapRB=True, crop=False)


class Detector:
    """``Detector(bundle, backend="auto", size=None, letterbox=False)``.

    ``size`` is the network input (N or (w, h)); None takes the cfg's ``[net]`` width and
    height, the size the model was trained at.

    ``bundle`` is a ModelBundle or a bundle folder (or "demo"); ``backend`` a name for
    :func:`make_backend` or a ready Backend. ``.backend.name`` / ``.backend.reason`` say which
    engine runs and why.
    """

    def __init__(self, bundle: ModelBundle | str | Path, backend: str | Backend = "auto",
                 size: int | tuple[int, int] | None = None, letterbox: bool = False) -> None:
        self.bundle = bundle if isinstance(bundle, ModelBundle) else find_bundle(bundle)
        asked = None if size is None else parse_size(size)
        # every engine (and the GUI, which loads models here) refuses the same bad files
        checked = check_bundle(self.bundle, *(asked or (None, None)))
        self.width, self.height = asked or (checked.cfg.width, checked.cfg.height)
        self.letterbox = letterbox
        self.class_names = checked.class_names
        self.backend = (backend if isinstance(backend, Backend)
                        else make_backend(self.bundle, backend, self.width, self.height))

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        return preprocess(image_bgr, self.width, self.height, self.letterbox)

    def forward(self, blob: np.ndarray) -> list[list[np.ndarray]]:
        """Head outputs for a batch blob, split per image: result[i] is image i's heads."""
        outputs = self.backend.forward(blob)
        return [[o[i] for o in outputs] for i in range(blob.shape[0])]

    def decode(self, heads: list[np.ndarray], image_width: int, image_height: int,
               conf: float) -> Candidates:
        return decode(heads, image_width, image_height, self.width, self.height, conf,
                      self.letterbox)

    def candidates(self, image_bgr: np.ndarray, conf: float = 0.001) -> Candidates:
        """Every pre-NMS candidate above ``conf`` (for the NMS inspector and mAP)."""
        heads = self.forward(self.preprocess(image_bgr))[0]
        return self.decode(heads, image_bgr.shape[1], image_bgr.shape[0], conf)

    def detect(self, image_bgr: np.ndarray, conf: float = 0.25, nms: float = 0.45) -> Detections:
        """Boxes above ``conf`` after class-aware NMS at IoU ``nms``, highest score first."""
        return suppress(self.candidates(image_bgr, conf), nms)

    def detect_many(self, sources: str | Path | Iterable[str | Path], conf: float = 0.25,
                    nms: float = 0.45, *, batch: int = 1, workers: int = 2, prefetch: int = 4,
                    progress: Callable[[int, int], None] | None = None,
                    cancel: Event | None = None,
                    keep_images: bool = False,
                    summary: RunSummary | None = None) -> Iterator[ImageResult]:
        """Detect on a folder, list file or image paths, one ImageResult per image in order.

        Images are decoded on worker threads while the network runs; see
        :func:`workbench.detect.pipeline.detect_images`.
        """
        from workbench.detect.pipeline import detect_images

        return detect_images(self, sources, conf, nms, batch=batch, workers=workers,
                             prefetch=prefetch, progress=progress, cancel=cancel,
                             keep_images=keep_images, summary=summary)


def suppress(candidates: Candidates, nms: float) -> Detections:
    keep = class_aware_nms(candidates, nms)
    return Detections(candidates.boxes[keep], candidates.scores[keep],
                      candidates.class_ids[keep])

