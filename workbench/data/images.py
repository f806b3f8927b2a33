"""Image files: listing, header-only sizes, EXIF orientation, and decoding to 8-bit colour.

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
import os
import re
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from workbench.errors import FormatError, ImageError
from workbench.storage.files import MAX_IMAGE_BYTES, open_regular, read_regular

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})

# 2**27 = 134 megapixels (e.g. 16384 x 8192): above any camera's photo, below the size where
# one decoded image (400 MB as 8-bit BGR, more while converting) endangers the machine
DEFAULT_MAX_PIXELS = 1 << 27
MAX_PIXELS_VARIABLE = "WORKBENCH_MAX_PIXELS"

# the header check below replaces PIL's own bomb guard, which would warn on stderr between
# 89 and 179 megapixels and refuse above even when the user raised our limit
Image.MAX_IMAGE_PIXELS = None


def max_pixels() -> int:
    """The largest image (width x height) this program decodes: ``WORKBENCH_MAX_PIXELS``
    (read when the program starts) or :data:`DEFAULT_MAX_PIXELS`."""
    return _MAX_PIXELS


def _max_pixels_from_environment() -> int:
    try:
        value = int(os.environ.get(MAX_PIXELS_VARIABLE, ""))
    except ValueError:
        return DEFAULT_MAX_PIXELS
    return value if value > 0 else DEFAULT_MAX_PIXELS


_MAX_PIXELS = _max_pixels_from_environment()


def is_image(path: str | Path) -> bool:
    return os.path.splitext(str(path))[1].lower() in IMAGE_EXTENSIONS


def _bad_name(name: str) -> str | None:
    """Why a file name cannot be carried into label files and lists, None when it can."""
    if name.isprintable():  # the common case; surrogates and control characters are not
        return None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "its name has a control character (a newline would split list files)"
    return None


def list_images(root: str | Path, skipped: list[tuple[Path, str]] | None = None
                ) -> list[Path]:
    """Every image under ``root`` (recursive, hidden folders skipped), in natural order of
    the relative path (``img2`` before ``img10``, as labelImg and file managers list them).

    Only regular files inside ``root`` count: a link that leads out of the folder, a
    dangling or looping link, a link to a folder, a FIFO or device named like an image,
    a name that is not UTF-8 or holds a control character, and a folder that cannot be
    read are left out, each appended to ``skipped`` as ``(path, reason)``.
    """
    root = Path(root)
    real_root = os.path.realpath(root)
    inside = real_root.rstrip(os.sep) + os.sep

    def skip(path: str, reason: str) -> None:
        if skipped is not None:
            skipped.append((Path(path), reason))

    found: list[str] = []
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            skip(folder, f"folder not read: {exc.strerror or exc}; its images are left out")
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    if is_image(entry.name) or os.path.isdir(entry.path):
                        reason = link_problem(entry.path, inside)
                        if reason is not None:
                            skip(entry.path, reason)
                            continue
                    else:
                        continue
                elif entry.is_dir(follow_symlinks=False):
                    reason = _bad_name(entry.name)
                    if reason is None:
                        stack.append(entry.path)
                    else:
                        skip(entry.path, f"folder skipped: {reason}")
                    continue
                elif not is_image(entry.name):
                    continue
                elif not entry.is_file(follow_symlinks=False):
                    skip(entry.path, "not a regular file (a FIFO, socket or device); skipped")
                    continue
            except OSError as exc:
                skip(entry.path, f"not read: {exc.strerror or exc}")
                continue
            reason = _bad_name(entry.name)
            if reason is not None:
                skip(entry.path, f"skipped: {reason}")
                continue
            found.append(entry.path)
    from natsort import natsorted, ns

    prefix = len(str(root)) + 1
    found = natsorted(found, key=lambda p: p[prefix:], alg=ns.IGNORECASE)  # ns.PATH: 3x slower
    return [Path(p) for p in found]


def link_problem(path: str, inside: str) -> str | None:
    """Why the link ``path`` (named like an image) is not followed; None for a link to a
    regular file inside the data set."""
    target = os.path.realpath(path)
    if not (target + os.sep).startswith(inside):
        return f"link to {target}, outside the data set folder; not followed"
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return f"broken link ({exc.strerror or exc}); skipped"
    from workbench.storage.files import not_regular

    kind = not_regular(mode)
    if kind == "a folder":
        return "link to a folder; not followed (each image is listed once, from its real place)"
    if kind is not None:
        return f"link to {kind}; skipped"
    return None


class _Header:
    """What an image's header says: stored (unrotated) size and the EXIF orientation."""

    __slots__ = ("width", "height", "orientation")

    def __init__(self, width: int, height: int, orientation: int) -> None:
        self.width, self.height, self.orientation = width, height, orientation

    def oriented_size(self) -> tuple[int, int]:
        if self.orientation in _SWAPS_AXES:
            return self.height, self.width
        return self.width, self.height


