"""Darknet .cfg files: parse, write, inspect shapes, and customize for N classes.

A cfg is an ordered list of ``[section]``s with ``key=value`` options; sections repeat and
their order is the network. ``#`` and ``;`` start comments. The first section is ``[net]``
(or ``[network]``); layer *i* in darknet's numbering is ``sections[i + 1]``.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, overload

from workbench.errors import FormatError, ModelError

#: Layer kinds this project builds (OpenCV, ONNX, Keras) and writes weights for.
SUPPORTED_LAYERS = ("convolutional", "shortcut", "route", "upsample", "maxpool", "yolo")

_T = TypeVar("_T")


@dataclass
class Section:
    """One ``[kind]`` block. ``line`` is where its header stands in the source (1-based)."""

    kind: str
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @overload
    def get(self, key: str, default: str) -> str: ...
    @overload
    def get(self, key: str, default: None = None) -> str | None: ...

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def get_int(self, key: str, default: int | None = None) -> int:
        return self._parsed(key, default, lambda value: int(float(value)), "a number")

    def get_float(self, key: str, default: float | None = None) -> float:
        return self._parsed(key, default, float, "a number")

    def get_ints(self, key: str, default: list[int] | None = None) -> list[int]:
        return self._parsed(key, None if default is None else list(default),
                            lambda value: [int(float(v)) for v in value.split(",") if v.strip()],
                            "a list of numbers")

    def _parsed(self, key: str, default: _T | None, parse: Callable[[str], _T], what: str) -> _T:
        """Option ``key`` read by ``parse``, or ``default`` when the section has none; a
        ModelError naming the section and line when it is missing without a default, or when
        ``parse`` cannot read it (``what`` it should be)."""
        value = self.options.get(key)
        if value is None:
            if default is None:
                raise ModelError(f"[{self.kind}] at line {self.line}: missing '{key}='")
            return default
        try:
            return parse(value)
        except (ValueError, OverflowError):  # OverflowError: int(inf)
            raise ModelError(
                f"[{self.kind}] at line {self.line}: '{key}={value}' is not {what}"
            ) from None


@dataclass
class DarknetCfg:
    sections: list[Section]
    path: Path | None = None

    @property
    def net(self) -> Section:
        return self.sections[0]

    @property
    def layers(self) -> list[Section]:
        """The layers in darknet's numbering (everything after [net])."""
        return self.sections[1:]

    @property
    def width(self) -> int:
        return self.net.get_int("width", 416)

    @property
    def height(self) -> int:
        return self.net.get_int("height", 416)

    @property
    def channels(self) -> int:
        return self.net.get_int("channels", 3)

    def yolo_layers(self) -> list[int]:
        return [i for i, s in enumerate(self.layers) if s.kind == "yolo"]

    @property
    def classes(self) -> int:
        heads = self.yolo_layers()
        if not heads:
            raise ModelError(f"{self.where()}: the cfg has no [yolo] section")
        return self.layers[heads[0]].get_int("classes", 80)

    def where(self) -> str:
        return str(self.path) if self.path else "cfg"

    def copy(self) -> DarknetCfg:
        return copy.deepcopy(self)


def parse_cfg(text: str, path: str | Path | None = None) -> DarknetCfg:
    """Parse cfg text. Errors are :class:`FormatError` naming the file and line."""
    where = Path(path) if path else Path("<cfg>")
    sections: list[Section] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                raise FormatError(where, f"bad section header {raw.strip()!r}", line=lineno)
            sections.append(Section(line[1:-1].strip().lower(), {}, lineno))
            continue
        if "=" not in line:
            raise FormatError(where, f"expected key=value, got {raw.strip()!r}", line=lineno)
        if not sections:
            raise FormatError(where, "option before the first [section]", line=lineno)
        key, value = line.split("=", 1)
        if not key.strip():
            raise FormatError(where, f"option with no name: {raw.strip()!r}", line=lineno)
        sections[-1].options[key.strip()] = value.strip()
    if not sections:
        raise FormatError(where, "no sections found: not a darknet cfg")
    if sections[0].kind not in ("net", "network"):
        raise FormatError(where, f"first section is [{sections[0].kind}], expected [net]",
                          line=sections[0].line)
    return DarknetCfg(sections, Path(path) if path else None)


def read_cfg(path: str | Path) -> DarknetCfg:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"cannot read cfg: {exc}") from None
    return parse_cfg(text, path)


def format_cfg(cfg: DarknetCfg) -> str:
    """Write cfg text (comments are not kept; section order and option order are)."""
    blocks = []
    for s in cfg.sections:
        body = "".join(f"{k}={v}\n" for k, v in s.options.items())
        blocks.append(f"[{s.kind}]\n{body}")
    return "\n".join(blocks)


