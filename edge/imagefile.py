"""Reading one image file, with the reason in words when it is not a usable image.

`predict` and the `file:`/`dir:` sources both read image files; this is their one reader,
so a user sees the same reason ("empty file (0 bytes)", "no such file", ...) from both.

It never blocks and never blows up memory on a strange file: anything but a regular file
(a FIFO, a device, a socket) is refused before it is opened; the size in pixels is read
from the PNG/JPEG header first; an image larger than ``MAX_SIDE`` is decoded reduced (a
JPEG by libjpeg while decoding, 1/2, 1/4 or 1/8; a PNG as grey, then shrunk), and one that
would need more than ``MAX_DECODED_BYTES`` to decode is refused with its size (a
20000x20000 PNG is 8 MB on disk and 1.2 GB decoded as colour). Transparent PNGs are laid on white paper, so digits
drawn on a transparent background do not vanish into black.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

MAX_SIDE = 4096  # decoded at most this long when the format can shrink while decoding
MAX_DECODED_BYTES = 150 * 2**20  # what decoding may hold at once; a larger image is refused
MAX_FILE_BYTES = 256 * 2**20
_REDUCED_COLOR = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}
_REDUCED_GREY = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
_CHUNK_ROWS = 512  # rows composited over white at a time (bounded temporary memory)


class ImageError(Exception):
    """The file is not a usable image; the message is the reason, without the path."""


@dataclass(frozen=True)
class LoadedImage:
    image: npt.NDArray[np.uint8]  # BGR
    factor: int  # the file is this many times larger on each side (1 = decoded at full size)


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def header_size(head: bytes) -> tuple[str, int, int, bool] | None:
    """(format, width, height, has_alpha) from the first bytes of a PNG or JPEG, else None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n") and len(head) >= 26 and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        color_type = head[25]
        return "png", width, height, color_type in (4, 6) or b"tRNS" in head
    if head.startswith(b"\xff\xd8"):
        pos = 2
        while pos + 9 <= len(head):
            if head[pos] != 0xFF:
                return None
            marker = head[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                pos += 2
                continue
            length = struct.unpack(">H", head[pos + 2:pos + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
                height, width = struct.unpack(">HH", head[pos + 5:pos + 9])
                return "jpeg", width, height, False
            pos += 2 + length
    return None


def load_image(path: Path) -> LoadedImage:
    """The image as BGR uint8 (perhaps reduced, see ``factor``), or ImageError saying why not."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError("is a folder, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"is {_kind(info.st_mode)}, not an image file")
    if info.st_size == 0:
        raise ImageError("empty file (0 bytes)")
    if info.st_size > MAX_FILE_BYTES:
        raise ImageError(f"file of {info.st_size // 2**20} MB is larger than the limit of "
                         f"{MAX_FILE_BYTES // 2**20} MB")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # never waits, even if swapped for a FIFO
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ImageError("is not a regular file any more")
            with os.fdopen(fd, "rb", closefd=False) as f:
                data = np.frombuffer(f.read(MAX_FILE_BYTES + 1), dtype=np.uint8)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ImageError(f"cannot read: {exc.strerror}") from None
    if data.size == 0:
        raise ImageError("empty file (0 bytes)")
    return _decode(data)


def _decode(data: npt.NDArray[np.uint8]) -> LoadedImage:
    head = header_size(data[: 1 << 20].tobytes())  # past EXIF and other APPn segments
    flag, factor, alpha = cv2.IMREAD_COLOR, 1, False
    if head is not None:
        fmt, width, height, alpha = head
        big = max(width, height) > MAX_SIDE
        if big:
            factor = next((f for f in (2, 4, 8) if max(width, height) <= MAX_SIDE * f), 8)
        if fmt == "jpeg":  # libjpeg scales while decoding: only the reduced image is ever in memory
            flag = _REDUCED_COLOR[factor] if big else cv2.IMREAD_COLOR
            decoded = (width // factor) * (height // factor) * 3
        elif big:  # OpenCV decodes the whole PNG, then shrinks it: as grey, a third of the memory
            flag, alpha, decoded = _REDUCED_GREY[factor], False, width * height
        else:
            flag = cv2.IMREAD_UNCHANGED if alpha else cv2.IMREAD_COLOR
            decoded = width * height * (4 if alpha else 3)
        if decoded > MAX_DECODED_BYTES:
            raise ImageError(f"{width}x{height} pixels is too large to decode (over {MAX_DECODED_BYTES // 2**20} MB "
                             "in memory); scale it down first")
    image = cv2.imdecode(data, flag)
    if image is None:
        raise ImageError("not an image OpenCV can read (corrupt, truncated or unsupported format)")
    if alpha:
        image = _on_white(image)
    elif image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return LoadedImage(np.asarray(image, dtype=np.uint8), factor)


def _on_white(image: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """A PNG with transparency as BGR over white paper (grey, 16-bit and palette ones too)."""
    if image.dtype == np.uint16:
        image = (np.asarray(image, dtype=np.uint16) >> 8).astype(np.uint8)
    if image.ndim == 2:
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if image.shape[2] == 3:
        return np.asarray(image, dtype=np.uint8)
    if image.shape[2] == 2:  # grey + alpha
        bgr, a = cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR), image[:, :, 1]
    else:
        bgr, a = image[:, :, :3], image[:, :, 3]
    out = np.empty(bgr.shape, dtype=np.uint8)
    for top in range(0, bgr.shape[0], _CHUNK_ROWS):
        rows = slice(top, top + _CHUNK_ROWS)
        alpha = a[rows, :, None].astype(np.uint16)
        out[rows] = ((bgr[rows].astype(np.uint16) * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)
    return out


def read_image(path: Path) -> npt.NDArray[np.uint8]:
    """The image as BGR uint8 (a huge JPEG reduced), or ImageError saying what is wrong with the file."""
    return load_image(path).image
