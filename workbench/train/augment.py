"""In-graph augmentation for training: the pixels and the boxes move together.

One projective-transform op does the detector's stretch resize plus darknet's jitter crop,
horizontal flip, rotation and zoom, so the geometry is a single 3x3 matrix applied both to the
image and to the box corners. Colour changes (hue, saturation, exposure) follow darknet's
``rand_scale``. Every random number comes from a stateless op seeded per example, so a seed
gives the same tensors in every run, whatever the parallelism of the tf.data map.

TensorFlow is imported inside the functions: this module is importable without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.darknet.cfg import DarknetCfg

#: Grey filled in where the transformed window leaves the source image (darknet's letterbox grey).
FILL = 0.5
#: A box cut by the image border is kept when this share of its area stays visible.
MIN_VISIBLE = 0.2
#: ... and when it is at least this many output pixels wide and high.
MIN_PIXELS = 2.0


@dataclass(frozen=True)
class AugmentSettings:
    """How much to augment. Defaults change nothing but flip; ``from_cfg`` reads darknet's keys."""

    flip: bool = True
    jitter: float = 0.0  # darknet [yolo] jitter: each window edge moves by up to jitter * size
    hue: float = 0.0  # hue shift, fraction of the colour circle (darknet hue=.1)
    saturation: float = 1.0  # scale in [1/s, s] (darknet saturation=1.5)
    exposure: float = 1.0  # brightness scale in [1/e, e] (darknet exposure=1.5)
    rotate: float = 0.0  # degrees, uniform in [-rotate, rotate] (darknet [net] angle)
    zoom: float = 0.0  # scale about the centre, uniform in [1 - zoom, 1 + zoom]

    @classmethod
    def from_cfg(cls, darknet: DarknetCfg, *, rotate: float | None = None,
                 zoom: float = 0.0) -> AugmentSettings:
        net = darknet.net
        heads = darknet.yolo_layers()
        jitter = darknet.layers[heads[0]].get_float("jitter", 0.0) if heads else 0.0
        return cls(
            flip=net.get_int("flip", 1) != 0,
            jitter=min(max(jitter, 0.0), 0.45),  # a window must keep a positive size
            hue=net.get_float("hue", 0.0),
            saturation=max(net.get_float("saturation", 1.0), 1.0),
            exposure=max(net.get_float("exposure", 1.0), 1.0),
            rotate=net.get_float("angle", 0.0) if rotate is None else rotate,
            zoom=zoom,
        )


def _rand_scale(u_scale, u_invert, limit: float):
    """darknet's rand_scale: a factor in [1, limit], inverted half of the time."""
    import tensorflow as tf

    s = 1.0 + u_scale * (limit - 1.0)
    return tf.where(u_invert < 0.5, s, 1.0 / s)


def geometry(width, height, out_w: int, out_h: int, u, settings: AugmentSettings | None):
    """3x3 matrix taking continuous source pixels to continuous output pixels.

    ``u`` holds uniform numbers in [0, 1) (at least 7). With ``settings`` None it is the plain
    stretch resize the detector does.
    """
    import tensorflow as tf

    w = tf.cast(width, tf.float32)
    h = tf.cast(height, tf.float32)
    out_w, out_h = tf.cast(out_w, tf.float32), tf.cast(out_h, tf.float32)  # or a tensor size
    x0, y0, ww, wh = 0.0, 0.0, w, h
    if settings is not None and settings.jitter > 0:
        j = settings.jitter
        left, right = (u[0] * 2 - 1) * j * w, (u[1] * 2 - 1) * j * w
        top, bottom = (u[2] * 2 - 1) * j * h, (u[3] * 2 - 1) * j * h
        x0, y0, ww, wh = left, top, w - left - right, h - top - bottom
    one, zero = tf.constant(1.0), tf.constant(0.0)

    def mat(a, b, c, d, e, f):
        return tf.stack([tf.stack([a, b, c]), tf.stack([d, e, f]), tf.stack([zero, zero, one])])

    sx, sy = out_w / ww, out_h / wh
    m = mat(sx * one, zero, -x0 * sx, zero, sy * one, -y0 * sy)
    if settings is None:
        return m
    if settings.flip:
        flip = tf.cast(u[4] < 0.5, tf.float32)
        m = mat(1 - 2 * flip, zero, flip * out_w, zero, one, zero) @ m
    if settings.rotate > 0 or settings.zoom > 0:
        angle = (u[5] * 2 - 1) * settings.rotate * math.pi / 180.0
        z = 1.0 + (u[6] * 2 - 1) * settings.zoom
        cx, cy = out_w / 2.0, out_h / 2.0
        c, s = tf.cos(angle) * z, tf.sin(angle) * z
        m = mat(c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy) @ m
    return m


