"""The threaded latest-frame reader: the one home of camera threads and stall recovery.

Every camera and stream (OpenCV USB/URL, picamera2) is a small ``CameraBackend``; this class
wraps any of them. A worker thread reads the backend as fast as it delivers and keeps only the
newest frame, so a slow pipeline never builds a backlog (frames replaced before anyone read
them are counted in ``dropped``).

Stall recovery: the backend's ``read`` waits at most ``poll`` seconds. When no frame has come
for ``camera.stall_timeout_s`` the worker logs it once, closes the backend and opens a new one,
waiting 0.5 s, 1 s, 2 s, ... up to ``camera.reopen_backoff_max_s`` between attempts, until a
frame arrives again. Frames are delivered at once, but the outage only ends once they have
kept coming for ``stall_timeout_s``: a reopened camera that hands over one stale frame and
freezes again is the same outage, so "recovered after" is the whole time without a steady
stream, not the first 5 s of it. Then it logs the recovery and counts it in ``reconnects``.
The start and the end of an outage are logged past the rate limiter (each is one event,
and an outage lasts at least ``stall_timeout_s``), so a second stall within a minute is
not swallowed.

A backend call that ignores its timeout and hangs (a driver stuck in the kernel) cannot be
interrupted from Python. If one has not returned after ``2 x stall_timeout_s + 5`` seconds,
the consumer's next ``read`` abandons that worker thread (it closes its own backend if the call
ever returns) and starts a fresh one, which reopens the camera.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable

from edge.config import CameraConfig
from edge.sources.base import CameraBackend, Image, fit_within
from edge.types import Frame

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
HUNG_GRACE_S = 5.0
IDLE_SLEEP_S = 0.02  # a backend that fails instantly (unplugged) is retried this often
MAX_ABANDONED = 3  # hung threads kept before giving up on starting more
CLOSE_JOIN_S = 3.0
UNLIMITED = {"unlimited": True}  # past edge.logs.RateLimitFilter: the start and end of an outage


class LatestFrameReader:
    """A live ``FrameSource`` around any ``CameraBackend``; see the module docstring."""

    live = True

    def __init__(
        self,
        label: str,
        open_backend: Callable[[], CameraBackend],
        camera: CameraConfig,
        hung_after_s: float | None = None,
    ) -> None:
        self.label = label
        self._open_backend = open_backend
        self._stall_s = camera.stall_timeout_s
        self._backoff_max_s = camera.reopen_backoff_max_s
        self._max_size = (camera.width, camera.height)
        self._poll_s = min(1.0, self._stall_s / 2)
        self._hung_after_s = hung_after_s if hung_after_s is not None else 2 * self._stall_s + HUNG_GRACE_S
        backend = open_backend()  # the first open fails loudly: SourceError to the caller
        self._description = backend.describe()
        self.reconnects = 0
        self.dropped = 0
        self.captured = 0
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._fresh = False
        self._state = "ok"
        self._closed = False
        self._stop = threading.Event()
        self._generation = 0
        self._last_frame_at = self._watch_since = time.monotonic()
        self._outage_since: float | None = None  # the last frame before the current outage
        self._resumed_at: float | None = None  # the first frame after it (recovery not yet confirmed)
        self._false_starts = 0  # frames came back and stopped again, within this outage
        self._busy: tuple[str, float, int] | None = None  # (call, since, generation)
        self._delay = min(BACKOFF_FIRST_S, self._backoff_max_s)
        self._said: set[str] = set()  # messages logged in this outage: repeats go to debug
        self._abandoned: list[threading.Thread] = []
        self._thread = self._start_worker(backend)

    # ---- the consumer's side -------------------------------------------------------------

    @property
    def state(self) -> str:
        with self._cond:
            if self._state == "ok" and time.monotonic() - self._watch_since > self._stall_s:
                return "stalled"  # the worker is still inside a slow read; it will notice
            return self._state

    def read(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while not self._fresh and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            frame = self._latest if self._fresh else None
            self._fresh = False
        self._check_hung()
        if frame is None:
            return None
        image = fit_within(frame.image, *self._max_size)  # a device that ignored the size asked
        return frame if image is frame.image else dataclasses.replace(frame, image=image)

    def describe(self) -> str:
        return self._description

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._closed = True
            self._state = "closed"
            self._cond.notify_all()
        self._thread.join(CLOSE_JOIN_S)
        if self._thread.is_alive():
            log.warning("%s: camera thread did not stop within %.0f s; leaving it", self.label, CLOSE_JOIN_S)

    def _check_hung(self) -> None:
        busy = self._busy
        if busy is None or self._stop.is_set():
            return
        call, since, generation = busy
        stuck_s = time.monotonic() - since
        if stuck_s < self._hung_after_s:
            return
        self._abandoned = [t for t in self._abandoned if t.is_alive()]
        if len(self._abandoned) >= MAX_ABANDONED:
            self._say(logging.ERROR, f"{len(self._abandoned)} camera threads are stuck; restart the service")
            return
        with self._cond:
            if generation != self._generation:
                return
            self._generation += 1
            self._busy = None
            self._state = "reopening"
            if self._outage_since is None:
                self._outage_since = self._last_frame_at
            if self._resumed_at is not None:
                self._resumed_at = None
                self._false_starts += 1
        log.error(
            "%s: the camera's %s() has not returned for %.0f s; abandoning it and opening the "
            "camera again (%d stuck thread(s) so far)",
            self.label, call, stuck_s, len(self._abandoned) + 1,
        )
        self._abandoned.append(self._thread)
        self._thread = self._start_worker(None)

    # ---- the worker's side ---------------------------------------------------------------

    def _start_worker(self, backend: CameraBackend | None) -> threading.Thread:
        thread = threading.Thread(
            target=self._run, args=(backend, self._generation), name=f"source {self.label}", daemon=True
        )
        thread.start()
        return thread

    def _current(self, generation: int) -> bool:
        return generation == self._generation and not self._stop.is_set()

    def _call(self, generation: int, call: str, fn: Callable[[], Image | None]) -> Image | None:
        """Run one backend call, marked busy so a hang is noticed; errors count as no frame."""
        with self._cond:
            if generation == self._generation:
                self._busy = (call, time.monotonic(), generation)
        try:
            return fn()
        except Exception as exc:
            self._say(logging.WARNING, f"{call}() failed: {exc}")
            return None
        finally:
            with self._cond:
                if self._busy is not None and self._busy[2] == generation:
                    self._busy = None

    def _run(self, backend: CameraBackend | None, generation: int) -> None:
        try:
            while self._current(generation):
                if backend is None:
                    backend = self._reopen(generation)
                    continue
                started = time.monotonic()
                image = self._call(generation, "read", functools.partial(backend.read, self._poll_s))
                if not self._current(generation):
                    break
                if image is not None:
                    self._publish(image)
                elif time.monotonic() - self._watch_since >= self._stall_s:
                    self._on_stall()
                    self._call(generation, "close", backend.close)
                    backend = None
                elif time.monotonic() - started < IDLE_SLEEP_S:
                    self._stop.wait(IDLE_SLEEP_S)
        finally:
            if backend is not None:
                try:
                    backend.close()
                except Exception as exc:
                    log.debug("%s: close failed: %s", self.label, exc)

    def _publish(self, image: Image) -> None:
        now = time.monotonic()
        with self._cond:
            frame = Frame(image=image, index=self.captured, ts=time.time())
            self.captured += 1
            if self._fresh:
                self.dropped += 1
            self._latest, self._fresh = frame, True
            outage = false_starts = None
            if self._outage_since is not None:
                if self._resumed_at is None:
                    self._resumed_at = now
                elif now - self._resumed_at >= self._stall_s:  # a steady stream again: confirmed
                    outage, false_starts = self._resumed_at - self._outage_since, self._false_starts
                    self.reconnects += 1
                    self._outage_since = self._resumed_at = None
                    self._false_starts = 0
                    self._delay = min(BACKOFF_FIRST_S, self._backoff_max_s)
                    self._said.clear()
            self._last_frame_at = self._watch_since = now
            self._state = "ok"
            self._cond.notify_all()
        if outage is not None:
            again = f"; it stopped again {false_starts} time(s) before that" if false_starts else ""
            log.warning(
                "%s: camera recovered after %.1f s without a steady stream of frames (reconnect %d%s)",
                self.label, outage, self.reconnects, again, extra=UNLIMITED,
            )

    def _on_stall(self) -> None:
        with self._cond:
            first = self._outage_since is None
            if first:
                self._outage_since = self._last_frame_at
            relapsed = self._resumed_at is not None
            if relapsed:
                self._resumed_at = None
                self._false_starts += 1
            self._state = "stalled"
        if first:
            log.warning(
                "%s: no frame for %.1f s: camera stalled; closing and reopening it "
                "(retrying with backoff up to %g s)",
                self.label, self._stall_s, self._backoff_max_s, extra=UNLIMITED,
            )
        elif relapsed:
            self._say(logging.WARNING, "the reopened camera gave a few frames and stalled again; still reopening")
        else:
            log.debug("%s: reopened camera delivered no frame within %.1f s", self.label, self._stall_s)

    def _reopen(self, generation: int) -> CameraBackend | None:
        with self._cond:
            self._state = "reopening"
        while self._current(generation):
            if self._stop.wait(self._delay) or not self._current(generation):
                return None
            self._delay = min(self._delay * 2, self._backoff_max_s)
            with self._cond:
                self._busy = ("open", time.monotonic(), generation)
            try:
                backend = self._open_backend()
            except Exception as exc:
                self._say(logging.WARNING, f"cannot reopen: {exc}")
                continue
            finally:
                with self._cond:
                    if self._busy is not None and self._busy[2] == generation:
                        self._busy = None
            self._description = backend.describe()
            with self._cond:
                self._watch_since = time.monotonic()  # a full stall timeout to deliver
            self._say(logging.INFO, f"reopened ({self._description}); waiting for frames")
            return backend
        return None

    def _say(self, level: int, message: str) -> None:
        """Log a message once per outage; the same message again (every retry) only at debug."""
        first = message not in self._said
        self._said.add(message)
        log.log(level if first else logging.DEBUG, "%s: %s", self.label, message)
