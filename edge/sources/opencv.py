"""OpenCV camera backends: USB cameras (``usb:N``, V4L2) and network streams (FFmpeg).

Both are ``CameraBackend``s for the latest-frame reader, which owns the thread and the
stall recovery. Opening checks what can be checked before OpenCV tries (does /dev/videoN
exist, may we open it) so the error says what to do instead of OpenCV's generic warning.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edge.config import CameraConfig
from edge.sources.base import Image, SourceError, redact_url

# OpenCV's V4L2 backend waits this many seconds for each frame of a camera that stopped
# (default 10) and ignores CAP_PROP_READ_TIMEOUT_MSEC; read once, at the first capture.
V4L_SELECT_TIMEOUT_ENV = "OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT"
V4L_SELECT_TIMEOUT_S = "2"


def video_devices() -> list[str]:
    """The V4L2 devices present, with their driver names: ``/dev/video0 (HD Webcam C270)``."""
    found = []
    for dev in sorted(Path("/dev").glob("video*"), key=lambda p: (len(p.name), p.name)):
        try:
            name = (Path("/sys/class/video4linux") / dev.name / "name").read_text().strip()
        except OSError:
            name = ""
        found.append(f"{dev} ({name})" if name else str(dev))
    return found


class OpenCvCamera:
    """A ``cv2.VideoCapture`` that is read by one thread and released by the same thread."""

    def __init__(self, cap: cv2.VideoCapture, label: str) -> None:
        self._cap = cap
        self.label = label

    @classmethod
    def open_usb(cls, index: int, camera: CameraConfig, fps: float) -> OpenCvCamera:
        label = f"usb:{index}"
        device = Path(f"/dev/video{index}")
        if not device.exists():
            found = video_devices()
            seen = "found: " + ", ".join(found) if found else "there are no /dev/video* devices at all"
            raise SourceError(
                f"{label}: no camera at {device} ({seen}); plug the camera in, or pick an index "
                "from `ls /dev/video*` (a Raspberry Pi camera module is source picamera, not usb)"
            )
        if not os.access(device, os.R_OK | os.W_OK):
            raise SourceError(
                f"{label}: no permission to open {device}; add the user to the 'video' group "
                "(`sudo usermod -aG video $USER`, then log in again)"
            )
        os.environ.setdefault(V4L_SELECT_TIMEOUT_ENV, V4L_SELECT_TIMEOUT_S)
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"{label}: {device} exists but OpenCV cannot open it as a camera (in use by "
                "another program, or not a capture device such as a Pi's codec nodes); "
                f"devices: {', '.join(video_devices())}"
            )
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, camera.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, camera.height)
        cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the newest frame, not one from the driver's queue
        return cls(cap, label)

    @classmethod
    def open_url(cls, url: str, camera: CameraConfig) -> OpenCvCamera:
        label = redact_url(url)
        timeout_ms = int(camera.stall_timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        cap = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"{label}: cannot open the stream (connection refused, no answer within "
                f"{camera.stall_timeout_s:g} s, wrong path or credentials, or the camera is off); "
                "check the URL with `ffprobe URL` or a media player"
            )
        return cls(cap, label)

    def read(self, timeout: float) -> Image | None:
        # VideoCapture.read has no timeout argument: V4L2 is bounded by the select timeout set
        # above, FFmpeg by CAP_PROP_READ_TIMEOUT_MSEC; the reader watches for anything longer.
        ok, image = self._cap.read()
        return np.asarray(image, dtype=np.uint8) if ok and image is not None else None

    def describe(self) -> str:
        w = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        h = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        rate = f"@{fps:g}" if fps and fps > 0 else ""
        return f"{self.label} {w}x{h}{rate}"

    def close(self) -> None:
        self._cap.release()