def write_cfg(cfg: DarknetCfg, path: str | Path) -> None:
    from workbench.storage.atomic import atomic_write_text

    atomic_write_text(path, format_cfg(cfg))


def check_supported(cfg: DarknetCfg) -> None:
    """Raise ModelError naming the first section this project cannot build."""
    for i, s in enumerate(cfg.layers):
        if s.kind not in SUPPORTED_LAYERS:
            raise ModelError(
                f"{cfg.where()}:{s.line}: layer {i} [{s.kind}] is not supported "
                f"(supported: {', '.join(SUPPORTED_LAYERS)})"
            )
        if s.kind == "convolutional":
            act = s.get("activation", "logistic")
            if act not in ("leaky", "linear"):
                raise ModelError(
                    f"{cfg.where()}:{s.line}: layer {i} [convolutional] activation={act} "
                    "is not supported (leaky or linear)"
                )
            if s.get_int("groups", 1) != 1 or s.get_int("dilation", 1) != 1:
                raise ModelError(
                    f"{cfg.where()}:{s.line}: layer {i} [convolutional] groups/dilation "
                    "are not supported"
                )


def route_sources(layers: list[Section], index: int) -> list[int]:
    """Absolute layer indices a [route] at ``index`` concatenates (earlier layers, at least
    one; ModelError otherwise)."""
    s = layers[index]
    sources = [i if i >= 0 else index + i for i in s.get_ints("layers")]
    if not sources:
        raise ModelError(f"[route] at line {s.line}: layer {index}: 'layers=' names no layer")
    for j in sources:
        if not 0 <= j < index:
            raise ModelError(f"[route] at line {s.line}: layer {index}: 'layers={s.get('layers')}'"
                             f" names layer {j}, not one of the layers 0..{index - 1} before it")
    return sources


def shortcut_source(layers: list[Section], index: int) -> int:
    s = layers[index]
    f = s.get_int("from")
    j = f if f >= 0 else index + f
    if not 0 <= j < index:
        raise ModelError(f"[shortcut] at line {s.line}: layer {index}: 'from={f}' names layer "
                         f"{j}, not one of the layers 0..{index - 1} before it")
    return j


def _positive(s: Section, index: int, key: str, default: int, limit: int) -> int:
    """``key``'s value in 1..limit: a stride or size of 0 divided by zero further on."""
    value = s.get_int(key, default)
    if not 1 <= value <= limit:
        raise ModelError(f"[{s.kind}] at line {s.line}: layer {index}: '{key}={value}' must be "
                         f"between 1 and {limit}")
    return value


#: the largest kernel, stride and filter count a layer may ask for: far above every published
#: YOLO, far below what overflows OpenCV's int32 sizes or exhausts memory on a typo
MAX_KERNEL = 64
MAX_STRIDE = 64
MAX_FILTERS = 16384


def conv_padding(s: Section) -> int:
    size = s.get_int("size", 1)
    return size // 2 if s.get_int("pad", 0) else s.get_int("padding", 0)


@dataclass(frozen=True)
class LayerShape:
    height: int
    width: int
    channels: int


def layer_shapes(cfg: DarknetCfg, width: int | None = None,
                 height: int | None = None) -> list[LayerShape]:
    """Output shape of every layer for an input of ``width`` x ``height`` (default: [net])."""
    check_supported(cfg)
    h = height or cfg.height
    w = width or cfg.width
    c = cfg.channels
    shapes: list[LayerShape] = []
    layers = cfg.layers
    prev = LayerShape(h, w, c)
    if h < 1 or w < 1 or c < 1:
        raise ModelError(f"{cfg.where()}:{cfg.net.line}: [net] input {w}x{h}x{c} is empty")
    for i, s in enumerate(layers):
        try:
            out = _layer_shape(layers, shapes, i, prev)
        except ModelError as exc:
            raise in_layer(cfg, i, exc) from None
        if out.height < 1 or out.width < 1:
            raise ModelError(f"{cfg.where()}:{s.line}: layer {i} [{s.kind}] shrinks its "
                             f"{prev.width}x{prev.height} input to nothing")
        shapes.append(out)
        prev = out
    return shapes


def in_layer(cfg: DarknetCfg, i: int, exc: ModelError) -> ModelError:
    """``exc`` (from a Section, which knows only its line) in the one form every layer error
    takes: ``file:line: layer i [kind]: what is wrong``."""
    s = cfg.layers[i]
    what = re.sub(r"^\[\w+\] at line \d+: (layer \d+:? )?", "", str(exc))
    return ModelError(f"{cfg.where()}:{s.line}: layer {i} [{s.kind}]: {what}")


