"""What every frame source offers the runner, and what every camera backend offers the reader.

Two small interfaces keep the outside world at the edge:

- ``FrameSource`` is what the runner reads from. Files, folders and videos implement it
  directly (paced at ``fps``, ending with ``SourceExhausted``); cameras and streams are wrapped
  in one ``LatestFrameReader`` (edge/sources/reader.py) that owns the thread, the newest-frame
  slot and stall recovery.
- ``CameraBackend`` is the much smaller thing a camera library has to provide for that reader:
  open, read one frame with a timeout, close. OpenCV and picamera2 each have one.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import Frame

Image = npt.NDArray[np.uint8]
"""A BGR (H, W, 3) or greyscale (H, W) uint8 picture."""


class SourceError(Exception):
    """A source that cannot be opened or read; the message names it and says how to fix it."""


class SourceExhausted(Exception):
    """A finite source (file, folder, video) has delivered its last frame."""


class FrameSource(Protocol):
    """Where frames come from. Only the runner's thread calls ``read``."""

    live: bool  # cameras and streams: True; file/dir/video/demo: False
    reconnects: int  # times a stalled camera was reopened and delivered frames again
    dropped: int  # frames replaced by a newer one before anyone read them

    @property
    def state(self) -> str:
        """``ok``, ``stalled``, ``reopening``, ``exhausted`` or ``closed``."""

    def read(self, timeout: float) -> Frame | None:
        """The next (for cameras: the newest) frame, or None if none came within ``timeout``.

        Finite sources raise ``SourceExhausted`` once they have delivered their last frame.
        """

    def describe(self) -> str:
        """One line for logs and ``P/info``, e.g. ``usb:0 640x480@30``."""

    def close(self) -> None:
        """Release the device or file; safe to call twice."""


class CameraBackend(Protocol):
    """One opened camera or stream. Used from one thread at a time, never concurrently."""

    def read(self, timeout: float) -> Image | None:
        """Wait up to about ``timeout`` seconds for a frame; None if none came."""

    def describe(self) -> str:
        """The spec and what the device actually delivers, e.g. ``usb:0 640x480@30``."""

    def close(self) -> None:
        """Release the device; must not raise."""


def redact_url(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))


def size_of(image: Image) -> str:
    return f"{image.shape[1]}x{image.shape[0]}"


def fit_within(image: Image, max_w: int, max_h: int) -> Image:
    """``image`` scaled down (keeping its aspect) to fit max_w x max_h; itself if it fits."""
    h, w = image.shape[:2]
    if w <= max_w and h <= max_h:
        return image
    scale = min(max_w / w, max_h / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    resized: Image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return resized
