"""The live view, health and metrics server: aiohttp on its own event loop in a daemon thread.

The frame loop never waits for it. The loop only stores references in LiveView (and feeds
the latency histograms); everything a viewer sees is computed here, on request. With no
one watching, the server's thread sleeps in epoll and the frame loop runs as without it.

Slow or hostile clients cannot starve it (aiohttp has no header timeout of its own): a
connection must start a request within ``REQUEST_TIMEOUT_S`` of opening (or of its last
response), idle keep-alive connections close after ``KEEPALIVE_S``, an MJPEG part that
cannot be written within ``handlers.WRITE_TIMEOUT_S`` ends that stream, and past
``MAX_CONNECTIONS`` the oldest connection that is not in a request is closed to make room
(so ``/healthz`` still answers under a slowloris), else the new one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from edge.config import Config, ConfigError
from edge.http.auth import BasicAuth, read_password
from edge.http.handlers import Handlers
from edge.http.metrics import Metrics
from edge.http.state import JpegCache
from edge.types import FrameResult

if TYPE_CHECKING:
    from edge.live import LiveView

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
REQUEST_TIMEOUT_S = 10.0
KEEPALIVE_S = 15.0


class ConnectionGuard:
    """Tracks the server's connections: which are inside a request, and a deadline for the rest."""

    def __init__(self, limit: int = MAX_CONNECTIONS, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.limit = limit
        self.timeout_s = timeout_s
        self.closed = 0  # connections closed for being slow or for room
        self._idle: dict[asyncio.BaseTransport, asyncio.TimerHandle] = {}  # opened, not in a request
        self._busy: dict[asyncio.BaseTransport, int] = {}  # in a request (count: pipelining)

    def opened(self, transport: asyncio.BaseTransport) -> bool:
        """A new connection; False if it must be refused (full of connections inside requests)."""
        if len(self._idle) + len(self._busy) >= self.limit:
            if not self._idle:
                self.closed += 1
                return False
            oldest = next(iter(self._idle))  # dicts keep insertion order: the longest waiting
            self._drop(oldest)
        self._wait(transport)
        return True

    def lost(self, transport: asyncio.BaseTransport) -> None:
        handle = self._idle.pop(transport, None)
        if handle is not None:
            handle.cancel()
        self._busy.pop(transport, None)

    def begin(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is None:
            return
        handle = self._idle.pop(transport, None)
        if handle is not None:
            handle.cancel()
        self._busy[transport] = self._busy.get(transport, 0) + 1

    def end(self, transport: asyncio.BaseTransport | None) -> None:
        if transport is None or transport not in self._busy:
            return
        self._busy[transport] -= 1
        if self._busy[transport] <= 0:
            del self._busy[transport]
            if not transport.is_closing():
                self._wait(transport)

    def _wait(self, transport: asyncio.BaseTransport) -> None:
        loop = asyncio.get_running_loop()
        self._idle[transport] = loop.call_later(self.timeout_s, self._drop, transport)

    def _drop(self, transport: asyncio.BaseTransport) -> None:
        handle = self._idle.pop(transport, None)
        if handle is not None:
            handle.cancel()
        self.closed += 1
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        else:
            transport.close()


class _GuardedProtocol(asyncio.Protocol):
    """Passes everything to aiohttp's protocol, telling the guard when the connection comes and goes."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._inner.connection_made(transport)
        if not self._guard.opened(transport) and isinstance(transport, asyncio.Transport):
            transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.lost(self._transport)
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class _GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a ConnectionGuard."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, guard: ConnectionGuard) -> None:
        super().__init__(runner)
        self._host, self._port, self._guard = host, port, guard

    @property
    def name(self) -> str:
        return f"http://{_bracketed(self._host)}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        guard = self._guard
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _GuardedProtocol(server(), guard), self._host, self._port, reuse_address=True)


class HttpServer:
    """Owns the thread, its event loop and the aiohttp runner; ``start`` / ``stop`` once each."""

    def __init__(self, live: LiveView, config: Config) -> None:
        self.config = config.http
        self.live = live
        password = read_password(self.config.password_file) if self.config.password_file else None
        self.auth = BasicAuth(password) if password is not None else None
        self.viewers = 0
        self.loopback = _is_loopback(self.config.host)  # this machine only: the editor needs no password
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
        self.guard = ConnectionGuard()

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
            with contextlib.suppress(RuntimeError):  # "closed": a failed start closes its loop by itself
                loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            if thread.is_alive():
                log.warning("http server did not stop within %.1f s; leaving it to exit with the process", timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        runner = web.AppRunner(self._make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0,
                               keepalive_timeout=KEEPALIVE_S)
        try:
            loop.run_until_complete(runner.setup())
            site = _GuardedSite(runner, self.config.host, self.config.port, self.guard)
            loop.run_until_complete(site.start())
            self.port = _bound_port(runner.addresses)
            self.url = f"http://{_bracketed(self.config.host)}:{self.port}/"
        except Exception as exc:  # OSError (address in use, bad host) or a bad host name
            loop.run_until_complete(runner.cleanup())
            loop.close()
            self._error = exc  # after the clean-up: start() raises once the port is free again
            self._started.set()
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
        middlewares.insert(0, self._in_request)  # first: a request refused by auth is a request too
        app = web.Application(middlewares=middlewares)
        h = self._handlers
        app.router.add_get("/", h.index)
        app.router.add_get("/stream.mjpg", h.stream)
        app.router.add_get("/snapshot.jpg", h.snapshot)
        app.router.add_get("/api/reading", h.reading)
        app.router.add_get("/api/status", h.status)
        app.router.add_get("/api/history", h.history)
        app.router.add_post("/api/fields", h.save_field)
        app.router.add_get("/healthz", h.healthz)
        app.router.add_get("/metrics", h.metrics)
        return app

    @web.middleware
    async def _in_request(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """While a handler runs its connection is not 'slow'; after it, the request timer starts again."""
        transport: Any = request.transport
        self.guard.begin(transport)
        try:
            return await handler(request)
        finally:
            self.guard.end(transport)


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
