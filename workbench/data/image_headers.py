"""Image headers: the stored size, the EXIF orientation and the channels of an image file,
read without decoding a pixel, and the pixel limit a header is checked against.

The orientation tag is read here for every format (JPEG APP1, PNG eXIf before the pixel
data, and through PIL for WebP, TIFF and the rest); sizes are swapped for orientations 5-8.
A JPEG's or PNG's header is walked by hand (a few us against ~130 us through PIL), which is
what makes a 10,000-image folder open in well under a second.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO

from PIL import Image, UnidentifiedImageError

from workbench.errors import ImageError
from workbench.storage.files import open_regular

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


class Header:
    """What an image's header says: stored (unrotated) size and the EXIF orientation."""

    __slots__ = ("width", "height", "orientation")

    def __init__(self, width: int, height: int, orientation: int) -> None:
        self.width, self.height, self.orientation = width, height, orientation

    def oriented_size(self) -> tuple[int, int]:
        if self.orientation in _SWAPS_AXES:
            return self.height, self.width
        return self.width, self.height


def check_header(path: Path, header: Header) -> Header:
    if header.width <= 0 or header.height <= 0:
        raise ImageError(path, f"image has an empty size {header.width}x{header.height}")
    limit = max_pixels()
    if header.width * header.height > limit:
        raise ImageError(path, f"image is {header.width}x{header.height} pixels, more than "
                         f"the limit of {limit:,} (set {MAX_PIXELS_VARIABLE} to raise it); "
                         "not decoded")
    return header


def read_header(path: Path, f: BinaryIO) -> Header:
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
    return check_header(path, fast)


def _pil_header(path: Path, f: BinaryIO) -> Header:
    try:
        with Image.open(f) as img:
            width, height = img.size
            if img.format == "TIFF":
                # newer Pillows report a TIFF's size already turned; the stored one is in
                # the ImageWidth/ImageLength tags whatever the version
                width, height = img.tag_v2.get(256, width), img.tag_v2.get(257, height)
            return Header(int(width), int(height), _orientation(img))
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


def _file_header(path: Path) -> Header:
    """The header of the image file at ``path`` (regular files only)."""
    fd = open_regular(path, ImageError)

    def from_file() -> Header:
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as f:
            return read_header(path, f)

    try:
        # one read covers the JPEG or PNG header of most files (a few us, against ~130 us
        # to open it through PIL); a header that runs past it (a big EXIF block) and other
        # formats (WebP keeps its EXIF at the end) are read from the file
        head = os.read(fd, _HEAD_BYTES)
        if len(head) < _HEAD_BYTES:
            return read_header(path, io.BytesIO(head))
        if head[:2] != b"\xff\xd8" and head[:8] != PNG_SIGNATURE:
            return from_file()
        try:
            return read_header(path, io.BytesIO(head))
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
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise ValueError(f"file ends inside the {what}")
    return data


def _jpeg_or_png_header(f: BinaryIO) -> Header | None:
    """Header from a JPEG's markers or a PNG's chunks; None when the file is neither.

    Opening through PIL costs ~130 us per JPEG; walking the markers costs a few us, which is
    what makes a 10,000-image folder open in well under a second. A cut or malformed header
    raises ValueError.
    """
    head = f.read(8)
    if head == PNG_SIGNATURE:
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
            return Header(width, height, orientation)
        if kind == 0xE1 and orientation == 1:
            payload = _read_exact(f, length - 2, "JPEG APP1 segment")
            if payload[:6] == b"Exif\0\0":
                orientation = _tiff_orientation(payload[6:])
            continue
        f.seek(length - 2, 1)


def _png_header(f: BinaryIO) -> Header:
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
            return Header(width, height, 1)
        if kind == b"eXIf":
            payload = _read_exact(f, min(length, 1 << 20), "PNG eXIf chunk")
            return Header(width, height, _tiff_orientation(payload.removeprefix(
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
