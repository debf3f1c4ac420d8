"""Small helpers shared by the source tests."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from edge.bench.waiting import wait_until
from edge.config import Config

DEADLINE_S = 20.0  # generous: conditions are waited for, never timed


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    if not wait_until(condition, deadline_s, poll_s=0.01):
        raise AssertionError(f"gave up waiting for: {what}")


def config(**camera: float) -> Config:
    return Config.model_validate({"fps": 50, "camera": {"width": 64, "height": 48, **camera}})


def card(value: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A BGR picture whose pixels all equal ``value``, so a frame tells which one it is."""
    return np.full((size[1], size[0], 3), value, np.uint8)


class PausableCamera:
    """An MJPEG camera on a free loopback port whose frames can be stopped (a stall) and resumed."""

    def __init__(self, jpeg: bytes) -> None:
        self.flowing = threading.Event()
        self.flowing.set()
        self.closing = threading.Event()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
                with contextlib.suppress(OSError):
                    while not camera.closing.wait(0.05):
                        if camera.flowing.is_set():
                            self.wfile.write(head + jpeg + b"\r\n")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
