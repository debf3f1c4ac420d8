"""The threaded latest-frame reader: newest frame, stalls, hangs; a real MJPEG stream; the Pi
camera through a picamera2 stand-in (the only stand-in in the suite)."""

from __future__ import annotations

import http.server
import io
import logging
import re
import socketserver
import threading
import time
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from edge.logs import setup_logging
from edge.sources import SourceError, open_source
from edge.sources.reader import LatestFrameReader
from tests.source_helpers import card, config, wait_for

# ---- the threaded reader: newest frame, stalls, hangs ---------------------------------------


class World:
    """A camera on a cable: delivers frames while ``delivering`` is set; can be unplugged."""

    def __init__(self) -> None:
        self.delivering = threading.Event()
        self.delivering.set()
        self.plugged = True
        self.opened = 0
        self.refused = 0
        self.closed = 0
        self.count = 0
        self.hang = threading.Event()  # set: read() blocks, ignoring its timeout
        self.release = threading.Event()
        self.stale_on_open = 0  # frames a newly opened camera hands over even while frozen

    def open(self) -> WorldCamera:
        if not self.plugged:
            self.refused += 1
            raise SourceError("test:0: no camera at /dev/test0")
        self.opened += 1
        return WorldCamera(self)


class WorldCamera:
    """A CameraBackend for the reader, behind the same interface as OpenCV's and picamera2's."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.stale = world.stale_on_open

    def read(self, timeout: float) -> np.ndarray | None:
        if self.world.hang.is_set():
            self.world.release.wait()
        if self.stale and not self.world.delivering.is_set():  # the buffered last frame, once
            self.stale -= 1
            return np.zeros((48, 64), np.uint8)
        if not self.world.delivering.wait(timeout):
            return None
        time.sleep(0.005)  # ~200 frames/s
        self.world.count += 1
        return np.full((48, 64), self.world.count % 256, np.uint8)

    def describe(self) -> str:
        return "test:0 64x48"

    def close(self) -> None:
        self.world.closed += 1


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.release.set()


def test_reader_gives_the_newest_frame_and_counts_dropped(world: World) -> None:
    reader = LatestFrameReader("test:0", world.open, config().camera)
    try:
        first = reader.read(5.0)
        assert first is not None
        wait_for(lambda: world.count > first.index + 10, "the camera to deliver more frames")
        second = reader.read(5.0)
        assert second is not None and second.index > first.index + 1
        assert reader.dropped > 0
        assert reader.live and reader.state == "ok" and reader.describe() == "test:0 64x48"
    finally:
        reader.close()
    assert reader.state == "closed"
    wait_for(lambda: world.closed == 1, "the camera to be released")


def test_reader_recovers_a_stalled_camera(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.sources")
    reader = LatestFrameReader("test:0", world.open, config(stall_timeout_s=0.3, reopen_backoff_max_s=0.4).camera)
    try:
        assert reader.read(5.0) is not None
        world.delivering.clear()  # the camera stops delivering...
        world.plugged = False  # ...and is gone: reopening fails for a while
        wait_for(lambda: world.refused >= 3, "several reopen attempts")
        assert reader.state in ("stalled", "reopening")
        assert reader.reconnects == 0
        world.plugged = True
        world.delivering.set()
        wait_for(lambda: reader.reconnects == 1, "the camera to be recovered")
        assert reader.read(5.0) is not None
        assert reader.state == "ok"
    finally:
        reader.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("stalled" in m for m in warnings) == 1  # logged once, not per attempt
    assert sum("cannot reopen" in m for m in warnings) == 1
    assert any("recovered" in m and "reconnect 1" in m for m in warnings)
    assert world.closed == world.opened  # every camera opened was released


def test_reader_recovers_when_a_reopened_camera_stays_silent(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.sources")
    reader = LatestFrameReader("test:0", world.open, config(stall_timeout_s=0.2, reopen_backoff_max_s=0.3).camera)
    try:
        assert reader.read(5.0) is not None
        world.delivering.clear()  # opens fine, delivers nothing (a hung picamera2)
        wait_for(lambda: world.opened >= 3, "repeated reopening")
        world.delivering.set()
        wait_for(lambda: reader.reconnects == 1, "recovery")
    finally:
        reader.close()
    reopened = [r for r in caplog.records if "reopened" in r.getMessage()]
    assert len(reopened) >= 2 and [r.levelno for r in reopened].count(logging.INFO) == 1  # rate-limited


def test_a_freeze_with_stale_frames_on_reopen_is_one_outage_and_a_second_stall_is_logged(
    world: World, root_logging: None
) -> None:
    """A camera that hands over its buffered frame on every reopen and stays frozen: the
    outage is the whole freeze, not the time to the first stale frame; and a second freeze
    within a minute is logged through the daemon's rate-limited handler."""
    out = io.StringIO()
    setup_logging("INFO", stream=out)
    world.stale_on_open = 1
    reader = LatestFrameReader("test:0", world.open, config(stall_timeout_s=0.3, reopen_backoff_max_s=0.3).camera)

    def freeze(recovered: int) -> None:
        world.delivering.clear()
        time.sleep(3.0)  # frozen 3 s: reopened several times, one stale frame each time
        world.delivering.set()
        wait_for(lambda: reader.reconnects == recovered, f"recovery {recovered}")

    try:
        assert reader.read(5.0) is not None
        freeze(1)
        time.sleep(0.5)
        freeze(2)  # well within the rate limiter's minute
    finally:
        reader.close()
    text = out.getvalue()
    assert text.count("camera stalled") == 2, text
    took = [float(x) for x in re.findall(r"recovered after ([0-9.]+) s", text)]
    assert len(took) == 2 and all(t >= 3.0 for t in took), text
    assert "stopped again" in text and "stalled again" in text, text


