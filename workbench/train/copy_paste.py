"""Copy-paste augmentation for box labels: objects copied to their mirrored place in the image.

YOLOv5's ``copy_paste`` (after Ghiasi et al. 2021, "Simple Copy-Paste"), with a box where
YOLOv5 has a segment: each labeled object is, with probability ``p``, copied from the
horizontally flipped image, which puts the object's mirror image at the mirrored place
(``x -> W - x``). The copy is kept when it covers less than ``MAX_COVER`` of every object
labeled before (YOLOv5's intersection over the labeled box's area), and its box joins the
labels with the object's class. Without a mask the copy is the whole rectangle, background
included: the objects a detector must find then appear twice as often, in new places, without
a second image to decode.

Why copies of the image itself: the pixels at a mirrored box are the flipped image's pixels
there, so the copies of two objects overlap on the output exactly as the objects overlap on
the input, and checking each copy against the labels before the paste is the whole check.
Each random number is a stateless op on the example's seed; TensorFlow is imported inside.
"""

from __future__ import annotations

from workbench.train.augment import mirrored

#: a copy is dropped when it would cover this share of an object labeled before (YOLOv5's 0.30)
MAX_COVER = 0.30


def cover(boxes, labeled):
    """(N, N): the share of ``labeled[j]`` (N, 4) that ``boxes[i]`` covers; 0 for empty ones."""
    import tensorflow as tf

    lo = tf.maximum(boxes[:, None, :2], labeled[None, :, :2])
    hi = tf.minimum(boxes[:, None, 2:], labeled[None, :, 2:])
    inter = tf.reduce_prod(tf.maximum(hi - lo, 0.0), axis=-1)
    area = tf.reduce_prod(tf.maximum(labeled[:, 2:] - labeled[:, :2], 0.0), axis=-1)
    return tf.where(area[None, :] > 0, inter / tf.maximum(area[None, :], 1e-12), 0.0)


def copies_kept(boxes, copies, classes, draws, p: float):
    """Which objects are copied: drawn (``draws`` (N,) uniforms below ``p``), labeled, and
    their copy (``copies``, the mirrored boxes) covers under ``MAX_COVER`` of every labeled
    box (their own included)."""
    import tensorflow as tf

    labeled = classes >= 0
    shares = cover(copies, tf.where(labeled[:, None], boxes, 0.0))
    fits = tf.reduce_all(shares < MAX_COVER, axis=1)
    return labeled & (draws < p) & fits


def paste_mask(boxes, chosen, height, width):
    """(H, W) bool: the pixels whose centre lies in a chosen box (normalized xyxy). The rows
    and columns of each box are separable, so the union is one (H, N) x (N, W) product."""
    import tensorflow as tf

    xs = (tf.range(width, dtype=tf.float32) + 0.5) / tf.cast(width, tf.float32)
    ys = (tf.range(height, dtype=tf.float32) + 0.5) / tf.cast(height, tf.float32)
    on = tf.cast(chosen, tf.float32)[:, None]
    cols = tf.cast((xs[None] >= boxes[:, 0:1]) & (xs[None] < boxes[:, 2:3]), tf.float32) * on
    rows = tf.cast((ys[None] >= boxes[:, 1:2]) & (ys[None] < boxes[:, 3:4]), tf.float32)
    return tf.matmul(rows, cols, transpose_a=True) > 0.5


def copy_paste(image, boxes, classes, seed, p: float):
    """One example with copies pasted: ``image`` (H, W, 3) float, ``boxes`` (N, 4) normalized
    xyxy, ``classes`` (N,) with -1 padding. Returns the image, (2N, 4) boxes and (2N,)
    classes, the labeled ones first (the originals, then the copies)."""
    import tensorflow as tf

    draws = tf.random.stateless_uniform([tf.shape(classes)[0]], seed=seed)
    copies = mirrored(boxes)
    chosen = copies_kept(boxes, copies, classes, draws, p)
    shape = tf.shape(image)
    mask = paste_mask(copies, chosen, shape[0], shape[1])
    out = tf.where(mask[..., None], tf.reverse(image, [1]), image)
    all_boxes = tf.concat([boxes, tf.where(chosen[:, None], copies, 0.0)], axis=0)
    all_classes = tf.concat([classes, tf.where(chosen, classes, -1)], axis=0)
    order = tf.argsort(tf.cast(all_classes < 0, tf.int32), stable=True)
    return out, tf.gather(all_boxes, order), tf.gather(all_classes, order)