def _layer_shape(layers: list[Section], shapes: list[LayerShape], i: int,
                 prev: LayerShape) -> LayerShape:
    s = layers[i]
    if s.kind == "convolutional":
        size = _positive(s, i, "size", 1, MAX_KERNEL)
        stride = _positive(s, i, "stride", 1, MAX_STRIDE)
        filters = _positive(s, i, "filters", 1, MAX_FILTERS)
        pad = conv_padding(s)
        if not 0 <= pad <= size:
            raise ModelError(f"padding {pad} must be between 0 and size={size}")
        return LayerShape((prev.height + 2 * pad - size) // stride + 1,
                          (prev.width + 2 * pad - size) // stride + 1, filters)
    if s.kind == "maxpool":
        stride = _positive(s, i, "stride", 1, MAX_STRIDE)
        size = _positive(s, i, "size", stride, MAX_KERNEL)
        pad = s.get_int("padding", size - 1)
        if not 0 <= pad <= 2 * size:
            raise ModelError(f"'padding={pad}' must be between 0 and {2 * size}")
        return LayerShape((prev.height + pad - size) // stride + 1,
                          (prev.width + pad - size) // stride + 1, prev.channels)
    if s.kind == "upsample":
        k = _positive(s, i, "stride", 2, MAX_STRIDE)
        return LayerShape(prev.height * k, prev.width * k, prev.channels)
    if s.kind == "route":
        src = [shapes[j] for j in route_sources(layers, i)]
        if any(x.height != src[0].height or x.width != src[0].width for x in src):
            raise ModelError("joins layers of different sizes")
        return LayerShape(src[0].height, src[0].width, sum(x.channels for x in src))
    if s.kind == "shortcut":
        source = shapes[shortcut_source(layers, i)]
        if (source.height, source.width) != (prev.height, prev.width):
            raise ModelError("adds layers of different sizes")
        return prev
    return prev  # yolo passes its input through


def conv_input_channels(cfg: DarknetCfg) -> dict[int, int]:
    """Input channel count of every convolutional layer, by layer index."""
    shapes = layer_shapes(cfg)
    result = {}
    for i, s in enumerate(cfg.layers):
        if s.kind == "convolutional":
            result[i] = shapes[i - 1].channels if i > 0 else cfg.channels
    return result


def anchors_of(section: Section) -> list[tuple[float, float]]:
    text = section.get("anchors", "")
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ModelError(f"[{section.kind}] at line {section.line}: 'anchors={text}' is not a "
                         "list of numbers") from None
    return list(zip(values[0::2], values[1::2], strict=False))


def customize(template: DarknetCfg, classes: int, width: int, height: int,
              anchors: list[tuple[float, float]] | None = None, n_images: int = 0) -> DarknetCfg:
    """Apply darknet's custom-training recipe (AlexeyAB README, "How to train").

    ``classes=N`` in every [yolo]; ``filters=(N+5)*len(mask)`` in the convolution just before
    each; ``max_batches = max(2000*N, n_images, 6000)`` with steps at 80% and 90%; width and
    height (multiples of 32); optionally new anchors (as many as the template has).
    """
    if classes < 1:
        raise ModelError("classes must be at least 1")
    if width % 32 or height % 32 or width <= 0 or height <= 0:
        raise ModelError(f"width and height must be positive multiples of 32, got {width}x{height}")
    cfg = template.copy()
    net = cfg.net
    net.options["width"], net.options["height"] = str(width), str(height)
    max_batches = max(2000 * classes, n_images, 6000)
    net.options["max_batches"] = str(max_batches)
    net.options["steps"] = f"{int(max_batches * 0.8)},{int(max_batches * 0.9)}"
    for i in cfg.yolo_layers():
        try:
            _customize_head(cfg, i, classes, anchors)
        except ModelError as exc:
            raise in_layer(cfg, i, exc) from None
    return cfg


def _customize_head(cfg: DarknetCfg, i: int, classes: int,
                    anchors: list[tuple[float, float]] | None) -> None:
    layers = cfg.layers
    head = layers[i]
    head.options["classes"] = str(classes)
    if anchors is not None:
        if len(anchors) != head.get_int("num", len(anchors_of(head))):
            raise ModelError(f"{len(anchors)} anchors given, the template's [yolo] has "
                             f"num={head.get('num')}")
        head.options["anchors"] = ",  ".join(f"{round(a)},{round(b)}" for a, b in anchors)
    mask = head.get_ints("mask", list(range(len(anchors_of(head)))))
    j = i - 1
    while j >= 0 and layers[j].kind != "convolutional":
        j -= 1
    if j < 0:
        raise ModelError("[yolo] with no convolution before it")
    layers[j].options["filters"] = str((classes + 5) * len(mask))


def stride_of_head(cfg: DarknetCfg, yolo_index: int) -> int:
    shapes = layer_shapes(cfg)
    return int(math.ceil(cfg.width / shapes[yolo_index].width))