def _check_header(path: Path, header: _Header) -> _Header:
    if header.width <= 0 or header.height <= 0:
        raise ImageError(path, f"image has an empty size {header.width}x{header.height}")
    limit = max_pixels()
    if header.width * header.height > limit:
        raise ImageError(path, f"image is {header.width}x{header.height} pixels, more than "
                         f"the limit of {limit:,} (set {MAX_PIXELS_VARIABLE} to raise it); "
                         "not decoded")
    return header


def _read_header(path: Path, f: BinaryIO) -> _Header:
    """The header of the image open as ``f``: fast paths for JPEG and PNG, PIL otherwise.

    Raises ImageError naming ``path`` for a broken header or one over the pixel limit.
    """
    try:
        fast = _jpeg_or_png_header(f)
    except (OSError, ValueError, struct.error) as exc:
        raise ImageError(path, f"broken image header: {exc}") from None
    if fast is None:
        f.seek(0)
        fast = _pil_header(path, f)
    return _check_header(path, fast)


def _pil_header(path: Path, f: BinaryIO) -> _Header:
    try:
        with Image.open(f) as img:
            width, height = img.size
            if img.format == "TIFF":
                # newer Pillows report a TIFF's size already turned; the stored one is in
                # the ImageWidth/ImageLength tags whatever the version
                width, height = img.tag_v2.get(256, width), img.tag_v2.get(257, height)
            return _Header(int(width), int(height), _orientation(img))
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file this program can read") from None
    except Exception as exc:  # noqa: BLE001 - PIL's plugins raise any kind on a bad header
        raise ImageError(path, f"cannot read image: {exc}") from None


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # a broken EXIF block must not make the image unreadable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _file_header(path: Path) -> _Header:
    """The header of the image file at ``path`` (regular files only)."""
    fd = open_regular(path, ImageError)

    def from_file() -> _Header:
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as f:
            return _read_header(path, f)

    try:
        # one read covers the JPEG or PNG header of most files (a few us, against ~130 us
        # to open it through PIL); a header that runs past it (a big EXIF block) and other
        # formats (WebP keeps its EXIF at the end) are read from the file
        head = os.read(fd, _HEAD_BYTES)
        if len(head) < _HEAD_BYTES:
            return _read_header(path, io.BytesIO(head))
        if head[:2] != b"\xff\xd8" and head[:8] != _PNG_SIGNATURE:
            return from_file()
        try:
            return _read_header(path, io.BytesIO(head))
        except ImageError:
            return from_file()
    except OSError as exc:
        raise ImageError(path, f"cannot read image: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


_HEAD_BYTES = 1 << 13


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation tag (1-8), 1 when the file has none; the value decoding applies."""
    return _file_header(Path(path)).orientation


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of the EXIF-oriented image, from the header only (no pixel decoding).

    ImageError for a file that is not a readable image or is over :func:`max_pixels`.
    """
    return _file_header(Path(path)).oriented_size()


def image_depth(path: str | Path) -> int:
    """Channels of the image as its header says (1 grayscale, 3 colour, 4 with alpha): the
    ``<depth>`` of a new VOC file. Only the header is read."""
    path = Path(path)
    fd = open_regular(path, ImageError)
    try:
        with os.fdopen(fd, "rb") as f, Image.open(f) as img:
            return len(img.getbands())
    except (OSError, UnidentifiedImageError) as exc:
        raise ImageError(path, f"cannot read image: {exc}") from None


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise ValueError(f"file ends inside the {what}")
    return data


def _jpeg_or_png_header(f: BinaryIO) -> _Header | None:
    """Header from a JPEG's markers or a PNG's chunks; None when the file is neither.

    Opening through PIL costs ~130 us per JPEG; walking the markers costs a few us, which is
    what makes a 10,000-image folder open in well under a second. A cut or malformed header
    raises ValueError.
    """
    head = f.read(8)
    if head == _PNG_SIGNATURE:
        return _png_header(f)
    if head[:2] != b"\xff\xd8":
        return None
    f.seek(2)
    orientation = 1
    while True:
        marker = _read_exact(f, 2, "JPEG markers")
        while marker[1] == 0xFF:  # fill bytes before a marker
            marker = marker[1:] + _read_exact(f, 1, "JPEG markers")
        if marker[0] != 0xFF:
            raise ValueError(f"JPEG marker expected at byte {f.tell() - 2}")
        kind = marker[1]
        if kind in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            raise ValueError("JPEG has no frame header before its image data")
        if 0xD0 <= kind <= 0xD7 or kind == 0x01:
            continue  # markers without a length
        length = struct.unpack(">H", _read_exact(f, 2, "JPEG segment length"))[0]
        if length < 2:
            raise ValueError(f"JPEG segment length {length} at byte {f.tell() - 2}")
        if kind in _SOF_MARKERS:
            sof = _read_exact(f, 5, "JPEG frame header")
            height, width = struct.unpack(">HH", sof[1:5])
            return _Header(width, height, orientation)
        if kind == 0xE1 and orientation == 1:
            payload = _read_exact(f, length - 2, "JPEG APP1 segment")
            if payload[:6] == b"Exif\0\0":
                orientation = _tiff_orientation(payload[6:])
            continue
        f.seek(length - 2, 1)


def _png_header(f: BinaryIO) -> _Header:
    length, kind = struct.unpack(">I4s", _read_exact(f, 8, "PNG header"))
    if kind != b"IHDR" or length < 8:
        raise ValueError("PNG does not start with an IHDR chunk")
    width, height = struct.unpack(">II", _read_exact(f, 8, "PNG header"))
    f.seek(8 + 8 + length + 4)
    # the orientation is in an eXIf chunk before the pixel data (PIL reads it there too;
    # one after IDAT is ignored by both, so size and pixels agree)
    while True:
        length, kind = struct.unpack(">I4s", _read_exact(f, 8, "PNG chunks"))
        if kind in (b"IDAT", b"IEND"):
            return _Header(width, height, 1)
        if kind == b"eXIf":
            payload = _read_exact(f, min(length, 1 << 20), "PNG eXIf chunk")
            return _Header(width, height, _tiff_orientation(payload.removeprefix(
                b"Exif\0\0")))
        f.seek(length + 4, 1)


def _tiff_orientation(tiff: bytes) -> int:
    """The orientation tag of an EXIF (TIFF) block's first IFD; 1 when absent or broken
    (what PIL's ``getexif`` gives for a block it cannot read)."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    end = "<" if tiff[:2] == b"II" else ">"
    offset = struct.unpack(end + "I", tiff[4:8])[0]
    if offset + 2 > len(tiff):
        return 1
    count = struct.unpack(end + "H", tiff[offset:offset + 2])[0]
    for i in range(count):
        entry = tiff[offset + 2 + 12 * i:offset + 14 + 12 * i]
        if len(entry) < 12:
            return 1
        tag, kind = struct.unpack(end + "HH", entry[:4])
        if tag == _ORIENTATION_TAG:
            if kind == 3:
                value = struct.unpack(end + "H", entry[8:10])[0]
            elif kind == 4:
                value = struct.unpack(end + "I", entry[8:12])[0]
            else:
                return 1
            return value if 1 <= value <= 8 else 1
    return 1


def _looks_truncated(data: bytes) -> bool:
    """JPEG and PNG files end with a marker; a missing one means the file was cut short."""
    tail = data.rstrip(b"\0")
    if data[:2] == b"\xff\xd8":
        return not tail.endswith(b"\xff\xd9")
    if data[:8] == _PNG_SIGNATURE:
        return b"IEND" not in tail[-16:]
    return False


def _read_checked(path: Path) -> tuple[bytes, _Header]:
    """The bytes of an image file whose header passed every check (size, pixels, end)."""
    try:
        data = read_regular(path, MAX_IMAGE_BYTES, ImageError)
    except FormatError as err:
        raise ImageError(path, err.message) from None
    if not data:
        raise ImageError(path, "image file is empty")
    header = _read_header(path, io.BytesIO(data))
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
    image, printed = quietly(_decode, path, data, header)
    if printed:
        _report(path, printed, problems)
    if image.shape[1::-1] != header.oriented_size():
        raise ImageError(path, f"decoded image is {image.shape[1]}x{image.shape[0]}, its "
                         f"header says {header.width}x{header.height}")
    return image


_TIFF_SIGNATURES = (b"II*\0", b"MM\0*")


def _decode(path: Path, data: bytes, header: _Header) -> np.ndarray:
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
        import tempfile

        with tempfile.TemporaryFile(prefix="workbench-decoder-") as f:  # unlinked at once
            _scratch[pid] = os.dup(f.fileno())
    return _scratch[pid]


def quietly(decode, *args):
    """``decode(*args)`` with fd 2 pointed at the scratch file: (its result, what was printed
    there). The previous fd 2 comes back even when the decoder raises."""
    from workbench.progress import TERMINAL_LOCK

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
        import logging

        logging.getLogger(__name__).warning("%s", line)


def _load_with_pil(path: Path, data: bytes, turn: bool = False) -> np.ndarray:
    """Fallback for files OpenCV's codecs refuse (some WebP variants): the stored frame, or
    the oriented one with ``turn``."""
    from PIL import ImageOps

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
