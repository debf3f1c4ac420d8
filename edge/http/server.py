"""The live view, health and metrics server: aiohttp on its own event loop in a daemon thread.

The frame loop never waits for it. The loop only stores references in LiveView (and feeds
the latency histograms); everything a viewer sees is computed here, on request. With no
one watching, the server's thread sleeps in epoll and the frame loop runs as without it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TYPE_CHECKING

from aiohttp import web

from edge.config import Config, ConfigError
from edge.http.auth import BasicAuth, read_password
from edge.http.handlers import Handlers
from edge.http.metrics import Metrics
from edge.http.state import JpegCache
from edge.types import FrameResult

if TYPE_CHECKING:
    from edge.runner import LiveView

log = logging.getLogger(__name__)


class HttpServer:
    """Owns the thread, its event loop and the aiohttp runner; ``start`` / ``stop`` once each."""

    def __init__(self, live: LiveView, config: Config) -> None:
        self.config = config.http
        self.live = live
        password = read_password(self.config.password_file) if self.config.password_file else None
        self.auth = BasicAuth(password) if password is not None else None
        self.viewers = 0
        self.metrics = Metrics(live, viewers=lambda: self.viewers)
        self.cache = JpegCache(live, 1.0 / self.config.stream_fps)
        self.closing = threading.Event()
        self.url = ""
        self.port = 0
        self._page = resources.files("edge.http").joinpath("index.html").read_bytes()
        self._handlers = Handlers(self, config.fps, config.camera.stall_timeout_s)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="http-jpeg")
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def page(self) -> bytes:
        return self._page

    def observe(self, result: FrameResult) -> None:
        """Called by the frame loop for every processed frame: histograms only."""
        self.metrics.observe(result)

    async def jpeg(self) -> bytes | None:
        """The annotated JPEG of the newest frame, encoded off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.cache.get)

    def start(self, timeout: float = 10.0) -> str:
        """Listen, or raise HttpError naming the address and why; returns the URL."""
        host, port = self.config.host, self.config.port
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise HttpError(f"http: the server on {host}:{port} did not start within {timeout:g} s")
        if self._error is not None:
            reason = _reason(self._error)
            raise HttpError(f"http: cannot listen on {host}:{port}: {reason} (change http.host / http.port)")
        notes = [] if self.auth is None else ["basic auth, user 'admin'"]
        if host in ("0.0.0.0", "::"):
            notes.append(f"all interfaces: from another device open http://{socket.gethostname()}:{self.port}/")
        log.info("live view on %s%s", self.url, f" ({'; '.join(notes)})" if notes else "")
        if self.auth is None and not _is_loopback(host):
            log.warning(
                "http.host is %s and no http.password_file is set: anyone who can reach this machine "
                "can watch the camera and read the values; set http.password_file or bind to 127.0.0.1",
                host,
            )
        return self.url

    def stop(self, timeout: float = 3.0) -> None:
        """End the streams, close the listener and join the thread (bounded by ``timeout``)."""
        self.closing.set()
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if thread.is_alive():
                log.warning("http server did not stop within %.1f s; leaving it to exit with the process", timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        runner = web.AppRunner(self._make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, self.config.host, self.config.port)
            loop.run_until_complete(site.start())
            self.port = _bound_port(runner.addresses)
            self.url = f"http://{_bracketed(self.config.host)}:{self.port}/"
        except Exception as exc:  # OSError (address in use, bad host) or a bad host name
            self._error = exc
            self._started.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(runner.cleanup())
            loop.close()

    def _make_app(self) -> web.Application:
        middlewares = [self._handlers.not_found_middleware]
        if self.auth is not None:
            middlewares.insert(0, self.auth.middleware)
        app = web.Application(middlewares=middlewares)
        h = self._handlers
        app.router.add_get("/", h.index)
        app.router.add_get("/stream.mjpg", h.stream)
        app.router.add_get("/snapshot.jpg", h.snapshot)
        app.router.add_get("/api/reading", h.reading)
        app.router.add_get("/api/status", h.status)
        app.router.add_get("/healthz", h.healthz)
        app.router.add_get("/metrics", h.metrics)
        return app


class HttpError(ConfigError):
    """The server cannot be started as configured; the message names the address and the fix.

    A ConfigError, so the CLI reports it as one line and exits non-zero, like other bad settings.
    """


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reason(err: BaseException) -> str:
    if isinstance(err, socket.gaierror):  # a host name that does not resolve
        return f"unknown host ({err.strerror})"
    if isinstance(err, OSError) and err.errno:  # asyncio's message repeats the address; the errno says it
        return os.strerror(err.errno).lower()
    return str(err)


def _bound_port(addresses: list[object]) -> int:
    for addr in addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            return int(addr[1])
    return 0


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