def test_reader_abandons_a_read_that_never_returns(world: World, caplog: pytest.LogCaptureFixture) -> None:
    reader = LatestFrameReader(
        "test:0", world.open, config(stall_timeout_s=0.2, reopen_backoff_max_s=0.3).camera, hung_after_s=0.5
    )
    try:
        assert reader.read(5.0) is not None
        world.hang.set()  # the next read blocks in the "driver", ignoring its timeout

        def reopened() -> bool:
            reader.read(0.05)  # the consumer's reads are what notice the hang
            return world.opened >= 2

        wait_for(reopened, "a fresh camera opened beside the stuck one")
        world.hang.clear()
        wait_for(lambda: reader.read(0.05) is not None and reader.reconnects == 1, "frames again")
        assert "has not returned" in caplog.text
    finally:
        world.release.set()
        reader.close()


class MjpegHandler(http.server.BaseHTTPRequestHandler):
    """An IP camera's MJPEG stream (multipart/x-mixed-replace); silent while ``paused``."""

    paused: threading.Event

    def do_GET(self) -> None:
        while self.paused.is_set():  # a camera that is off: the connection opens, nothing comes
            time.sleep(0.02)
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        n = 0
        try:
            while True:
                if self.paused.is_set():
                    time.sleep(0.02)
                    continue
                jpeg = cv2.imencode(".jpg", card(n % 250, (160, 120)))[1].tobytes()
                head = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(jpeg)
                self.wfile.write(head + jpeg + b"\r\n")
                n += 1
                time.sleep(0.02)
        except OSError:
            pass  # the client went away

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mjpeg_stream() -> Iterator[tuple[str, threading.Event]]:
    paused = threading.Event()
    handler = type("Handler", (MjpegHandler,), {"paused": paused})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg", paused
    paused.clear()
    server.shutdown()
    server.server_close()


def test_http_stream_is_read_live_and_recovers_from_a_stall(
    mjpeg_stream: tuple[str, threading.Event], caplog: pytest.LogCaptureFixture
) -> None:
    url, paused = mjpeg_stream
    source = open_source(url, config(stall_timeout_s=0.5, reopen_backoff_max_s=0.5))
    try:
        assert source.live
        wait_for(lambda: source.read(0.1) is not None, "frames from the stream")
        frame = source.read(5.0)
        assert frame is not None and frame.image.shape == (48, 64, 3)  # 160x120 scaled to fit 64x48
        paused.set()
        wait_for(lambda: source.state == "reopening", "the stall to be noticed and the stream reopened")
        paused.clear()
        wait_for(lambda: source.reconnects == 1 and source.state == "ok", "the stream to be recovered")
        assert source.read(5.0) is not None
    finally:
        source.close()
    assert "stalled" in caplog.text and "recovered" in caplog.text


# ---- the Pi camera, through a stand-in with picamera2's method names and behaviour -----------


class Sensor:
    """What the stand-in cameras deliver; ``flowing`` cleared = the camera stopped (cable)."""

    def __init__(self) -> None:
        self.flowing = threading.Event()
        self.flowing.set()
        self.cameras: list[StandInPicamera2] = []
        self.frames = 0


