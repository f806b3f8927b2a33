"""Darknet .weights files: read, write (byte-identical), partial files, random weights for tests.

Layout (pjreddie/AlexeyAB darknet): int32 major, minor, revision; ``seen`` as int64 when
``major*10 + minor >= 2`` else int32; then float32 little-endian, convolutional layers only, in
cfg order: biases (BN beta when batch_normalize), then with BN scales (gamma), rolling mean,
rolling variance; then the kernel as ``[out][in][kh][kw]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.darknet.cfg import DarknetCfg, conv_input_channels
from workbench.errors import ModelError


@dataclass
class ConvWeights:
    """One convolutional layer's parameters, in darknet's layout."""

    biases: np.ndarray                 # (out,)  BN beta when batch-normalized
    kernel: np.ndarray                 # (out, in, kh, kw)
    scales: np.ndarray | None = None   # (out,)  BN gamma
    mean: np.ndarray | None = None     # (out,)  BN rolling mean
    variance: np.ndarray | None = None  # (out,)  BN rolling variance

    @property
    def batch_normalized(self) -> bool:
        return self.scales is not None

    def batch_norm(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(scales, mean, variance) of a batch-normalized layer; None when it has none."""
        if self.scales is None:
            return None
        if self.mean is None or self.variance is None:
            raise ValueError("a batch-normalized layer needs its scales, mean and variance")
        return self.scales, self.mean, self.variance

    def flat(self) -> list[np.ndarray]:
        parts = [self.biases]
        norm = self.batch_norm()
        if norm is not None:
            parts += norm
        parts.append(self.kernel.reshape(-1))
        return parts


@dataclass
class DarknetWeights:
    """Header plus per-layer conv weights keyed by layer index.

    ``layers`` holds only the layers the file covers: a partial file (darknet53.conv.74,
    yolov3-tiny.conv.15) covers the first convolutional layers only.
    """

    layers: dict[int, ConvWeights] = field(default_factory=dict)
    major: int = 0
    minor: int = 2
    revision: int = 0
    seen: int = 0

    @property
    def seen_is_64bit(self) -> bool:
        return self.major * 10 + self.minor >= 2


def conv_layer_sizes(cfg: DarknetCfg) -> list[tuple[int, int, bool, int, int]]:
    """(layer index, out, batch_normalize, in, size) for each convolution, in file order."""
    inputs = conv_input_channels(cfg)
    result = []
    for i, s in enumerate(cfg.layers):
        if s.kind == "convolutional":
            result.append((i, s.get_int("filters", 1), bool(s.get_int("batch_normalize", 0)),
                           inputs[i], s.get_int("size", 1)))
    return result


def _floats_for(out: int, bn: bool, cin: int, size: int) -> int:
    return out * (4 if bn else 1) + out * cin * size * size


def floats_needed(cfg: DarknetCfg) -> int:
    return sum(_floats_for(o, bn, c, k) for _, o, bn, c, k in conv_layer_sizes(cfg))


