"""The Raspberry Pi camera through picamera2, imported only when ``picamera[:N]`` is used.

The main stream is configured as YUV420 at camera.width x height: its Y plane is the
greyscale picture the pipeline works on, with no colour conversion on the Pi's CPU.
``capture_array(wait=seconds)`` bounds every read: picamera2 then raises ``TimeoutError``
(from the job's ``Future.result(timeout)``) and leaves the job queued, so a timed-out read
is followed by ``cancel_all_and_flush()``, which picamera2 documents for exactly this case
(a camera that stopped, e.g. a loose cable) before the camera can be closed.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from edge.config import CameraConfig
from edge.sources.base import Image, SourceError

log = logging.getLogger(__name__)

MISSING = (
    "picamera:{index}: the picamera2 library is not installed ({error}). On Raspberry Pi OS: "
    "`sudo apt install python3-picamera2`, and make the venv with "
    "`python3 -m venv --system-site-packages` so it can see it (or pip install 'digit-edge[pi]'). "
    "For a USB webcam use source usb:N instead."
)


def load_picamera2() -> Any:
    """The ``Picamera2`` class. A seam: the tests replace this with a stand-in's class."""
    from picamera2 import Picamera2  # lazy: only Pi users have it

    return Picamera2


class PicameraCamera:
    """One opened Pi camera, a ``CameraBackend`` for the latest-frame reader."""

    def __init__(self, cam: Any, index: int, size: tuple[int, int], fps: float, model: str) -> None:
        self._cam = cam
        self.index = index
        self._size = size
        self._fps = fps
        self._model = model

    @classmethod
    def open(cls, index: int, camera: CameraConfig, fps: float) -> PicameraCamera:
        try:
            picamera2_class = load_picamera2()
        except ImportError as exc:
            raise SourceError(MISSING.format(index=index, error=exc)) from None
        try:
            cameras = list(picamera2_class.global_camera_info())
        except Exception as exc:
            raise SourceError(f"picamera:{index}: libcamera cannot list cameras: {exc}") from None
        if index >= len(cameras):
            seen = ", ".join(f"{i}: {c.get('Model', '?')}" for i, c in enumerate(cameras)) or "none"
            raise SourceError(
                f"picamera:{index}: no such camera (libcamera sees {seen}); check the ribbon "
                "cable and that `rpicam-hello --list-cameras` lists it"
            )
        model = str(cameras[index].get("Model", "camera"))
        size = (camera.width - camera.width % 2, camera.height - camera.height % 2)
        cam = None
        try:
            cam = picamera2_class(index)
            config = cam.create_video_configuration(
                main={"size": size, "format": "YUV420"}, controls={"FrameRate": fps}
            )
            cam.configure(config)
            cam.start()
        except Exception as exc:
            if cam is not None:
                _close_quietly(cam)
            raise SourceError(
                f"picamera:{index}: cannot start the {model} camera: {exc} (is another program "
                "using it? `sudo fuser /dev/media*`)"
            ) from None
        return cls(cam, index, size, fps, model)

    def read(self, timeout: float) -> Image | None:
        try:
            yuv = self._cam.capture_array("main", wait=timeout)
        except TimeoutError:
            self._cam.cancel_all_and_flush()
            return None
        w, h = self._size
        return np.ascontiguousarray(yuv[:h, :w], dtype=np.uint8)  # the Y plane, without padding

    def describe(self) -> str:
        w, h = self._size
        return f"picamera:{self.index} {w}x{h}@{self._fps:g} ({self._model}, greyscale)"

    def close(self) -> None:
        _close_quietly(self._cam)


def _close_quietly(cam: Any) -> None:
    for step in ("cancel_all_and_flush", "stop", "close"):
        try:
            getattr(cam, step)()
        except Exception as exc:
            log.debug("picamera2 %s() failed: %s", step, exc)
