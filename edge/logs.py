"""Logging for a daemon that runs for months: one line per event, to stderr, rate-limited.

Under systemd, stderr goes to the journal, which stamps the time and the unit itself; so
when ``$JOURNAL_STREAM`` says stderr is the journal, each line starts with the kernel-style
``<N>`` priority prefix (the journal turns it into the entry's priority, so
``journalctl -p warning`` works) and carries no timestamp. On a terminal a line carries
the time and the level instead.

A camera that is unplugged or a broker that is down would otherwise log the same error
every frame or every second for hours. ``RateLimitFilter`` lets the first record of each
kind through, drops the repeats for ``interval`` seconds, and puts a
"(N similar suppressed)" count on the next one that gets through.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

DEFAULT_RATE_INTERVAL_S = 60.0
# Libraries that are chatty at DEBUG/INFO; kept at WARNING unless --debug.
_QUIET_LIBRARIES = ("paho", "PIL", "picamera2", "urllib3", "asyncio")
# sd-daemon(3) priority prefixes, understood by journald on stdout/stderr.
_debug_forced = False  # --debug was given: a reloaded log_level does not lower it
_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class RateLimitFilter(logging.Filter):
    """Pass the first record of each kind, then at most one per ``interval`` seconds.

    A "kind" is the logger, the level and the unformatted message (``record.msg``), so
    "camera usb:0 stalled" and "camera usb:1 stalled" logged with ``%s`` count as one kind
    while different messages never hide each other. Records below ``min_level`` always pass,
    and so do those logged with ``extra={"unlimited": True}`` (the answer to a SIGHUP).
    """

    def __init__(
        self,
        interval: float = DEFAULT_RATE_INTERVAL_S,
        min_level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 1000,
    ) -> None:
        super().__init__()
        self.interval = interval
        self.min_level = min_level
        self._clock = clock
        self._max_kinds = max_kinds
        self._lock = threading.Lock()
        # kind -> (time the last record of this kind was let through, suppressed since)
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < self.min_level or self.interval <= 0 or getattr(record, "unlimited", False):
            return True  # unlimited: a one-off event someone caused (a reload), never a flood
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last[0] < self.interval:
                self._seen[key] = (last[0], last[1] + 1)
                return False
            suppressed = last[1] if last is not None else 0
            if len(self._seen) >= self._max_kinds and key not in self._seen:
                self._forget_oldest()
            self._seen[key] = (now, 0)
        if suppressed:
            record.msg = f"{record.getMessage()} ({suppressed} similar suppressed)"
            record.args = None
        return True

    def _forget_oldest(self) -> None:
        oldest = min(self._seen, key=lambda k: self._seen[k][0])
        del self._seen[oldest]


class JournalFormatter(logging.Formatter):
    """``<3>edge.sources: camera usb:0 stalled`` — priority prefix, no timestamp."""

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        prio = _SYSLOG_PRIORITY.get(record.levelno)
        if prio is None:
            prio = 3 if record.levelno > logging.WARNING else 6
        # The journal reads its stream line by line: give a traceback's continuation lines
        # the same priority, indented, so `journalctl -p err` shows the whole of it.
        return f"<{prio}>" + super().format(record).replace("\n", f"\n<{prio}>    ")


def stream_is_journal(stream: TextIO) -> bool:
    """True when ``stream`` is the journal connection systemd gave us (sd_journal_stream_fd)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return st.st_dev == dev and st.st_ino == ino


def setup_logging(
    level: str | int = "INFO",
    debug: bool = False,
    stream: TextIO | None = None,
    rate_interval: float = DEFAULT_RATE_INTERVAL_S,
) -> logging.Handler:
    """Configure the root logger once, at start; return the handler (tests inspect it).

    ``level`` comes from the config's ``log_level``; ``debug`` (the ``--debug`` flag) wins
    over it and also lets the chatty libraries speak. Calling it again replaces the handler
    installed by the previous call (a SIGHUP reload may change the level).
    """
    global _debug_forced
    _debug_forced = debug
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.set_name("digit-edge")
    if stream_is_journal(out):
        handler.setFormatter(JournalFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
        )
    handler.addFilter(RateLimitFilter(rate_interval))
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "digit-edge":
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    resolved = logging.DEBUG if debug else _level_number(level)
    root.setLevel(resolved)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else max(resolved, logging.WARNING))
    logging.captureWarnings(True)
    return handler


def set_level(level: str | int) -> None:
    """Apply a new ``log_level`` (after a SIGHUP reload); ``--debug`` keeps winning."""
    root = logging.getLogger()
    if _debug_forced:
        return
    resolved = _level_number(level)
    root.setLevel(resolved)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(resolved, logging.WARNING))


def _level_number(level: str | int) -> int:
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"log level {level!r}: use DEBUG, INFO, WARNING or ERROR")
    return number