class StandInPicamera2:
    """picamera2.Picamera2 as the adapter uses it.

    As in picamera2: configure only while stopped; ``capture_array(name, wait=seconds)``
    blocks until the next frame and, when none comes, raises ``TimeoutError`` after ``wait``
    seconds (picamera2's ``Future.result(timeout)``) and leaves the job queued until
    ``cancel_all_and_flush()``; YUV420 arrives as (h * 3 / 2, stride) with row padding.
    """

    sensor: Sensor

    @staticmethod
    def global_camera_info() -> list[dict[str, object]]:
        return [{"Model": "imx708", "Num": 0, "Id": "/base/axi/pcie@120000/rp1/i2c@88000/imx708@1a"}]

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_num = camera_num
        self.camera_config: dict[str, object] | None = None
        self.started = False
        self.closed = False
        self.pending_jobs = 0
        self.sensor.cameras.append(self)

    def create_video_configuration(self, main: dict[str, object] | None = None, **kwargs: object) -> dict[str, object]:
        return {"use_case": "video", "main": {"format": "XBGR8888", "size": (1280, 720), **(main or {})}, **kwargs}

    def configure(self, camera_config: dict[str, object]) -> None:
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        self.camera_config = camera_config

    def start(self) -> None:
        if self.camera_config is None:
            raise RuntimeError("Camera has not been configured")
        self.started = True

    def capture_array(self, name: str = "main", wait: float | None = None) -> np.ndarray:
        assert self.started and not self.closed and name == "main"
        timeout = None if wait is None or wait is True else float(wait)
        if not self.sensor.flowing.wait(timeout):
            self.pending_jobs += 1
            raise TimeoutError
        time.sleep(0.01)
        self.sensor.frames += 1
        main = self.camera_config["main"]  # type: ignore[index]
        assert main["format"] == "YUV420"
        w, h = main["size"]
        stride = (w + 63) // 64 * 64
        yuv = np.full((h * 3 // 2, stride), 128, np.uint8)
        yuv[:h, :w] = self.sensor.frames % 200
        yuv[:h, w:] = 255  # padding that must not reach the pipeline
        return yuv

    def cancel_all_and_flush(self) -> None:
        self.pending_jobs = 0

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.stop()
        self.closed = True


@pytest.fixture
def pi_sensor(monkeypatch: pytest.MonkeyPatch) -> Sensor:
    sensor = Sensor()
    picamera2_class = type("Picamera2", (StandInPicamera2,), {"sensor": sensor})
    monkeypatch.setattr("edge.sources.picamera.load_picamera2", lambda: picamera2_class)
    return sensor


def test_picamera_delivers_the_y_plane_in_the_configured_size(pi_sensor: Sensor) -> None:
    source = open_source("picamera", config())
    try:
        frame = source.read(5.0)
        assert frame is not None
        assert frame.image.shape == (48, 64) and frame.image.dtype == np.uint8
        assert frame.image.max() < 255  # no stride padding
        assert "picamera:0 64x48" in source.describe() and "imx708" in source.describe()
        camera = pi_sensor.cameras[0]
        assert camera.camera_config["controls"] == {"FrameRate": 50}  # type: ignore[index]
    finally:
        source.close()
    assert camera.closed and not camera.started


def test_picamera_that_stops_is_reopened(pi_sensor: Sensor, caplog: pytest.LogCaptureFixture) -> None:
    source = open_source("picamera:0", config(stall_timeout_s=0.3, reopen_backoff_max_s=0.3))
    try:
        assert source.read(5.0) is not None
        pi_sensor.flowing.clear()  # the ribbon cable works loose
        wait_for(lambda: len(pi_sensor.cameras) >= 2, "the camera to be closed and opened again")
        first = pi_sensor.cameras[0]
        assert first.closed and first.pending_jobs == 0  # timed-out jobs flushed before closing
        pi_sensor.flowing.set()
        wait_for(lambda: source.reconnects == 1 and source.read(0.05) is not None, "frames again")
    finally:
        source.close()
    assert all(c.closed for c in pi_sensor.cameras)
    assert "stalled" in caplog.text and "recovered" in caplog.text


def test_picamera_index_that_does_not_exist(pi_sensor: Sensor) -> None:
    with pytest.raises(SourceError, match=r"picamera:2: no such camera \(libcamera sees 0: imx708\)"):
        open_source("picamera:2", config())
    assert not pi_sensor.cameras


def test_missing_picamera2_says_how_to_install_it() -> None:
    try:
        import picamera2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("picamera2 is installed here")
    with pytest.raises(SourceError) as err:
        open_source("picamera", config())
    message = str(err.value)
    assert "sudo apt install python3-picamera2" in message and "--system-site-packages" in message
