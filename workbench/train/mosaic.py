"""Mosaic augmentation: four training images in one, then a random affine (scale, translate,
small shear), horizontal flip and HSV jitter; mixup of two mosaics as an option.

The recipe is YOLOv4/v5's (Bochkovskiy et al. 2020; Ultralytics' ``load_mosaic`` and
``random_perspective``), built from this package's pieces so the pixels and the boxes move
through the same matrices:

1. A canvas of twice the network size gets a random centre ``(xc, yc)`` in its middle half.
   Image ``k`` (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) is resized so that it
   fits the network size (aspect kept) and placed with one corner on the centre; the part of it
   inside its quadrant of the canvas is what shows.
2. The affine ``A`` takes the canvas to the network's input: scale about the canvas centre by
   ``1 +- scale``, shear by up to ``shear`` degrees, and put the canvas centre at the output's
   centre moved by up to ``translate`` of the size.
3. Each output pixel shows the image whose visible part holds ``A^-1`` of it (grey where none
   does). Each box is clipped to its image's visible part on the canvas, carried through ``A``
   (the bounding box of its corners), clipped to the output and kept when at least
   ``MIN_VISIBLE`` of its area is left and it is ``MIN_PIXELS`` wide and high (as
   :func:`workbench.train.augment.warp_boxes` keeps them).

Every random number comes from a stateless op seeded per example: a seed gives the same
tensors in every run. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.train.augment import (
    FILL,
    MIN_PIXELS,
    MIN_VISIBLE,
    AugmentSettings,
    mirrored,
    recolor,
    warp_image,
)

#: random numbers one mosaic draws: centre 2, scale 1, shear 2, translate 2, flip 1, colour 5
_DRAWS = 13


@dataclass(frozen=True)
class MosaicSettings:
    """How the mosaic stage augments (Ultralytics' defaults for scale and translate)."""

    scale: float = 0.5  # the canvas is scaled by a factor in [1 - scale, 1 + scale]
    translate: float = 0.1  # the canvas centre moves by up to this share of the output size
    shear: float = 0.0  # degrees, uniform in [-shear, shear] on each axis
    mixup: float = 0.0  # probability of blending with a second mosaic (YOLOv5: 0 for small models)


def _matrix(a, b, c, d, e, f):
    import tensorflow as tf

    zero, one = tf.constant(0.0), tf.constant(1.0)
    row = [tf.cast(v, tf.float32) for v in (a, b, c, d, e, f)]
    return tf.stack([tf.stack(row[:3]), tf.stack(row[3:]), tf.stack([zero, zero, one])])


def placements(sizes, center, out_w, out_h):
    """Per image: (scale, x offset, y offset) onto the canvas and its visible rectangle there.

    ``sizes`` (4, 2) float width, height of the decoded images; ``center`` (2,) the canvas
    point the four images meet at. Returns ``ratio`` (4,), ``offset`` (4, 2) and ``visible``
    (4, 4) x1, y1, x2, y2 in canvas pixels.
    """
    import tensorflow as tf

    out_w, out_h = tf.cast(out_w, tf.float32), tf.cast(out_h, tf.float32)
    ratio = tf.minimum(out_w / sizes[:, 0], out_h / sizes[:, 1])
    pw, ph = sizes[:, 0] * ratio, sizes[:, 1] * ratio
    xc, yc = center[0], center[1]
    left = tf.constant([1.0, 0.0, 1.0, 0.0])  # images 0 and 2 end at the centre, 1 and 3 start
    top = tf.constant([1.0, 1.0, 0.0, 0.0])
    x1 = xc - left * pw
    y1 = yc - top * ph
    offset = tf.stack([x1, y1], axis=1)
    # the quadrant: [0, xc] or [xc, 2W] across, [0, yc] or [yc, 2H] down
    qx1, qx2 = (1 - left) * xc, left * xc + (1 - left) * 2 * out_w
    qy1, qy2 = (1 - top) * yc, top * yc + (1 - top) * 2 * out_h
    visible = tf.stack([tf.maximum(x1, qx1), tf.maximum(y1, qy1),
                        tf.minimum(x1 + pw, qx2), tf.minimum(y1 + ph, qy2)], axis=1)
    return ratio, offset, visible


def canvas_affine(u, out_w, out_h, settings: MosaicSettings):
    """The 3x3 matrix from the 2W x 2H canvas to the W x H output; ``u`` 5 uniforms."""
    import tensorflow as tf

    w, h = tf.cast(out_w, tf.float32), tf.cast(out_h, tf.float32)
    s = 1.0 + (u[0] * 2 - 1) * settings.scale
    shx = tf.tan((u[1] * 2 - 1) * settings.shear * math.pi / 180.0)
    shy = tf.tan((u[2] * 2 - 1) * settings.shear * math.pi / 180.0)
    tx = w / 2 + (u[3] * 2 - 1) * settings.translate * w
    ty = h / 2 + (u[4] * 2 - 1) * settings.translate * h
    # q -> [[s, s*shx], [s*shy, s]] (q - (W, H)) + (tx, ty)
    a, b, c, d = s, s * shx, s * shy, s
    return _matrix(a, b, tx - a * w - b * h, c, d, ty - c * w - d * h)


def _owner_masks(affine, visible, out_w, out_h):
    """(4, H, W) float masks: 1 where the output pixel's canvas point lies in image k's
    visible rectangle (the quadrants do not overlap, so at most one holds it)."""
    import tensorflow as tf

    inv = tf.linalg.inv(affine)
    xs = tf.range(tf.cast(out_w, tf.int32), dtype=tf.float32) + 0.5
    ys = tf.range(tf.cast(out_h, tf.int32), dtype=tf.float32) + 0.5
    gx, gy = tf.meshgrid(xs, ys)
    qx = inv[0, 0] * gx + inv[0, 1] * gy + inv[0, 2]
    qy = inv[1, 0] * gx + inv[1, 1] * gy + inv[1, 2]
    v = visible[:, :, None, None]
    inside = ((qx[None] >= v[:, 0]) & (qx[None] < v[:, 2])
              & (qy[None] >= v[:, 1]) & (qy[None] < v[:, 3]))
    return tf.cast(inside, tf.float32)


def mosaic_boxes(boxes, classes, sizes, ratio, offset, visible, affine, out_w, out_h):
    """Boxes of the four images (4, M, 4 normalized xyxy; classes (4, M), -1 padding) on the
    output: (4M, 4) normalized xyxy and (4M,) classes, the kept ones first in their order."""
    import tensorflow as tf

    w, h = tf.cast(out_w, tf.float32), tf.cast(out_h, tf.float32)
    px = boxes * tf.tile(sizes, [1, 2])[:, None, :]  # source pixels
    canvas = px * ratio[:, None, None] + tf.tile(offset, [1, 2])[:, None, :]
    vis = visible[:, None, :]
    clipped = tf.concat([tf.maximum(canvas[..., :2], vis[..., :2]),
                         tf.minimum(canvas[..., 2:], vis[..., 2:])], axis=-1)
    canvas, clipped = tf.reshape(canvas, [-1, 4]), tf.reshape(clipped, [-1, 4])
    cls = tf.reshape(classes, [-1])

    def area(b):
        return tf.maximum(b[:, 2] - b[:, 0], 0.0) * tf.maximum(b[:, 3] - b[:, 1], 0.0)

    x1, y1, x2, y2 = tf.unstack(clipped, axis=1)
    corners = tf.stack([tf.stack([x1, y1], 1), tf.stack([x2, y1], 1),
                        tf.stack([x1, y2], 1), tf.stack([x2, y2], 1)], axis=1)
    moved = tf.einsum("ij,mkj->mki", affine[:2, :2], corners) + affine[:2, 2]
    lo, hi = tf.reduce_min(moved, axis=1), tf.reduce_max(moved, axis=1)
    limit = tf.stack([w, h])
    clo, chi = tf.clip_by_value(lo, 0.0, limit), tf.clip_by_value(hi, 0.0, limit)
    seen_wh = chi - clo
    # the share left: of the box by its image's visible part, then of that by the output
    share = (area(clipped) / tf.maximum(area(canvas), 1e-9)
             * tf.reduce_prod(tf.maximum(seen_wh, 0.0), axis=1)
             / tf.maximum(tf.reduce_prod(hi - lo, axis=1), 1e-9))
    keep = (cls >= 0) & tf.reduce_all(seen_wh >= MIN_PIXELS, axis=1) & (share >= MIN_VISIBLE)
    out = tf.concat([clo / limit, chi / limit], axis=1)
    order = tf.argsort(tf.cast(~keep, tf.int32), stable=True)
    keep = tf.gather(keep, order)
    out = tf.where(keep[:, None], tf.gather(out, order), 0.0)
    return out, tf.where(keep, tf.gather(cls, order), -1)


def compose(images, boxes, classes, u, out_w, out_h, settings: MosaicSettings):
    """One mosaic before flip and colour: four float32 images in [0, 1] (a list of (H, W, 3)),
    their boxes (4, M, 4) and classes (4, M), ``u`` 7 uniforms. Returns the (out_h, out_w, 3)
    image, (4M, 4) boxes and (4M,) classes."""
    import tensorflow as tf

    w, h = tf.cast(out_w, tf.float32), tf.cast(out_h, tf.float32)
    sizes = tf.stack([tf.cast(tf.shape(im)[1::-1], tf.float32) for im in images])
    center = tf.stack([w * (0.5 + u[0]), h * (0.5 + u[1])])
    ratio, offset, visible = placements(sizes, center, out_w, out_h)
    affine = canvas_affine(u[2:7], out_w, out_h, settings)
    masks = _owner_masks(affine, visible, out_w, out_h)
    out = FILL * (1.0 - tf.reduce_sum(masks, axis=0))[..., None]
    for k, image in enumerate(images):
        place = _matrix(ratio[k], 0.0, offset[k, 0], 0.0, ratio[k], offset[k, 1])
        out += masks[k][..., None] * warp_image(image, affine @ place, out_w, out_h)
    kept, cls = mosaic_boxes(boxes, classes, sizes, ratio, offset, visible, affine, out_w, out_h)
    return out, kept, cls


def flip_and_recolor(image, boxes, classes, u, augment: AugmentSettings | None):
    """Horizontal flip (with ``augment.flip``) and HSV jitter; ``u`` 6 uniforms."""
    import tensorflow as tf

    if augment is None:
        return image, boxes
    if augment.flip:
        flip = u[0] < 0.5
        image = tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image)
        boxes = tf.where(flip & (classes >= 0)[:, None], mirrored(boxes), boxes)
    return recolor(image, u[1:], augment), boxes


