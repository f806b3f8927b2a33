"""What a detection run is asked to do, with every default written once.

``workbench detect``'s options, the Detect dock's fields, the Ray runner, prediction sets,
evaluation and training's calibration all read their thresholds from here
(:data:`DEFAULT_CONF`, :data:`DEFAULT_NMS`), so a default changes in one place. Where the
results go is not part of the config: that is the run's sinks (``workbench.detect.sinks``).

This module imports nothing heavy (the CLI reads it to build its parser).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: confidence threshold (objectness x class probability) when neither the user nor the
#: model's calibrated thresholds.json gives one
DEFAULT_CONF = 0.25
#: IoU threshold of the class-aware NMS
DEFAULT_NMS = 0.45
#: the confidence above which candidates count when a model is scored (mAP): darknet's
#: threshold, low so that low-confidence candidates still add to the PR curve
MAP_CONF = 0.005
#: the model a run uses when none is named: the built-in demo model
DEFAULT_MODEL = "demo"
#: the engine and precision ``auto`` picks for this machine
DEFAULT_ENGINE = "auto"
DEFAULT_PRECISION = "auto"
#: images per forward pass
DEFAULT_BATCH = 1
#: video: run on frames 0, N, 2N, ...
DEFAULT_EVERY = 1
#: the output formats of ``--format`` (``workbench.detect.sinks.FORMAT_SINKS`` writes each),
#: the one written to --out by default, and those printed as one document without --out
FORMATS = ("yolo", "voc", "coco", "csv")
DEFAULT_FORMAT = "yolo"
STDOUT_FORMATS = ("coco", "csv")
#: test-time augmentation (``--tta``, workbench/detect/tta.py): how the boxes of its passes
#: (plain, flipped, the second input size) are merged: class-aware NMS or weighted boxes
#: fusion, and the one used when none is named (wbf: the better on BCCD, docs/engines.md)
TTA_MERGES = ("nms", "wbf")
DEFAULT_TTA_MERGE = "wbf"


@dataclass(frozen=True)
class DetectConfig:
    """One detection run's settings.

    ``model``: a ModelBundle, a bundle folder or ``"demo"``; ``engine``: a backend name
    (``auto``, ``cpu``, ``openvino``, ...); ``precision``: ``auto``, ``fp32``, ``bf16``,
    ``fp16`` or ``int8`` (int8 with ``calibrate``, images to calibrate on); ``size``: the
    network input, N or (width, height), None for the cfg's own; ``letterbox``: keep the
    aspect ratio (pad) instead of stretching; ``conf`` and ``nms``: the thresholds;
    ``batch``: images per forward pass; ``every``: a video's kept frames (one in N);
    ``tta``: test-time augmentation (the image also flipped and at a second input size, the
    boxes merged by ``tta_merge``, one of :data:`TTA_MERGES`; workbench/detect/tta.py);
    ``keep_images``: each result carries its image (for sinks that draw on it);
    ``full_decode``: decode large JPEGs whole, not at the reduced DCT scale that still
    covers the network input (also ``WORKBENCH_FULL_DECODE=1``; see detect/pipeline.py).
    """

    model: Any = DEFAULT_MODEL
    engine: str = DEFAULT_ENGINE
    precision: str = DEFAULT_PRECISION
    size: int | tuple[int, int] | None = None
    letterbox: bool = False
    calibrate: str | Path | None = None
    conf: float = DEFAULT_CONF
    nms: float = DEFAULT_NMS
    merge_boxes: bool | None = None  # None: the bundle's (thresholds.json), else NMS's boxes
    batch: int = DEFAULT_BATCH
    every: int = DEFAULT_EVERY
    keep_images: bool = False
    tta: bool = False
    tta_merge: str = DEFAULT_TTA_MERGE
    full_decode: bool = False

    def detector_key(self) -> tuple:
        """What the loaded model depends on: two configs with one key share a Detector."""
        key = (str(self.model), self.engine, self.precision, self.size, self.letterbox,
               None if self.calibrate is None else str(self.calibrate), self.merge_boxes)
        # a TTA detector merges at the config's NMS threshold
        return key + (("tta", self.tta_merge, self.nms),) if self.tta else key
