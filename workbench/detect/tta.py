"""Test-time augmentation (``detect --tta``, ``eval --model ... --tta``): each image goes
through the network three times and the boxes of the three passes are merged.

The passes: the plain one; the image flipped left to right (its boxes flipped back); and the
image at a second input size, about 1.3 times the model's (:func:`second_size`), on a second
engine built through the same registry and DetectConfig, so every engine runs it. Every
pass's candidates above the threshold are pooled and merged per class:

- ``nms``: the pool through the class-aware NMS at the config's IoU threshold
  (``workbench.geometry.nms``, cv2.dnn.NMSBoxes semantics), the same NMS a plain run ends with;
- ``wbf``: each pass's boxes through that NMS, then weighted boxes fusion across the passes
  (``workbench.geometry.fusion``; a box one pass in three found keeps a third of its score),
  so the passes' candidates are taken down to :data:`~workbench.detect.config.MAP_CONF`.

The final confidence threshold is applied to the merged boxes. :class:`TtaDetector` has the
shape of a Detector (``workbench.detect.pipeline.Detects``): run_detection, the CLI's sinks,
prediction sets and videos take it unchanged. Its ``decode`` returns boxes already merged,
so the NMS the pipeline runs after it keeps them all (NMS is idempotent at one threshold).

The flip is made on the network input (the blob flipped along its width) and undone on the
network's output rows (``cx -> 1 - cx``, normalized to the input), before the usual decode
maps them into the image: exact for a stretched and a letterboxed input alike.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from workbench.detect.config import MAP_CONF, TTA_MERGES, DetectConfig
from workbench.detect.decode import Candidates, Detections, suppress
from workbench.detect.detector import Detector
from workbench.detect.engines import registry
from workbench.detect.engines.base import Backend, Pending
from workbench.errors import WorkbenchError
from workbench.geometry.fusion import weighted_boxes_fusion

#: the second pass's input size over the model's (rounded to a multiple of 32)
SCALE = 1.3
#: the passes of one image, in the order their heads come out of the backend
PASSES = ("plain", "flipped", "scaled")


def second_size(width: int, height: int, scale: float = SCALE) -> tuple[int, int]:
    """The second pass's input: ``scale`` times (width, height), each rounded to the nearest
    multiple of 32 (halves up), and at least 32 more than the model's."""
    def one(value: int) -> int:
        return max(value + 32, int(value * scale / 32 + 0.5) * 32)

    return one(width), one(height)


def load_detector(config: DetectConfig) -> Detector:
    """The detector ``config`` asks for: a :class:`TtaDetector` with ``config.tta``, else the
    plain ``Detector.from_config``."""
    plain = Detector.from_config(config)
    return TtaDetector.around(plain, config) if config.tta else plain


def flip_input(blob: np.ndarray) -> np.ndarray:
    """A batch of network inputs mirrored left to right: the float blob (N, 3, H, W) or the
    uint8 images (N, H, W, 3) of engines that take ``bgr8``."""
    axis = 2 if blob.dtype == np.uint8 else 3
    return np.ascontiguousarray(np.flip(blob, axis=axis))


def unflip_rows(head: np.ndarray) -> np.ndarray:
    """A head's rows from a flipped input as the unflipped input's: ``cx`` (column 0,
    normalized to the input width) becomes ``1 - cx``; a copy, the rest unchanged."""
    rows = np.array(head, copy=True)
    rows[..., 0] = 1.0 - rows[..., 0]
    return rows


def merge(passes: list[Candidates], how: str, conf: float, nms: float) -> Detections:
    """The passes' candidates merged per class (``nms`` or ``wbf``, see the module), scores
    above ``conf``, highest first."""
    if how not in TTA_MERGES:
        raise WorkbenchError(f"--tta-merge {how}: choose from {', '.join(TTA_MERGES)}")
    if how == "nms":
        pool = _concat(passes)
        return suppress(pool.take(pool.scores > conf), nms)
    pool = _concat([suppress(p, nms) for p in passes])
    boxes, scores, ids = weighted_boxes_fusion(pool.boxes, pool.scores, pool.class_ids, nms,
                                               len(passes))
    above = scores > conf
    fused = Candidates(boxes[above].astype(pool.boxes.dtype),
                       scores[above].astype(pool.scores.dtype), ids[above])
    # fused boxes of one class that still overlap above the threshold: the best is kept
    return suppress(fused, nms)


def _concat(parts: list[Candidates]) -> Candidates:
    if not parts:
        return Candidates.empty()
    return Candidates(np.concatenate([p.boxes for p in parts]),
                      np.concatenate([p.scores for p in parts]),
                      np.concatenate([p.class_ids for p in parts]))


