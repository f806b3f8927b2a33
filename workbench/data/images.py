"""Image files: decoding to 8-bit colour in the EXIF orientation (listing in
:mod:`workbench.data.image_files`, header-only sizes and the orientation tag in
:mod:`workbench.data.image_headers`; their names are importable from here too).

Everything in the workbench uses the EXIF-oriented image (what the user sees). One rule for
every format: the orientation tag is read here (JPEG APP1, PNG eXIf before the pixel data,
and through PIL for WebP, TIFF and the rest), sizes are swapped for orientations 5-8, and
decoding asks OpenCV to *ignore* the tag and turns the pixels with that same value, so the
size a label is normalized by and the pixels the detector sees can never disagree.

Hostile files are refused before any pixel is decoded: only regular files are opened (a FIFO
named ``x.jpg`` would block forever), images larger than :data:`MAX_IMAGE_BYTES` are not read,
and images with more than :func:`max_pixels` pixels (a 900 KB PNG can claim 30000x30000,
5 GB decoded) are refused from their header. ``WORKBENCH_MAX_PIXELS`` overrides the limit.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workbench.data.image_files import (  # noqa: F401  (importable from here too)
    IMAGE_EXTENSIONS,
    is_image,
    link_problem,
    list_images,
)
from workbench.data.image_headers import (  # noqa: F401  (importable from here too)
    DEFAULT_MAX_PIXELS,
    MAX_PIXELS_VARIABLE,
    PNG_SIGNATURE,
    Header,
    exif_orientation,
    image_depth,
    image_size,
    max_pixels,
    read_header,
)
from workbench.errors import FormatError, ImageError
from workbench.progress import TERMINAL_LOCK
from workbench.storage.files import MAX_IMAGE_BYTES, read_regular


def _looks_truncated(data: bytes) -> bool:
    """JPEG and PNG files end with a marker; a missing one means the file was cut short."""
    tail = data.rstrip(b"\0")
    if data[:2] == b"\xff\xd8":
        return not tail.endswith(b"\xff\xd9")
    if data[:8] == PNG_SIGNATURE:
        return b"IEND" not in tail[-16:]
    return False


def _read_checked(path: Path) -> tuple[bytes, Header]:
    """The bytes of an image file whose header passed every check (size, pixels, end)."""
    try:
        data = read_regular(path, MAX_IMAGE_BYTES, ImageError)
    except FormatError as err:
        raise ImageError(path, err.message) from None
    if not data:
        raise ImageError(path, "image file is empty")
    header = read_header(path, io.BytesIO(data))
    if _looks_truncated(data):
        raise ImageError(path, "image file is truncated (no end marker)")
    return data, header


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H x W [x C]) into the EXIF-oriented view (PIL's exif_transpose)."""
    if orientation in (2, 4):
        image = image[:, ::-1] if orientation == 2 else image[::-1]
    elif orientation == 3:
        image = image[::-1, ::-1]
    elif orientation in (5, 6, 7, 8):
        image = np.swapaxes(image, 0, 1)  # transpose: orientation 5
        if orientation == 6:
            image = image[:, ::-1]
        elif orientation == 7:
            image = image[::-1, ::-1]
        elif orientation == 8:
            image = image[::-1]
    return np.ascontiguousarray(image)


def load_bgr(path: str | Path, problems: list[str] | None = None) -> np.ndarray:
    """Decode to uint8 HxWx3 BGR in the EXIF orientation.

    16-bit, grayscale, palette, CMYK and alpha images are converted; truncated or corrupt
    files, and images over the pixel limit, raise ImageError naming the file.

    What the C decoders print while decoding (``libpng warning: ...``, ``Corrupt JPEG data:
    ...``, OpenCV's ``[ WARN ]`` lines) never reaches the terminal: it becomes one line
    naming the file, appended to ``problems`` (the image still decodes and is returned), or
    logged as a warning of this module when no list is given.
    """
    path = Path(path)
    data, header = _read_checked(path)
    return _decode_whole(path, data, header, problems)


def _decode_whole(path: Path, data: bytes, header: Header,
                  problems: list[str] | None) -> np.ndarray:
    image, printed = quietly(_decode, path, data, header)
    if printed:
        _report(path, printed, problems)
    if image.shape[1::-1] != header.oriented_size():
        raise ImageError(path, f"decoded image is {image.shape[1]}x{image.shape[0]}, its "
                         f"header says {header.width}x{header.height}")
    return image


#: the DCT scales a large JPEG may be decoded at, largest first (libjpeg's scaled IDCT)
REDUCTIONS = (8, 4, 2)


