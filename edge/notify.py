"""Tell systemd how the daemon is doing: the sd_notify(3) protocol, in a few lines.

The protocol is one datagram of ``KEY=value`` lines sent to the unix socket named by
``$NOTIFY_SOCKET`` (a leading ``@`` means the Linux abstract namespace). When the variable
is unset — run from a shell, or by a service manager that does not listen — every call is
a cheap no-op. A notification that cannot be sent is logged and never raised: losing a
STATUS line must not stop the frame loop (a lost WATCHDOG ping will, correctly, get the
service restarted).

The unit runs with ``Type=notify`` and ``WatchdogSec=``: the runner sends ``ready()`` once
the model is loaded and the first frame has arrived, ``status(...)`` whenever it changes
what it is doing, ``watchdog()`` from the frame loop (throttled here), and ``stopping()``
on shutdown. If the frame loop hangs, the pings stop and systemd restarts the service.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)

# The runner may call watchdog() every frame; a ping goes out at most this often, as a
# fraction of the watchdog interval (systemd recommends pinging at half the interval; a
# third leaves room for one slow frame on top).
PING_FRACTION = 1.0 / 3.0


class Notifier:
    """One connection to the service manager, created once by the runner."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self._watchdog_s = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._last_ping = float("-inf")
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when a service manager is listening (``$NOTIFY_SOCKET`` is set)."""
        return self._address is not None

    def watchdog_interval(self) -> float | None:
        """Seconds within which systemd expects a ping (``WatchdogSec=``), or None if off."""
        return self._watchdog_s

    def notify(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; True if sent, False if off or failed."""
        if self._address is None:
            return False
        payload = "\n".join(lines).encode("utf-8", "replace")
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto(payload, self._address)
            except OSError as exc:
                if not self._warned:
                    log.warning("cannot notify the service manager at %s: %s", _shown(self._address), exc)
                    self._warned = True
                return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """The model is loaded and frames arrive: systemd marks the unit started."""
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """A short line shown by ``systemctl status digit-edge``."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self, force: bool = False) -> bool:
        """Ping the watchdog; cheap to call every frame, sends at most every interval/3."""
        if self._watchdog_s is None or self._address is None:
            return False
        now = time.monotonic()
        if not force and now - self._last_ping < self._watchdog_s * PING_FRACTION:
            return False
        self._last_ping = now
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def reloading(self) -> bool:
        """Before re-reading the config on SIGHUP; send ``ready()`` when done.

        MONOTONIC_USEC is required by ``Type=notify-reload`` (systemd ≥ 253) and ignored by
        older versions, so the same message suits both.
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    # vsock: addresses (systemd ≥ 254, for VMs) are not for a Pi daemon.
    log.warning("NOTIFY_SOCKET=%r is not a unix socket path; not notifying systemd", value)
    return None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # the watchdog belongs to another process (our parent, say)
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number; watchdog pings off", usec)
        return None
    return value / 1_000_000 if value > 0 else None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shown(address: str) -> str:
    return "@" + address[1:] if address.startswith("\0") else address