def warp_image(image, matrix, out_w: int, out_h: int):
    """Resample ``image`` (H, W, 3) float32 through ``matrix`` into (out_h, out_w, 3)."""
    import tensorflow as tf

    inv = tf.linalg.inv(matrix)
    # The op works in index coordinates (pixel centres at integers): q = inv (p + .5) - .5
    a = inv[:2, :2]
    t = tf.linalg.matvec(a, tf.constant([0.5, 0.5])) + inv[:2, 2] - 0.5
    transform = tf.stack([a[0, 0], a[0, 1], t[0], a[1, 0], a[1, 1], t[1], 0.0, 0.0])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform[None],
        output_shape=tf.stack([tf.cast(out_h, tf.int32), tf.cast(out_w, tf.int32)]),
        fill_value=tf.constant(FILL), interpolation="BILINEAR", fill_mode="CONSTANT")
    return out[0]


def mirrored(boxes):
    """Normalized xyxy boxes (N, 4) flipped left to right (x -> 1 - x)."""
    import tensorflow as tf

    return tf.stack([1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], axis=1)


def warp_boxes(boxes, classes, matrix, width, height, out_w: int, out_h: int):
    """Move normalized xyxy boxes (M, 4) through ``matrix``; drop the ones cut away.

    The kept boxes come first, in their order; dropped ones and padding get class -1 and zeros.
    """
    import tensorflow as tf

    size = tf.stack([tf.cast(width, tf.float32), tf.cast(height, tf.float32)])
    x1, y1, x2, y2 = tf.unstack(boxes, axis=1)
    corners = tf.stack([tf.stack([x1, y1], 1), tf.stack([x2, y1], 1),
                        tf.stack([x1, y2], 1), tf.stack([x2, y2], 1)], axis=1) * size  # (M,4,2)
    moved = tf.einsum("ij,mkj->mki", matrix[:2, :2], corners) + matrix[:2, 2]
    lo, hi = tf.reduce_min(moved, axis=1), tf.reduce_max(moved, axis=1)
    limit = tf.cast(tf.stack([out_w, out_h]), tf.float32)
    clo, chi = tf.clip_by_value(lo, 0.0, limit), tf.clip_by_value(hi, 0.0, limit)
    full = tf.reduce_prod(hi - lo, axis=1)
    seen_wh = chi - clo
    seen = tf.reduce_prod(seen_wh, axis=1)
    keep = ((classes >= 0) & tf.reduce_all(seen_wh >= MIN_PIXELS, axis=1)
            & (seen >= MIN_VISIBLE * full))
    out = tf.concat([clo / limit, chi / limit], axis=1)
    order = tf.argsort(tf.cast(~keep, tf.int32), stable=True)
    keep = tf.gather(keep, order)
    out = tf.where(keep[:, None], tf.gather(out, order), 0.0)
    cls = tf.where(keep, tf.gather(classes, order), -1)
    return out, cls


def recolor(image, u, settings: AugmentSettings):
    """darknet's HSV jitter on an RGB image in [0, 1]: hue shift, saturation and value scales."""
    import tensorflow as tf

    if settings.hue <= 0 and settings.saturation <= 1 and settings.exposure <= 1:
        return image
    hsv = tf.image.rgb_to_hsv(image)
    h, s, v = tf.unstack(hsv, axis=-1)
    h = tf.math.floormod(h + (u[0] * 2 - 1) * settings.hue, 1.0)
    s = tf.clip_by_value(s * _rand_scale(u[1], u[2], settings.saturation), 0.0, 1.0)
    v = tf.clip_by_value(v * _rand_scale(u[3], u[4], settings.exposure), 0.0, 1.0)
    return tf.image.hsv_to_rgb(tf.stack([h, s, v], axis=-1))


def transform_example(image, boxes, classes, seed, out_w: int, out_h: int,
                      settings: AugmentSettings | None):
    """Resize (and, with ``settings``, augment) one decoded example.

    ``image`` is (H, W, 3) uint8 RGB, ``boxes`` (M, 4) normalized xyxy, ``classes`` (M,) int32
    with -1 padding, ``seed`` a (2,) int tensor. Returns float32 RGB in [0, 1] at the network
    size, the moved boxes and their classes.
    """
    import tensorflow as tf

    shape = tf.shape(image)
    height, width = shape[0], shape[1]
    pixels = tf.cast(image, tf.float32) / 255.0
    if settings is None:
        # The detector's stretch: cv2.resize INTER_LINEAR == half-pixel bilinear, no antialias.
        out = tf.image.resize(pixels, (out_h, out_w), method="bilinear", antialias=False)
        return out, boxes, classes
    u = tf.random.stateless_uniform([12], seed=seed)
    matrix = geometry(width, height, out_w, out_h, u[:7], settings)
    out = warp_image(pixels, matrix, out_w, out_h)
    out = recolor(out, u[7:], settings)
    boxes, classes = warp_boxes(boxes, classes, matrix, width, height, out_w, out_h)
    return tf.clip_by_value(out, 0.0, 1.0), boxes, classes
