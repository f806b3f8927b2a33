"""The Detector: a model bundle on a backend, from BGR images to boxes in pixels."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from threading import Event

import numpy as np

from workbench.darknet.bundle import ModelBundle, find_bundle, read_model_defaults
from workbench.darknet.validate import check_bundle, check_input_size
from workbench.detect.backends import Backend, make_backend
from workbench.detect.config import DEFAULT_CONF, DEFAULT_NMS, DetectConfig
from workbench.detect.decode import Candidates, Detections, decode, letterbox_geometry, suppress
from workbench.detect.pipeline import ImageResult, RunSummary, detect_images
from workbench.detect.sources import resolve_sources
from workbench.errors import ImageError, WorkbenchError


def parse_size(size: int | tuple[int, int]) -> tuple[int, int]:
    """(width, height) from 416 or (w, h); each a positive multiple of 32."""
    width, height = (size, size) if isinstance(size, int | np.integer) else size
    width, height = int(width), int(height)
    check_input_size(width, height)
    return width, height


def resize_for_network(image_bgr: np.ndarray, width: int, height: int,
                       letterbox: bool = False) -> np.ndarray:
    """The uint8 BGR image at the network size (height, width, 3).

    Stretch resize by default (OpenCV and AlexeyAB's darknet); ``letterbox`` keeps the aspect
    ratio and pads with darknet's 0.5 grey.
    """
    import cv2

    if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        shape = None if image_bgr is None else image_bgr.shape
        raise ImageError("<array>", f"expected an HxWx3 BGR image, got shape {shape}")
    if not letterbox:
        if image_bgr.shape[:2] == (height, width):
            return image_bgr
        return cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    h, w = image_bgr.shape[:2]
    g = letterbox_geometry(w, h, width, height)
    canvas = np.full((height, width, 3), 127, np.uint8)
    canvas[g.pad_y:g.pad_y + g.new_height, g.pad_x:g.pad_x + g.new_width] = cv2.resize(
        image_bgr, (g.new_width, g.new_height), interpolation=cv2.INTER_LINEAR)
    return canvas


def preprocess(image_bgr: np.ndarray, width: int, height: int,
               letterbox: bool = False) -> np.ndarray:
    """One image as a (1, 3, height, width) float32 RGB blob in [0, 1] (see
    :func:`resize_for_network`; the same pixels blobFromImage's own resize gives)."""
    import cv2

    return cv2.dnn.blobFromImage(resize_for_network(image_bgr, width, height, letterbox),
                                 1 / 255.0, swapRB=True, crop=False)


class Detector:
    """``Detector(bundle, backend="auto", size=None, letterbox=False)``.

    ``size`` is the network input (N or (w, h)); None takes the cfg's ``[net]`` width and
    height, the size the model was trained at.

    ``bundle`` is a ModelBundle or a bundle folder (or "demo"); ``backend`` a name for
    :func:`make_backend` or a ready Backend. ``.backend.name`` / ``.backend.reason`` say which
    engine runs and why.

    ``precision`` ("auto", "fp32", "bf16", "fp16", "int8") goes to :func:`make_backend`; int8
    is calibrated on the images ``calibrate`` (a folder, list file or paths), preprocessed as
    this detector does.
    """

    def __init__(self, bundle: ModelBundle | str | Path, backend: str | Backend = "auto",
                 size: int | tuple[int, int] | None = None, letterbox: bool = False,
                 precision: str = "auto",
                 calibrate: str | Path | Iterable[str | Path] | None = None,
                 merge_boxes: bool | None = None) -> None:
        self.bundle = bundle if isinstance(bundle, ModelBundle) else find_bundle(bundle)
        asked = None if size is None else parse_size(size)
        # every engine (and the GUI, which loads models here) refuses the same bad files
        checked = check_bundle(self.bundle, *(asked or (None, None)))
        self.width, self.height = asked or (checked.cfg.width, checked.cfg.height)
        self.letterbox = letterbox
        # NMS moves each kept box to its neighbours' mean; None: as the bundle's training run
        # stored it (thresholds.json), so the GUI and eval --model box as `detect` does
        self.merge_boxes = (bool(read_model_defaults(self.bundle).merge_boxes)
                            if merge_boxes is None else merge_boxes)
        self.class_names = checked.class_names
        if isinstance(backend, Backend):
            self.backend = backend
            return
        images: list[Path] = []
        if calibrate is not None:
            images = resolve_sources(calibrate)
        if precision == "int8" and not images:
            raise WorkbenchError("--precision int8 needs calibration images: --calibrate DIR "
                             "(a folder of your own images, 100-300 is plenty)")
        if images and precision != "int8":
            raise WorkbenchError("--calibrate is only used by --precision int8")
        self.backend = make_backend(self.bundle, backend, self.width, self.height, precision,
                                    images)

    @classmethod
    def from_config(cls, config: DetectConfig) -> Detector:
        """The Detector ``config`` describes (loads the model on its engine)."""
        return cls(config.model, config.engine, config.size, config.letterbox,
                   precision=config.precision, calibrate=config.calibrate,
                   merge_boxes=config.merge_boxes)

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        return preprocess(image_bgr, self.width, self.height, self.letterbox)

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        """The engine's input for one image: the blob, or for engines that make the blob
        themselves (``input_layout`` "bgr8") the resized uint8 image (1, height, width, 3)."""
        if self.backend.input_layout == "bgr8":
            return resize_for_network(image_bgr, self.width, self.height, self.letterbox)[None]
        return self.preprocess(image_bgr)

    def forward(self, blob: np.ndarray) -> list[list[np.ndarray]]:
        """Head outputs for a batch blob, split per image: result[i] is image i's heads."""
        return self.split(self.backend.forward(blob), blob.shape[0])

    @staticmethod
    def split(outputs: list[np.ndarray], n: int) -> list[list[np.ndarray]]:
        """Batch head outputs per image: result[i] is image i's heads."""
        return [[o[i] for o in outputs] for i in range(n)]

    def decode(self, heads: list[np.ndarray], image_width: int, image_height: int,
               conf: float) -> Candidates:
        return decode(heads, image_width, image_height, self.width, self.height, conf,
                      self.letterbox)

    def candidates(self, image_bgr: np.ndarray, conf: float = 0.001) -> Candidates:
        """Every pre-NMS candidate above ``conf`` (for the NMS inspector and mAP)."""
        heads = self.forward(self.preprocess(image_bgr))[0]
        return self.decode(heads, image_bgr.shape[1], image_bgr.shape[0], conf)

    def detect(self, image_bgr: np.ndarray, conf: float = DEFAULT_CONF,
               nms: float = DEFAULT_NMS) -> Detections:
        """Boxes above ``conf`` after class-aware NMS at IoU ``nms``, highest score first."""
        return suppress(self.candidates(image_bgr, conf), nms, self.merge_boxes)

    def detect_many(self, sources: str | Path | Iterable[str | Path], conf: float = DEFAULT_CONF,
                    nms: float = DEFAULT_NMS, *, batch: int = 1, workers: int = 2, prefetch: int = 4,
                    progress: Callable[[int, int], None] | None = None,
                    cancel: Event | None = None,
                    keep_images: bool = False,
                    summary: RunSummary | None = None,
                    full_decode: bool = False) -> Iterator[ImageResult]:
        """Detect on a folder, list file or image paths, one ImageResult per image in order.

        Images are decoded on worker threads while the network runs, large JPEGs at a
        reduced scale unless ``full_decode``; see :func:`workbench.detect.pipeline.detect_images`.
        """
        return detect_images(self, sources, conf, nms, batch=batch, workers=workers,
                             prefetch=prefetch, progress=progress, cancel=cancel,
                             keep_images=keep_images, summary=summary,
                             full_decode=full_decode)
