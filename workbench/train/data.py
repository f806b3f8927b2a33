"""The tf.data input pipeline: labeled images -> (images, boxes, classes) batches.

A batch is ``images`` (B, H, W, 3) float32 RGB in [0, 1] at the network size (stretched as the
detector does), ``boxes`` (B, M, 4) float32 normalized xyxy and ``classes`` (B, M) int32 with
-1 marking padding. JPEG, PNG, BMP, GIF and WebP decode inside the graph (EXIF orientation
applied there too); other kinds (TIFF, 16-bit, CMYK...) go through ``workbench.data.images.load_rgb``.

Each epoch is its own deterministic dataset: the order comes from ``(seed, epoch)`` and every
example's augmentation from a stateless seed, so a resumed run sees the same batches.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from workbench.data.images import check_decodable, exif_orientation, image_size, load_rgb
from workbench.data.splits import training_split
from workbench.errors import WorkbenchError
from workbench.labels.dataset import Dataset, ImageRecord
from workbench.train.augment import AugmentSettings, transform_example

#: Decoded inside the TensorFlow graph; the rest through workbench.data.images.
GRAPH_DECODED = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
#: Upper bound on boxes per image in a batch (more are dropped, largest kept).
MAX_BOXES = 100


@dataclass
class Examples:
    """Host-side arrays describing N labeled images, ready to become a tf.data pipeline."""

    paths: list[str]
    in_graph: np.ndarray  # (N,) bool: decode in the graph (else through workbench.data.images)
    orientation: np.ndarray  # (N,) int32 EXIF orientation for in-graph decoding, 1 otherwise
    boxes: np.ndarray  # (N, M, 4) float32 normalized xyxy
    classes: np.ndarray  # (N, M) int32, -1 padding

    def __len__(self) -> int:
        return len(self.paths)


def examples_from_records(records: list[ImageRecord], num_classes: int,
                          max_boxes: int = MAX_BOXES) -> Examples:
    """Normalize the records' pixel boxes; clear error for a box whose class is out of range."""
    n = len(records)
    m = max(1, min(max_boxes, max((len(r.boxes) for r in records), default=1)))
    boxes = np.zeros((n, m, 4), np.float32)
    classes = np.full((n, m), -1, np.int32)
    in_graph = np.zeros(n, bool)
    orientation = np.ones(n, np.int32)
    for i, rec in enumerate(records):
        width, height = rec.width, rec.height
        if width <= 0 or height <= 0:
            width, height = image_size(rec.path)
        # the largest boxes survive the cap: tiny ones matter least to a small model
        kept = sorted(rec.boxes, key=lambda b: -(b.width * b.height))[:m]
        for j, b in enumerate(kept):
            if not 0 <= b.class_id < num_classes:
                raise WorkbenchError(f"{rec.path}: box {j + 1} has class {b.class_id}, the "
                                     f"dataset has {num_classes} classes")
            boxes[i, j] = (b.x1 / width, b.y1 / height, b.x2 / width, b.y2 / height)
            classes[i, j] = b.class_id
        if rec.path.suffix.lower() in GRAPH_DECODED:
            in_graph[i] = True
            orientation[i] = exif_orientation(rec.path)
    np.clip(boxes, 0.0, 1.0, out=boxes)
    return Examples([str(r.path) for r in records], in_graph, orientation, boxes, classes)


def undecodable(records: list[ImageRecord], workers: int = 4) -> list[tuple[ImageRecord, str]]:
    """The records whose image does not decode in full, each with one line saying why.

    A dataset scan reads headers only, so a truncated JPEG looks clean there, and TensorFlow
    then stopped the run mid-epoch with InvalidArgumentError. The check
    (:func:`workbench.data.images.check_decodable`, as ``stats --decode``) runs once, before
    training starts, on a few threads.
    """
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(lambda rec: check_decodable(rec.path), records))
    return [(rec, why) for rec, why in zip(records, found, strict=True) if why]