def mosaic_example(images, boxes, classes, seed, out_w, out_h, settings: MosaicSettings,
                   augment: AugmentSettings | None):
    """A training example from four decoded images (uint8 (H, W, 3) each; ``boxes`` (4, M, 4),
    ``classes`` (4, M)): float32 RGB in [0, 1] at (out_h, out_w), (4M, 4) boxes, (4M,)."""
    import tensorflow as tf

    u = tf.random.stateless_uniform([_DRAWS], seed=seed)
    pixels = [tf.cast(im, tf.float32) / 255.0 for im in images]
    out, kept, cls = compose(pixels, boxes, classes, u[:7], out_w, out_h, settings)
    out, kept = flip_and_recolor(out, kept, cls, u[7:], augment)
    return tf.clip_by_value(out, 0.0, 1.0), kept, cls


def mixup(first, second, seed):
    """Blend two examples (image, boxes, classes) as YOLOv5 does: ratio ~ Beta(32, 32), every
    box of both kept. Returns the blended image, (2M, 4) boxes and (2M,) classes, kept first."""
    import tensorflow as tf

    a = tf.random.stateless_gamma([], seed=seed, alpha=32.0)
    b = tf.random.stateless_gamma([], seed=seed + tf.constant([0, 1], seed.dtype), alpha=32.0)
    r = a / (a + b)
    image = first[0] * r + second[0] * (1.0 - r)
    boxes = tf.concat([first[1], second[1]], axis=0)
    classes = tf.concat([first[2], second[2]], axis=0)
    order = tf.argsort(tf.cast(classes < 0, tf.int32), stable=True)
    return image, tf.gather(boxes, order), tf.gather(classes, order)
