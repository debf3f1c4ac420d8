"""Finite sources: one image (``file:``), a folder of images (``dir:``), a video (``video:``).

They play at ``fps`` (a frame at most every 1/fps seconds; a slow consumer simply gets the
next one at once, nothing piles up), deliver every frame in order, and raise
``SourceExhausted`` after the last. Problems found when opening are ``SourceError``s naming
the file; a folder's unreadable image is logged with its name and skipped.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import cv2

from edge.imagefile import ImageError, read_image
from edge.sources.base import Image, SourceError, SourceExhausted, size_of
from edge.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff", ".webp",
     ".pbm", ".pgm", ".ppm", ".pnm", ".pxm", ".jp2", ".sr", ".ras", ".hdr", ".pic", ".exr"}
)


class Pacer:
    """Lets a frame through at most every 1/fps seconds."""

    def __init__(self, fps: float) -> None:
        self.period = 1.0 / fps
        self._due: float | None = None

    def wait(self, timeout: float) -> bool:
        """Sleep until the next frame is due; False (after ``timeout``) if it is due later."""
        now = time.monotonic()
        due = now if self._due is None else self._due
        if due - now > timeout:
            time.sleep(max(0.0, timeout))
            return False
        if due > now:
            time.sleep(due - now)
        self._due = max(due + self.period, time.monotonic())
        return True


def decode_image(path: Path) -> Image:
    """Read an image file as BGR; SourceError naming the file and what is wrong with it."""
    try:
        return read_image(path)
    except ImageError as exc:
        hint = f" (use dir:{path})" if path.is_dir() else ""
        raise SourceError(f"{path}: {exc}{hint}") from None


def natural_key(name: str) -> list[tuple[int, int | str]]:
    """Sort key putting ``img2`` before ``img10``."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part]


class _FiniteSource:
    live = False
    reconnects = 0
    dropped = 0

    def __init__(self, fps: float) -> None:
        self._pacer = Pacer(fps)
        self._fps = fps
        self._index = 0
        self.state = "ok"

    def read(self, timeout: float) -> Frame | None:
        if self.state != "ok":
            raise SourceExhausted(self.describe())
        if not self._pacer.wait(timeout):
            return None
        got = self._next()
        if got is None:
            self.close()
            self.state = "exhausted"
            raise SourceExhausted(f"{self.describe()}: end after {self._index} frame(s)")
        image, name = got
        frame = Frame(image=image, index=self._index, ts=time.time(), name=name)
        self._index += 1
        return frame

    def _next(self) -> tuple[Image, str] | None:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def close(self) -> None:
        if self.state == "ok":
            self.state = "closed"


class ImageFileSource(_FiniteSource):
    """``file:PATH``: one image, once."""

    def __init__(self, path: Path, fps: float) -> None:
        super().__init__(fps)
        self.path = path
        try:
            self._image: Image | None = decode_image(path)
        except SourceError as exc:
            raise SourceError(f"file:{exc}") from None
        self._size = size_of(self._image)

    def _next(self) -> tuple[Image, str] | None:
        image, self._image = self._image, None
        return None if image is None else (image, str(self.path))

    def describe(self) -> str:
        return f"file:{self.path} {self._size}"


class ImageDirSource(_FiniteSource):
    """``dir:PATH``: the folder's images in name order (``2`` before ``10``); not recursive."""

    def __init__(self, path: Path, fps: float) -> None:
        super().__init__(fps)
        self.path = path
        if not path.is_dir():
            what = "is a file, not a folder (use file:" + str(path) + ")" if path.exists() else "no such folder"
            raise SourceError(f"dir:{path}: {what}")
        try:
            entries = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir()]
        except OSError as exc:
            raise SourceError(f"dir:{path}: cannot list the folder: {exc.strerror}") from None
        if not entries:
            raise SourceError(
                f"dir:{path}: no image files in the folder (looked for {', '.join(sorted(IMAGE_SUFFIXES)[:6])}, ...)"
            )
        self.files = sorted(entries, key=lambda p: natural_key(p.name))
        self.skipped: list[Path] = []
        self._pos = 0

    def _next(self) -> tuple[Image, str] | None:
        while self._pos < len(self.files):
            file = self.files[self._pos]
            self._pos += 1
            try:
                return decode_image(file), str(file)
            except SourceError as exc:
                self.skipped.append(file)
                log.warning("dir:%s: skipping %s", self.path, exc)
        return None

    def describe(self) -> str:
        return f"dir:{self.path} ({len(self.files)} images) @{self._fps:g}fps"


class VideoFileSource(_FiniteSource):
    """``video:PATH``: every frame of a video file that OpenCV's FFmpeg backend decodes."""

    def __init__(self, path: Path, fps: float) -> None:
        super().__init__(fps)
        self.path = path
        if not path.is_file():
            raise SourceError(f"video:{path}: {'not a file' if path.exists() else 'no such file'}")
        cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        ok, first = cap.read() if cap.isOpened() else (False, None)
        if not ok or first is None:
            cap.release()
            raise SourceError(
                f"video:{path}: not a video OpenCV can read (empty, truncated, or a format "
                "FFmpeg does not decode; .mp4, .avi, .mkv and .mov usually work)"
            )
        self._cap: cv2.VideoCapture | None = cap
        self._pending: Image | None = first
        self._size = size_of(first)
        self._count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def _next(self) -> tuple[Image, str] | None:
        image, self._pending = self._pending, None
        if image is None and self._cap is not None:
            ok, image = self._cap.read()
            image = image if ok else None
        return None if image is None else (image, str(self.path))

    def describe(self) -> str:
        count = f", {self._count} frames" if self._count > 0 else ""
        return f"video:{self.path} {self._size}{count} @{self._fps:g}fps"

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        super().close()