def split_records(dataset: Dataset, valid_fraction: float = 0.1) -> tuple[list, list]:
    """(train, valid) labeled records: :func:`workbench.data.splits.training_split`."""
    return training_split(dataset, valid_fraction)


def _orient(image, orientation):
    """Apply an EXIF orientation (1-8) to an (H, W, 3) image inside the graph."""
    import tensorflow as tf

    def transpose(x):
        return tf.transpose(x, [1, 0, 2])

    branches = [
        lambda: image,  # 0: not a valid tag, leave as is
        lambda: image,  # 1: normal
        lambda: tf.reverse(image, [1]),  # 2: mirrored
        lambda: tf.image.rot90(image, 2),  # 3: upside down
        lambda: tf.reverse(image, [0]),  # 4: mirrored upside down
        lambda: transpose(image),  # 5: transpose
        lambda: tf.image.rot90(image, 3),  # 6: rotated, shown 90 degrees clockwise
        lambda: tf.image.rot90(transpose(image), 2),  # 7: transverse
        lambda: tf.image.rot90(image, 1),  # 8: shown 90 degrees counter-clockwise
    ]
    return tf.switch_case(tf.clip_by_value(orientation, 0, 8), branches)


def _load_with_workbench(path: bytes) -> np.ndarray:
    return np.ascontiguousarray(load_rgb(path.decode("utf-8")), dtype=np.uint8)


def decode_image(path, in_graph, orientation):
    """(H, W, 3) uint8 RGB of the EXIF-oriented image."""
    import tensorflow as tf

    def graph():
        contents = tf.io.read_file(path)
        # INTEGER_ACCURATE gives OpenCV's pixels bit for bit; TF's default IDCT differs by up to 6
        raw = tf.cond(
            tf.io.is_jpeg(contents),
            lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_image(contents, channels=3, dtype=tf.uint8,
                                       expand_animations=False))
        return _orient(tf.ensure_shape(raw, [None, None, 3]), orientation)

    def python():
        return tf.numpy_function(_load_with_workbench, [path], tf.uint8, stateful=False)

    image = tf.cond(in_graph, graph, python)
    return tf.ensure_shape(image, [None, None, 3])


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """The order examples are read in during ``epoch``: a pure function of its arguments."""
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def make_dataset(examples: Examples, width: int, height: int, batch: int, *,
                 augment: AugmentSettings | None = None, seed: int = 0, epoch: int = 0,
                 shuffle: bool = False, drop_remainder: bool = False,
                 skip_batches: int = 0, parallel: int | None = None):
    """A ``tf.data.Dataset`` of (images, boxes, classes) batches for one epoch.

    ``skip_batches`` starts part-way through the epoch (resuming after an interrupt).
    """
    import tensorflow as tf

    n = len(examples)
    if n == 0:
        raise WorkbenchError("no labeled images to read")
    order = epoch_order(n, seed, epoch, shuffle)
    # per-example stateless seeds: (seed, epoch * n + position) never repeat across epochs
    seeds = np.stack([np.full(n, seed, np.int64), epoch * n + np.arange(n, dtype=np.int64)], 1)
    start = skip_batches * batch
    order, seeds = order[start:], seeds[start:]
    tensors = (np.asarray(examples.paths, dtype=object)[order], examples.in_graph[order],
               examples.orientation[order], examples.boxes[order], examples.classes[order], seeds)

    # not converted by autograph (explicit tf.cond only): autograph re-reads the source file
    # every epoch, which breaks a long run when the code is edited under it
    @tf.autograph.experimental.do_not_convert
    def load(path, in_graph, orientation, boxes, classes, example_seed):
        image = decode_image(path, in_graph, orientation)
        return transform_example(image, boxes, classes, example_seed, width, height, augment)

    ds = tf.data.Dataset.from_tensor_slices(tensors)
    ds = ds.map(load, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(n: int, batch: int, drop_remainder: bool = True) -> int:
    return n // batch if drop_remainder else -(-n // batch)

