"""Frame sources, opened by SPEC: ``open_source("usb:0", config)``.

SPECs: ``demo``, ``usb:N``, ``picamera[:N]``, ``file:PATH``, ``dir:PATH``, ``video:PATH``,
or an ``rtsp://`` / ``http(s)://`` stream URL. Cameras and streams are live (a thread keeps
the newest frame; stalls are recovered); the others are paced at ``config.fps`` and the
file/dir/video ones end with ``SourceExhausted``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from edge.config import Config
from edge.sources.base import CameraBackend, FrameSource, SourceError, SourceExhausted, redact_url
from edge.sources.capture import capture_frame
from edge.sources.demo import DemoSource
from edge.sources.files import ImageDirSource, ImageFileSource, VideoFileSource
from edge.sources.opencv import OpenCvCamera
from edge.sources.picamera import PicameraCamera
from edge.sources.reader import LatestFrameReader

__all__ = [
    "CameraBackend",
    "FrameSource",
    "LatestFrameReader",
    "SourceError",
    "SourceExhausted",
    "capture_frame",
    "open_source",
]

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")
SPEC_HELP = (
    "expected demo, usb:N, picamera[:N], file:PATH, dir:PATH, video:PATH, "
    "or an rtsp:// or http(s):// URL"
)


def open_source(spec: str, config: Config) -> FrameSource:
    """Open the source named by ``spec``; SourceError (naming it and the fix) if it cannot be."""
    spec = spec.strip()
    if spec == "demo":
        return DemoSource(config)
    if spec.lower().startswith(STREAM_SCHEMES):
        opener = functools.partial(OpenCvCamera.open_url, spec, config.camera)
        return LatestFrameReader(redact_url(spec), opener, config.camera)
    kind, sep, arg = spec.partition(":")
    if kind == "usb" and sep:
        index = _index(spec, arg)
        usb = functools.partial(OpenCvCamera.open_usb, index, config.camera, config.fps)
        return LatestFrameReader(f"usb:{index}", usb, config.camera)
    if kind == "picamera":
        index = _index(spec, arg) if sep else 0
        pi = functools.partial(PicameraCamera.open, index, config.camera, config.fps)
        return LatestFrameReader(f"picamera:{index}", pi, config.camera)
    if kind in ("file", "dir", "video") and sep:
        if not arg:
            raise SourceError(f"source {spec!r}: needs a path after '{kind}:', e.g. {kind}:/path/to/it")
        path = Path(arg).expanduser()
        if kind == "file":
            return ImageFileSource(path, config.fps)
        if kind == "dir":
            return ImageDirSource(path, config.fps)
        return VideoFileSource(path, config.fps)
    raise SourceError(f"unknown source {spec!r}: {SPEC_HELP}")


def _index(spec: str, arg: str) -> int:
    if not arg.isdigit():
        raise SourceError(f"source {spec!r}: the camera index must be a number like 0 or 1")
    return int(arg)
