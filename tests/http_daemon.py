"""A `digit-edge run` subprocess with the live view on a free port, for the HTTP tests."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.daemon import DIGIT_EDGE, write_config

DEADLINE_S = 90.0  # a generous bound for start-up on a loaded machine; not a speed check


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    host: str = ""
    port: int = 0

    def request(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return get(self.host, self.port, path, headers)

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def readings(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line.strip()]


def get(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body) of one GET."""
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], what: str, daemon: Daemon | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon is not None and daemon.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen; daemon stderr:\n{daemon.log() if daemon else ''}")


def start_daemon(tmp: Path, http: str, *args: str, extra: str = "", mqtt: str = "mqtt: {enabled: false}") -> Daemon:
    cfg = write_config(tmp / "config.yaml", f"http: {http}\n{extra}", source="demo", fps=10,
                       state_dir=tmp / "state", mqtt=mqtt)
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([DIGIT_EDGE, "run", "--config", str(cfg), "--output", "json", *args],
                                stdout=o, stderr=e)
    return Daemon(proc, out, err)


def wait_listening(d: Daemon) -> Daemon:
    found: list[str] = []

    def listening() -> bool:
        found[:] = re.findall(r"live view on (http://\S+/)", d.log())
        return bool(found)

    wait_for(listening, "the 'live view on URL' log line", d)
    parts = urlsplit(found[0])
    assert parts.hostname and parts.port
    d.host, d.port = parts.hostname, parts.port
    return d


def stop_daemon(d: Daemon) -> str:
    if d.proc.poll() is None:
        d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(timeout=30)
    log = d.log()
    assert d.proc.returncode == 0, log
    assert "Traceback" not in log and "Error handling request" not in log, log
    return log


def open_stream(daemon: Daemon) -> tuple[socket.socket, bytes]:
    """A raw MJPEG client that reads two whole parts."""
    sock = socket.create_connection((daemon.host, daemon.port), timeout=30)
    sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: {daemon.host}\r\n\r\n".encode())
    data = b""
    while data.count(b"--frame\r\n") < 3:
        chunk = sock.recv(65536)
        assert chunk, data[:300]
        data += chunk
    return sock, data