class TtaBackend(Backend):
    """The three passes as one backend: ``forward``/``start`` take the packed inputs
    :meth:`TtaDetector.prepare` makes (each image's input at the model's size and at the
    second size, flattened side by side, so a batch still concatenates along axis 0) and
    return the plain, flipped and second-size heads, in that order."""

    def __init__(self, plain: Backend, second: Backend, note: str) -> None:
        self.plain, self.second = plain, second
        self.name, self.precision = plain.name, plain.precision
        self.reason = f"{plain.reason}; {note}"
        self.width, self.height = plain.width, plain.height
        self.input_layout = plain.input_layout
        # a batch in flight holds its flipped forward's requests of the plain engine and its
        # second-size forward's of the other, and start() waits for the plain forward (the
        # flipped one reuses its requests): half of each engine's requests keeps a batch
        # from waiting on requests the batches before it hold (OpenVINO)
        self.in_flight = max(1, min(plain.in_flight, second.in_flight) // 2)

    def unpack(self, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs at the model's size, inputs at the second size) of a packed batch."""
        shapes = [_input_shape(b, packed.dtype) for b in (self.plain, self.second)]
        split = int(np.prod(shapes[0]))
        n = packed.shape[0]
        return (np.ascontiguousarray(packed[:, :split]).reshape(n, *shapes[0]),
                np.ascontiguousarray(packed[:, split:]).reshape(n, *shapes[1]))

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.start(blob).result()

    def start(self, blob: np.ndarray) -> Pending:
        first, scaled = self.unpack(blob)
        on_second = self.second.start(scaled)  # the second engine runs beside the first
        plain = self.plain.start(first).result()
        return _Joined(plain, self.plain.start(flip_input(first)), on_second)


def _input_shape(backend: Backend, dtype: np.dtype) -> tuple[int, int, int]:
    """One image's input at ``backend``'s size: uint8 (H, W, 3) or the blob's (3, H, W)."""
    if dtype == np.uint8:
        return backend.height, backend.width, 3
    return 3, backend.height, backend.width


class _Joined(Pending):
    """The three passes' forwards: the plain one done, the other two maybe in flight."""

    def __init__(self, plain: list[np.ndarray], flipped: Pending, scaled: Pending) -> None:
        self.plain, self.flipped, self.scaled = plain, flipped, scaled

    def result(self) -> list[np.ndarray]:
        return [*self.plain, *self.flipped.result(), *self.scaled.result()]


class TtaDetector(Detector):
    """A Detector running the three passes and merging them (see the module).

    ``TtaDetector(plain, second, merge="nms", nms=0.45)``: ``plain`` at the model's input
    size, ``second`` the same model and engine at the second size
    (:meth:`around` builds it from a config). ``width``/``height`` are the larger input (the
    second), so an image decoded at a reduced scale still covers both.
    """

    def __init__(self, plain: Detector, second: Detector, merge: str, nms: float) -> None:
        # not Detector.__init__: both models are loaded already
        if merge not in TTA_MERGES:
            raise WorkbenchError(f"--tta-merge {merge}: choose from {', '.join(TTA_MERGES)}")
        self.plain, self.second = plain, second
        self.merge, self.nms = merge, nms
        self.bundle, self.class_names = plain.bundle, plain.class_names
        self.letterbox = plain.letterbox
        self.merge_boxes = False  # the passes' boxes are merged already (``merge``)
        self.width, self.height = second.width, second.height
        self.backend = TtaBackend(plain.backend, second.backend, f"--tta: {self.describe()}")

    @classmethod
    def around(cls, plain: Detector, config: DetectConfig) -> TtaDetector:
        """``plain`` with its second pass: the same model on the same engine at
        :func:`second_size`; WorkbenchError in one line when that engine cannot take it."""
        width, height = second_size(plain.width, plain.height)
        engine = (_engine_name(plain.backend, config.engine) if config.engine == "auto"
                  else config.engine)
        try:
            second = Detector.from_config(replace(config, size=(width, height), engine=engine))
        except WorkbenchError as exc:
            raise WorkbenchError(f"--tta: the {plain.backend.name} engine cannot run this "
                                 f"model at the second input size {width}x{height}: "
                                 f"{exc}") from None
        return cls(plain, second, config.tta_merge, config.nms)

    def describe(self) -> str:
        """The passes in words, e.g. "416x416, flipped and 544x544, merged by nms"."""
        p, s = self.plain, self.second
        return (f"{p.width}x{p.height}, flipped and {s.width}x{s.height}, merged by "
                f"{self.merge}")

    def preprocess(self, image_bgr: np.ndarray) -> np.ndarray:
        return _pack(self.plain.preprocess(image_bgr), self.second.preprocess(image_bgr))

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        return _pack(self.plain.prepare(image_bgr), self.second.prepare(image_bgr))

    def decode(self, heads: list[np.ndarray], image_width: int, image_height: int,
               conf: float) -> Candidates:
        """The passes' heads (plain, flipped, second size: a third each) decoded into the
        image's pixels and merged (``merge``); scores above ``conf``."""
        k = len(heads) // len(PASSES)
        floor = conf if self.merge == "nms" else min(conf, MAP_CONF)
        passes = [
            self.plain.decode(heads[:k], image_width, image_height, floor),
            self.plain.decode([unflip_rows(h) for h in heads[k:2 * k]], image_width,
                              image_height, floor),
            self.second.decode(heads[2 * k:], image_width, image_height, floor),
        ]
        return merge(passes, self.merge, conf, self.nms)


def _pack(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """One image's two inputs, flattened side by side: (1, n1 + n2)."""
    return np.concatenate([first.reshape(1, -1), second.reshape(1, -1)], axis=1)


def _engine_name(backend: Backend, asked: str) -> str:
    """The registry's name of the engine ``backend`` runs on, so the second pass runs where
    ``auto`` put the first; else what was asked."""
    for engine in registry.registered():
        if backend.name in (engine.name, *engine.aliases):
            return engine.name
    return asked