def read_weights(path: str | Path, cfg: DarknetCfg, *, allow_partial: bool = True) -> DarknetWeights:
    """Read a .weights file laid out for ``cfg``.

    A file that stops exactly at a layer boundary is a partial file (first N conv layers);
    anything else that does not fit raises ModelError("cfg needs N floats, file has M").
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"{path}: cannot read weights: {exc}") from None
    if len(data) < 16:
        raise ModelError(f"{path}: {len(data)} bytes is too short for a darknet weights header")
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    if major > 1000 or minor > 1000 or major < 0 or minor < 0:
        raise ModelError(f"{path}: header version {major}.{minor} is not a darknet weights file")
    wide = major * 10 + minor >= 2
    offset = 20 if wide else 16
    if len(data) < offset:
        raise ModelError(f"{path}: {len(data)} bytes is too short for a darknet weights header "
                         f"(version {major}.{minor} has {offset} bytes)")
    seen = int(np.frombuffer(data, "<i8" if wide else "<i4", 1, 12)[0])
    body = data[offset:]
    if len(body) % 4:
        raise ModelError(f"{path}: body of {len(body)} bytes is not a whole number of floats")
    values = np.frombuffer(body, "<f4")
    needed = floats_needed(cfg)
    weights = DarknetWeights({}, major, minor, revision, seen)
    pos = 0
    for i, out, bn, cin, size in conv_layer_sizes(cfg):
        n = _floats_for(out, bn, cin, size)
        if pos == len(values) and allow_partial and pos > 0:
            break
        if pos + n > len(values):
            raise ModelError(
                f"{path}: does not fit {cfg.where()}: cfg needs {needed} floats, file has "
                f"{len(values)} (runs out inside layer {i})"
            )
        chunk = values[pos:pos + n].astype(np.float32)
        if not np.isfinite(chunk).all():
            # NaN/inf weights run, and every box comes out NaN: refuse the file instead
            bad = int(np.count_nonzero(~np.isfinite(chunk)))
            raise ModelError(f"{path}: layer {i} [convolutional] holds {bad} NaN or infinite "
                             f"values of {n}; the weights are damaged")
        pos += n
        biases = chunk[:out]
        k = out
        scales = mean = var = None
        if bn:
            scales, mean, var = chunk[k:k + out], chunk[k + out:k + 2 * out], chunk[k + 2 * out:k + 3 * out]
            k += 3 * out
        kernel = chunk[k:].reshape(out, cin, size, size)
        weights.layers[i] = ConvWeights(biases, kernel, scales, mean, var)
    if pos != len(values):
        raise ModelError(
            f"{path}: does not fit {cfg.where()}: cfg needs {needed} floats, file has {len(values)}"
        )
    if not weights.layers:
        raise ModelError(f"{path}: holds no layer weights (cfg needs {needed} floats)")
    return weights


def weights_to_bytes(weights: DarknetWeights) -> bytes:
    header = np.array([weights.major, weights.minor, weights.revision], "<i4").tobytes()
    header += np.array([weights.seen], "<i8" if weights.seen_is_64bit else "<i4").tobytes()
    parts = [p.astype("<f4", copy=False).reshape(-1)
             for i in sorted(weights.layers) for p in weights.layers[i].flat()]
    body = np.concatenate(parts).tobytes() if parts else b""
    return header + body


def write_weights(weights: DarknetWeights, path: str | Path) -> None:
    """Write a .weights file atomically; what was read is written back byte for byte."""
    from workbench.storage.atomic import atomic_write_bytes

    atomic_write_bytes(path, weights_to_bytes(weights))


def truncate(weights: DarknetWeights, n_layers: int) -> DarknetWeights:
    """The first ``n_layers`` layers only, like ``darknet partial cfg weights out N``."""
    kept = {i: w for i, w in weights.layers.items() if i < n_layers}
    return DarknetWeights(kept, weights.major, weights.minor, weights.revision, 0)


def random_weights(cfg: DarknetCfg, seed: int = 0, *, scale: float = 1.0) -> DarknetWeights:
    """Random weights with random BN statistics, scaled so activations stay O(1) through depth.

    Used by tests and demos: no pretrained weights can be downloaded here.
    """
    rng = np.random.default_rng(seed)
    layers = {}
    for i, out, bn, cin, size in conv_layer_sizes(cfg):
        fan_in = cin * size * size
        kernel = (rng.standard_normal((out, cin, size, size)) * scale * np.sqrt(2.0 / fan_in))
        w = ConvWeights(rng.uniform(-0.1, 0.1, out).astype(np.float32), kernel.astype(np.float32))
        if bn:
            w.scales = rng.uniform(0.5, 1.5, out).astype(np.float32)
            w.mean = rng.uniform(-0.1, 0.1, out).astype(np.float32)
            w.variance = rng.uniform(0.5, 1.5, out).astype(np.float32)
        layers[i] = w
    return DarknetWeights(layers, 0, 2, 0, 0)


@dataclass
class TransferReport:
    """What :func:`read_weights_for_transfer` could use: layers that fit, heads that do not."""

    weights: DarknetWeights  # only the layers whose shape fits the target cfg
    conv_layers: int  # convolutions in the target cfg
    fresh_heads: list[int] = field(default_factory=list)  # the file's layers of another shape
    source_classes: int | None = None  # the file's class count when it differs from the cfg's
    missing: list[int] = field(default_factory=list)  # target convolutions past the file's end

    @property
    def partial(self) -> bool:
        """The file covers only the first convolutions."""
        return bool(self.missing)

    def summary(self, target_classes: int) -> str:
        """e.g. ``loaded 11 of 13 conv layers; 2 [yolo] heads start fresh: 80 -> 3 classes``;
        a file of a smaller network (yolov3-tiny's into yolov3-tiny-3l) adds ``; 3 conv
        layers the file lacks start fresh (from layer 25)``."""
        text = f"loaded {len(self.weights.layers)} of {self.conv_layers} conv layers"
        if self.fresh_heads:
            n = len(self.fresh_heads)
            text += f"; {n} [yolo] head{'s' if n > 1 else ''} start{'' if n > 1 else 's'} fresh"
            if self.source_classes is not None:
                text += f": {self.source_classes} -> {target_classes} classes"
        if self.missing:
            n = len(self.missing)
            text += (f"; {n} conv layer{'s' if n > 1 else ''} the file lacks "
                     f"start{'' if n > 1 else 's'} fresh (from layer {self.missing[0]})")
        return text


def _head_convolutions(cfg: DarknetCfg) -> list[int]:
    """The convolution feeding each [yolo] layer, in cfg order."""
    result = []
    for i in cfg.yolo_layers():
        j = i - 1
        while j >= 0 and cfg.layers[j].kind != "convolutional":
            j -= 1
        if j >= 0:
            result.append(j)
    return result


def _with_classes(cfg: DarknetCfg, classes: int) -> DarknetCfg:
    """``cfg`` with ``classes`` in every [yolo] and the head convolutions' filters to match."""
    other = cfg.copy()
    for i, j in zip(other.yolo_layers(), _head_convolutions(other), strict=True):
        head = other.layers[i]
        head.options["classes"] = str(classes)
        n_anchors = len(head.get_ints("mask", [0] * max(head.get_int("num", 1), 1)))
        other.layers[j].options["filters"] = str((classes + 5) * n_anchors)
    return other


def header_length(path: str | Path) -> tuple[int, int | None]:
    """(file size, header bytes) of a darknet weights file from its version numbers (16 bytes
    before version 0.2, 20 from it); header bytes None when the file is too short for the
    version or the version is not a plausible darknet one. OSError when it cannot be read."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
    # a file shorter than two int32 (or 1-7 bytes: not a whole int32) has no version
    version = np.frombuffer(head, "<i4") if len(head) == 8 else np.empty(0, "<i4")
    if len(version) < 2 or not (0 <= version[0] <= 1000 and 0 <= version[1] <= 1000):
        return size, None
    return size, 20 if int(version[0]) * 10 + int(version[1]) >= 2 else 16


def transfer_layouts(path: str | Path, cfg: DarknetCfg) -> list[tuple[int, int]]:
    """(classes, convolutions) for every way the file's size reads as ``cfg``'s first N
    convolutions with another class count C in the [yolo] heads among them: N = all of them is
    a full file for the same network (the 80-class COCO file for a 3-class cfg); fewer is a
    file of a smaller network whose convolutions are ``cfg``'s first N in order, with the same
    anchors per head (yolov3-tiny's 13 inside yolov3-tiny-3l's 16). Sizes only: the floats
    of the first N convolutions grow by a fixed amount per class, so C is solved for each N
    and checked against the exact layout. Empty when nothing explains the size."""
    try:
        size, header = header_length(path)
    except OSError:
        return []
    if header is None or (size - header) % 4:
        return []
    floats = (size - header) // 4
    one, two = (np.cumsum([_floats_for(o, bn, c, k) for _, o, bn, c, k
                           in conv_layer_sizes(_with_classes(cfg, n))]) for n in (1, 2))
    found = []
    for n in range(1, len(one) + 1):
        per_class = int(two[n - 1] - one[n - 1])
        base = int(one[n - 1]) - per_class  # the first n convolutions at 0 classes
        if per_class <= 0 or (floats - base) % per_class:
            continue
        classes = (floats - base) // per_class
        if classes < 1 or classes == cfg.classes:
            continue  # 0 classes is no network; the cfg's own count is read_weights' layout
        sizes = conv_layer_sizes(_with_classes(cfg, classes))[:n]
        if sum(_floats_for(o, bn, c, k) for _, o, bn, c, k in sizes) == floats:
            found.append((classes, n))
    return found


def source_classes(path: str | Path, cfg: DarknetCfg) -> int | None:
    """The class count a full weights file was trained for, read from its size: the file holds
    ``cfg``'s layers with other [yolo] heads (e.g. the 80-class COCO file for a 3-class cfg).
    None when no whole class count explains the size."""
    n_conv = len(conv_layer_sizes(cfg))
    full = [classes for classes, n in transfer_layouts(path, cfg) if n == n_conv]
    return full[0] if len(full) == 1 else None


def _plausible(weights: DarknetWeights) -> bool:
    """No negative rolling variance: a file read with the wrong layout puts kernel values
    (of either sign) where the variances go, a trained or random file never has one below 0."""
    return all(w.variance is None or bool((w.variance >= 0).all())
               for w in weights.layers.values())


def _read_other_layout(path: str | Path, cfg: DarknetCfg,
                       refused: ModelError) -> tuple[DarknetWeights, int]:
    """The file read with the one layout of :func:`transfer_layouts` that holds up, and its
    class count; ``refused`` (read_weights' error) when none does, ModelError when several do."""
    readings = []
    for classes, n in transfer_layouts(path, cfg):
        source = read_weights(path, _with_classes(cfg, classes), allow_partial=True)
        if len(source.layers) == n and _plausible(source):
            readings.append((source, classes))
    if not readings:
        raise refused
    if len(readings) > 1:
        ways = ", ".join(f"{len(s.layers)} conv layers for {c} classes" for s, c in readings)
        raise ModelError(f"{path}: its size fits {cfg.where()} in more than one way ({ways}); "
                         "cut it to the shared layers with `workbench weights partial`")
    return readings[0]


def read_weights_for_transfer(path: str | Path, cfg: DarknetCfg) -> TransferReport:
    """Start weights for ``cfg`` from a darknet file as users have it.

    A file laid out for ``cfg`` (full or partial) loads as is. A file for the same network
    with another class count (the 80-class COCO file for a 1-class cfg), or for a smaller
    network whose convolutions are ``cfg``'s first ones in order (yolov3-tiny's into
    yolov3-tiny-3l), is read with its own layout (:func:`transfer_layouts`): every
    convolution whose shape fits ``cfg`` is kept, the mismatched [yolo] head convolutions and
    the convolutions past the file's end start fresh. Anything else raises ModelError.
    """
    convs = [i for i, *_ in conv_layer_sizes(cfg)]
    try:
        weights = read_weights(path, cfg, allow_partial=True)
    except ModelError as exc:
        source, classes = _read_other_layout(path, cfg, exc)
        expected = {i: (o, bn, c, k) for i, o, bn, c, k in conv_layer_sizes(cfg)}
        kept, fresh = {}, []
        for i, w in source.layers.items():
            o, bn, c, k = expected[i]
            if tuple(w.kernel.shape) == (o, c, k, k) and w.batch_normalized == bn:
                kept[i] = w
            else:
                fresh.append(i)
        missing = [i for i in convs if i not in source.layers]
        return TransferReport(DarknetWeights(kept, source.major, source.minor, source.revision,
                                             source.seen), len(convs), sorted(fresh), classes,
                              missing)
    missing = [i for i in convs if i not in weights.layers]
    return TransferReport(weights, len(convs), [], None, missing)