def reduction(width: int, height: int, min_width: int, min_height: int) -> int:
    """The largest of 8, 4 and 2 that leaves a ``width`` x ``height`` image (EXIF-oriented)
    at least ``min_width`` x ``min_height`` (the network input) once divided, else 1: an
    image under twice the network input in either direction is decoded whole."""
    for r in REDUCTIONS:
        if width >= r * min_width and height >= r * min_height:
            return r
    return 1


@dataclass(frozen=True)
class Reduced:
    """A JPEG decoded at 1/``scale``: the decode's (oriented) size, and where its pixels lie
    in the full image: ``full_x = x * scale - offset_x`` (and so for y).

    libjpeg decodes ``ceil(w / scale)`` pixels, each covering ``scale`` stored pixels, so the
    last one covers the image's edge and up to ``scale - 1`` pixels of padding beyond it:
    the decode spans ``scale * ceil(w / scale)`` pixels, a little more than the image. That
    padding lies right and below in the stored pixels; an EXIF orientation that mirrors an
    axis puts it left or above (the offset). Mapping by the ratio of the sizes instead would
    be off by up to ``scale - 1`` pixels at the far edge.
    """

    width: int
    height: int
    scale: int
    offset_x: int
    offset_y: int

    @classmethod
    def of(cls, header: Header, scale: int) -> Reduced:
        pads = [scale * -(-n // scale) - n for n in (header.width, header.height)]
        o = header.orientation
        if o in (5, 6, 7, 8):  # the stored axes are swapped
            pads.reverse()
        width, height = (-(-n // scale) for n in header.oriented_size())
        return cls(width, height, scale, pads[0] if o in (2, 3, 6, 7) else 0,
                   pads[1] if o in (3, 4, 7, 8) else 0)


def load_bgr_scaled(path: str | Path, min_width: int, min_height: int,
                    problems: list[str] | None = None
                    ) -> tuple[np.ndarray, tuple[int, int], Reduced | None]:
    """The image for a network of ``min_width`` x ``min_height``, its full (oriented)
    ``(width, height)``, and how the decode was reduced (None: it was not).

    A JPEG at least twice that size in both directions is decoded at 1/2, 1/4 or 1/8 scale
    (:func:`reduction`: libjpeg's scaled IDCT, through OpenCV), several times faster than a
    whole decode of a photo; anything else is exactly :func:`load_bgr`'s image. Boxes found
    on a reduced image go back to the full image through :class:`Reduced`.
    """
    path = Path(path)
    data, header = _read_checked(path)
    full = header.oriented_size()
    r = reduction(*full, min_width, min_height) if data[:2] == b"\xff\xd8" else 1
    if r > 1:
        reduced = Reduced.of(header, r)
        image, printed = quietly(_decode_reduced, data, header, r)
        if image is not None and image.shape[1::-1] == (reduced.width, reduced.height):
            if printed:
                _report(path, printed, problems)
            return image, full, reduced
    # small, not a JPEG, or a JPEG libjpeg does not scale (lossless): load_bgr's own decode
    return _decode_whole(path, data, header, problems), full, None


def _decode_reduced(data: bytes, header: Header, r: int) -> np.ndarray | None:
    """The JPEG's pixels decoded at 1/r scale, turned to its orientation (None when OpenCV
    cannot decode it)."""
    import cv2  # deferred, as in _decode

    flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}[r]
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    return None if image is None else orient(image, header.orientation)


_TIFF_SIGNATURES = (b"II*\0", b"MM\0*")


def _decode(path: Path, data: bytes, header: Header) -> np.ndarray:
    # deferred: OpenCV takes ~0.3 s to import; listing a folder and reading headers
    # (opening a data set, workbench stats) never need it
    import cv2

    if data[:4] in _TIFF_SIGNATURES:
        # OpenCV's TIFF reader turns the pixels even when told to ignore the tag, so TIFFs
        # are turned by PIL with the same tag
        return _load_with_pil(path, data, turn=True)
    # ignore the tag in the decoder and turn the pixels with the value image_size() used
    image = cv2.imdecode(np.frombuffer(data, np.uint8),
                         cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None or image.shape[1::-1] != (header.width, header.height):
        image = _load_with_pil(path, data)
    return orient(image, header.orientation)


# ---------------------------------------------------------------------- decoder messages
#
# libpng, libjpeg and OpenCV's logger write their warnings straight to file descriptor 2 from
# C, one per bad image, between the progress lines; Python's sys.stderr never sees them. So
# for the length of one decode fd 2 points at a scratch file, and what lands there is the
# decoder's message about this image. fd 2 is one per process: decodes that capture take
# turns (TERMINAL_LOCK, which the progress bar also holds to draw).

_scratch: dict[int, int] = {}  # pid -> the scratch file's descriptor (a fork makes its own)
_MESSAGE_LIMIT = 3  # distinct lines kept per image; a damaged JPEG repeats itself
# OpenCV's "[ WARN:0@1.234] global " and FFmpeg's "[mov,mp4 @ 0x55d0c0]": noise in one line
_OPENCV_PREFIX = re.compile(r"^(\[\s*(WARN|ERROR|INFO):\d+@[\d.]+\]\s*(global\s+)?"
                            r"|\[[^\]]* @ 0x[0-9a-f]+\]\s*)")


def _scratch_fd() -> int:
    pid = os.getpid()
    if pid not in _scratch:
        with tempfile.TemporaryFile(prefix="workbench-decoder-") as f:  # unlinked at once
            _scratch[pid] = os.dup(f.fileno())
    return _scratch[pid]


def quietly(decode, *args):
    """``decode(*args)`` with fd 2 pointed at the scratch file: (its result, what was printed
    there). The previous fd 2 comes back even when the decoder raises."""
    with TERMINAL_LOCK:
        scratch = _scratch_fd()
        saved = os.dup(2)
        try:
            os.dup2(scratch, 2)
            try:
                result = decode(*args)
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
            printed = _take(scratch)
    return result, printed


def _take(scratch: int) -> str:
    """What the scratch file holds, emptied for the next decode."""
    size = os.lseek(scratch, 0, os.SEEK_CUR)  # C's stderr is unbuffered: all written
    if not size:
        return ""
    printed = os.pread(scratch, size, 0)
    os.ftruncate(scratch, 0)
    os.lseek(scratch, 0, os.SEEK_SET)
    return printed.decode("utf-8", "replace")


def decoder_message(printed: str) -> str:
    """What a decoder printed, as one line: its distinct lines in order, OpenCV's time stamp
    dropped, at most three (and how many more)."""
    lines: list[str] = []
    for line in printed.splitlines():
        line = _OPENCV_PREFIX.sub("", line).strip()
        if line and line not in lines:
            lines.append(line)
    text = "; ".join(lines[:_MESSAGE_LIMIT])
    if len(lines) > _MESSAGE_LIMIT:
        text += f" (and {len(lines) - _MESSAGE_LIMIT} more)"
    return text


def _report(path: Path, printed: str, problems: list[str] | None) -> None:
    line = str(ImageError(path, f"the decoder warned: {decoder_message(printed)} "
                                "(decoded anyway; check the image)"))
    if problems is not None:
        problems.append(line)
    else:
        logging.getLogger(__name__).warning("%s", line)


def _load_with_pil(path: Path, data: bytes, turn: bool = False) -> np.ndarray:
    """Fallback for files OpenCV's codecs refuse (some WebP variants): the stored frame, or
    the oriented one with ``turn``."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if turn:
                img = ImageOps.exif_transpose(img)  # a no-op where Pillow already turned it
            if img.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                top = arr.max() or 1.0
                img = Image.fromarray((arr * (255.0 / max(top, 255.0))).astype(np.uint8))
            rgb = np.asarray(img.convert("RGB"))
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file this program can read") from None
    except Exception as exc:  # noqa: BLE001 - PIL's decoders raise any kind on bad data
        raise ImageError(path, f"cannot decode image: {exc}") from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def load_rgb(path: str | Path) -> np.ndarray:
    """Like :func:`load_bgr`, in RGB order."""
    return np.ascontiguousarray(load_bgr(path)[:, :, ::-1])


def check_decodable(path: str | Path) -> str | None:
    """None when every pixel of the image decodes; else one line naming the file and why.

    Stricter than :func:`load_bgr` (OpenCV fills a cut JPEG with grey and warns): PIL decodes
    the whole file and refuses a truncated or corrupt stream, as TensorFlow's decoders do.
    Costs a full decode: ``workbench stats --decode`` and training's start-up use it. A JPEG
    is decoded at 1/8 scale, which still parses every byte of its stream (a cut one is
    refused) in a third of the time (``bench/bench_decode_check.py``).
    """
    path = Path(path)
    try:
        data, _ = _read_checked(path)
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.draft("RGB", (max(img.width // 8, 1), max(img.height // 8, 1)))
                img.load()
        except Exception as exc:  # noqa: BLE001 - PIL's decoders raise any kind on bad data
            raise ImageError(path, f"cannot decode image: {exc}") from None
    except ImageError as err:
        return str(err)
    return None
