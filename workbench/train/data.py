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
from workbench.train.copy_paste import copy_paste
from workbench.train.mosaic import MosaicSettings, mixup, mosaic_example
from workbench.train.multiscale import batch_sizes

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
    #: (N, 2) width, height as shown (EXIF orientation applied); for the decoding scale
    sizes: np.ndarray | None = None

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
    sizes = np.zeros((n, 2), np.int64)
    for i, rec in enumerate(records):
        width, height = rec.width, rec.height
        if width <= 0 or height <= 0:
            width, height = image_size(rec.path)
        sizes[i] = width, height
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
    return Examples([str(r.path) for r in records], in_graph, orientation, boxes, classes,
                    sizes)


#: the reduced scales libjpeg decodes at (its scaled IDCT), as tf.io.decode_jpeg's ``ratio``
DECODE_RATIOS = (1, 2, 4, 8)


def decode_ratios(examples: Examples, need_w: float, need_h: float) -> np.ndarray:
    """(N,) int32: per image the largest of 1, 2, 4, 8 at which a JPEG decodes to at least
    ``need_w`` x ``need_h`` pixels (reduced sizes are ceil(size / ratio)); 1 for every other
    kind and where the sizes are unknown. Decoding a 4000 px photo at 1/8 for a 416 network
    skips most of the IDCT work, and the pixels lost are ones the resize would average away.
    """
    n = len(examples)
    out = np.ones(n, np.int32)
    if examples.sizes is None:
        return out
    jpeg = np.array([p.lower().endswith((".jpg", ".jpeg")) for p in examples.paths], bool)
    w, h = examples.sizes[:, 0], examples.sizes[:, 1]
    for r in DECODE_RATIOS[1:]:
        fits = jpeg & examples.in_graph & (-(-w // r) >= need_w) & (-(-h // r) >= need_h)
        out[fits] = r
    return out


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


def _decode_jpeg(contents, ratio):
    """A JPEG at 1/``ratio`` scale (libjpeg's scaled IDCT: ratio is an attribute of the op,
    so one branch per ratio)."""
    import tensorflow as tf

    if isinstance(ratio, int):
        # INTEGER_ACCURATE gives OpenCV's pixels bit for bit; TF's default IDCT differs by up to 6
        return tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE",
                                 ratio=ratio)
    index = tf.cast(tf.math.log(tf.cast(ratio, tf.float32)) / np.log(2.0) + 0.5, tf.int32)
    branches = [lambda r=r: _decode_jpeg(contents, r) for r in DECODE_RATIOS]
    return tf.switch_case(tf.clip_by_value(index, 0, len(DECODE_RATIOS) - 1), branches)


def decode_image(path, in_graph, orientation, ratio=1):
    """(H, W, 3) uint8 RGB of the EXIF-oriented image; a JPEG at 1/``ratio`` scale."""
    import tensorflow as tf

    def graph():
        contents = tf.io.read_file(path)
        raw = tf.cond(
            tf.io.is_jpeg(contents),
            lambda: _decode_jpeg(contents, ratio),
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
                 skip_batches: int = 0, parallel: int | None = None,
                 mosaic: MosaicSettings | None = None, multiscale: float = 0.0,
                 scale_every: int = 10, scaled_decoding: bool = True, copy_paste: float = 0.0):
    """A ``tf.data.Dataset`` of (images, boxes, classes) batches for one epoch.

    ``skip_batches`` starts part-way through the epoch (resuming after an interrupt).
    ``mosaic``: every example is a mosaic of four (:mod:`workbench.train.mosaic`), its boxes
    (B, 4M, 4) (8M with mixup). ``multiscale``: the size of each group of ``scale_every``
    batches is drawn within +-multiscale of ``width`` x ``height``
    (:mod:`workbench.train.multiscale`); the images are then (B, None, None, 3) across the
    epoch. ``scaled_decoding``: large JPEGs decode at 1/2, 1/4 or 1/8 scale when that still
    gives the pixels the largest size needs (:func:`decode_ratios`). ``copy_paste``: each object
    is copied to its mirrored place with this probability (:mod:`workbench.train.copy_paste`),
    which doubles the boxes' second dimension.
    """
    import tensorflow as tf

    n = len(examples)
    if n == 0:
        raise WorkbenchError("no labeled images to read")
    order = epoch_order(n, seed, epoch, shuffle)
    # per-example stateless seeds: (seed, epoch * n + position) never repeat across epochs
    seeds = np.stack([np.full(n, seed, np.int64), epoch * n + np.arange(n, dtype=np.int64)], 1)
    batches = -(-n // batch)  # every example gets a size, the dropped remainder too
    sizes = batch_sizes(batches, width, height, multiscale, seed=seed, epoch=epoch,
                        every=scale_every)
    out_sizes = np.repeat(sizes, batch, axis=0)[:n]
    magnify = 1.0 + (mosaic.scale if mosaic is not None else
                     augment.zoom if augment is not None else 0.0)
    need = sizes.max(axis=0) * magnify
    ratios = (decode_ratios(examples, need[0], need[1]) if scaled_decoding
              else np.ones(n, np.int32))
    start = skip_batches * batch
    order, seeds, out_sizes = order[start:], seeds[start:], out_sizes[start:]
    # one size for the epoch: Python ints, so the op shapes stay static as before multi-scale
    fixed = (width, height) if multiscale <= 0 else None
    if mosaic is not None:
        ds = _mosaic_examples(examples, order, seeds, out_sizes, ratios, mosaic, augment,
                              rng=np.random.default_rng([seed, epoch, 4]), fixed=fixed,
                              parallel=parallel, copies=copy_paste)
    else:
        ds = _plain_examples(examples, order, seeds, out_sizes, ratios, augment, fixed=fixed,
                             parallel=parallel, copies=copy_paste)
    ds = ds.batch(batch, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def _pasted(example, example_seed, copies: float):
    """The example with :func:`copy_paste` applied (its own seed stream), or as it is."""
    if copies <= 0:
        return example
    image, boxes, classes = example
    return copy_paste(image, boxes, classes, example_seed + [0, 2 << 40], copies)


def _plain_examples(examples: Examples, order, seeds, out_sizes, ratios, augment, *,
                    fixed: tuple[int, int] | None, parallel: int | None, copies: float):
    import tensorflow as tf

    tensors = (np.asarray(examples.paths, dtype=object)[order], examples.in_graph[order],
               examples.orientation[order], examples.boxes[order], examples.classes[order], seeds,
               out_sizes.astype(np.int32), ratios[order])

    # not converted by autograph (explicit tf.cond only): autograph re-reads the source file
    # every epoch, which breaks a long run when the code is edited under it
    @tf.autograph.experimental.do_not_convert
    def load(path, in_graph, orientation, boxes, classes, example_seed, size, ratio):
        image = decode_image(path, in_graph, orientation, ratio)
        out_w, out_h = fixed or (size[0], size[1])
        return _pasted(transform_example(image, boxes, classes, example_seed, out_w, out_h,
                                         augment), example_seed, copies)

    ds = tf.data.Dataset.from_tensor_slices(tensors)
    return ds.map(load, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)


def _mosaic_examples(examples: Examples, order, seeds, out_sizes, ratios,
                     mosaic: MosaicSettings, augment, *, rng, fixed: tuple[int, int] | None,
                     parallel: int | None, copies: float):
    """Each example the mosaic of itself and three others drawn at random (with replacement,
    as YOLOv5 draws them); with ``mosaic.mixup`` some are blended with a second mosaic."""
    import tensorflow as tf

    n_all, m = len(examples), examples.boxes.shape[1]
    count = len(order)
    partners = rng.integers(0, n_all, (count, 7))
    quads = np.concatenate([order[:, None], partners[:, :3]], axis=1)
    second = partners[:, 3:]
    blend = rng.random(count) < mosaic.mixup
    paths = tf.constant(np.asarray(examples.paths, dtype=object).astype(str))
    in_graph, orientation = tf.constant(examples.in_graph), tf.constant(examples.orientation)
    all_boxes, all_classes = tf.constant(examples.boxes), tf.constant(examples.classes)
    all_ratios = tf.constant(ratios)

    def one(indices, example_seed, out_w, out_h):
        images = [decode_image(paths[indices[k]], in_graph[indices[k]],
                               orientation[indices[k]], all_ratios[indices[k]])
                  for k in range(4)]
        return mosaic_example(images, tf.gather(all_boxes, indices),
                              tf.gather(all_classes, indices), example_seed, out_w, out_h,
                              mosaic, augment)

    def mixed(quad, other, mix, example_seed, out_w, out_h):
        first = one(quad, example_seed, out_w, out_h)
        if mosaic.mixup <= 0:
            return first

        def blended():
            return mixup(first, one(other, example_seed + [0, 1 << 40], out_w, out_h),
                         example_seed)

        def alone():
            return (first[0], tf.pad(first[1], [[0, 4 * m], [0, 0]]),
                    tf.pad(first[2], [[0, 4 * m]], constant_values=-1))

        return tf.cond(mix, blended, alone)

    @tf.autograph.experimental.do_not_convert
    def load(quad, other, mix, example_seed, size):
        out_w, out_h = fixed or (size[0], size[1])
        return _pasted(mixed(quad, other, mix, example_seed, out_w, out_h), example_seed,
                       copies)

    tensors = (quads.astype(np.int32), second.astype(np.int32), blend, seeds,
               out_sizes.astype(np.int32))
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    return ds.map(load, num_parallel_calls=parallel or tf.data.AUTOTUNE, deterministic=True)


def steps_per_epoch(n: int, batch: int, drop_remainder: bool = True) -> int:
    return n // batch if drop_remainder else -(-n // batch)

