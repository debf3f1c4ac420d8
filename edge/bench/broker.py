"""A real Mosquitto for tests and benchmarks: own config, data dir and free loopback port.

It lives in the package (not in tests/) because ``digit-edge bench --faults`` and
``python -m edge.bench.mqtt_outage`` start one too; the tests import it from here.

``Broker`` writes a mosquitto.conf into its directory (persistence on, so persistent
sessions and their queued QoS 1 messages survive ``restart()``), starts the ``mosquitto``
binary (``$MOSQUITTO``, else the one on ``PATH``, else ``/usr/sbin/mosquitto``, where
Debian puts it outside a user's ``PATH``) and waits until it accepts connections. Optional: a password file
made with ``mosquitto_passwd`` (anonymous access off), and a TLS listener with a CA and a
server certificate made here with the ``openssl`` CLI. ``stop()``/``start()`` keep the
port and the data, like a broker restarted by its service manager.

``Subscriber`` is a plain paho client that records what arrives, for assertions.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.types import Box, Digit, Number, Reading

HOST = "127.0.0.1"


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def mosquitto_path() -> str | None:
    """The mosquitto binary: ``$MOSQUITTO``, else ``mosquitto`` on ``PATH``, else Debian's
    ``/usr/sbin/mosquitto``; None if none of them is a file."""
    wanted = os.environ.get("MOSQUITTO")
    if wanted:
        return wanted if Path(wanted).is_file() else None
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").is_file() else None


def require_mosquitto() -> str:
    """The mosquitto binary's path, or BrokerError saying how to install it."""
    path = mosquitto_path()
    if path is None:
        where = f"$MOSQUITTO={os.environ['MOSQUITTO']}" if os.environ.get("MOSQUITTO") else \
            "mosquitto (not on PATH, nor /usr/sbin/mosquitto)"
        raise BrokerError(
            f"{where} not found: this needs a real Mosquitto broker. "
            "Install it with `apt-get install -y mosquitto mosquitto-clients` "
            "(the project's test command does this), or set $MOSQUITTO to its path."
        )
    return path


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def make_tls_files(directory: Path, name: str = "test") -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1/localhost, via the openssl CLI."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / f"{name}-ca.key", directory / f"{name}-ca.crt"
    key, csr = directory / f"{name}-server.key", directory / f"{name}-server.csr"
    cert = directory / f"{name}-server.crt"
    ext = directory / f"{name}-san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "2", "-subj", f"/CN={name} test CA")
    _openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
             "-out", cert, "-days", "2", "-extfile", ext)
    return TlsFiles(ca_cert, ca_key, cert, key)


def _openssl(*args: object) -> None:
    cmd = ["openssl", *(str(a) for a in args)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BrokerError(f"{' '.join(cmd)} failed: {done.stderr.strip()}")


class Broker:
    def __init__(self, directory: Path, *, users: dict[str, str] | None = None,
                 tls: TlsFiles | None = None) -> None:
        self.binary = require_mosquitto()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "data").mkdir(exist_ok=True)
        self.host = HOST
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port() if tls else None
        self.users = users
        self.log_path = self.dir / "mosquitto.log"
        self.conf_path = self.dir / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        lines = [
            f"persistence true\npersistence_location {self.dir / 'data'}/",
            f"log_dest file {self.log_path}",
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information",
            "connection_messages true",
            "max_queued_messages 100000",
            "per_listener_settings false",
        ]
        if os.geteuid() == 0:
            lines.append("user root")  # else mosquitto drops to user `mosquitto`, who cannot write here
        if self.users is not None:
            pw = self.dir / "passwd"
            pw.unlink(missing_ok=True)
            for i, (user, password) in enumerate(self.users.items()):
                flags = ["-c"] if i == 0 else []
                subprocess.run(["mosquitto_passwd", *flags, "-b", str(pw), user, password], check=True,
                               capture_output=True)
            lines += ["allow_anonymous false", f"password_file {pw}"]
        else:
            lines.append("allow_anonymous true")
        lines.append(f"listener {self.port} {HOST}")
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} {HOST}",
                f"cafile {self.tls.ca_cert}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
            ]
        self.conf_path.write_text("\n".join(lines) + "\n")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self._proc = subprocess.Popen([self.binary, "-c", str(self.conf_path)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise BrokerError(f"mosquitto exited with {self._proc.returncode}: {err.strip()}\n"
                                  f"{self.log_text()[-2000:]}")
            if self._accepts(self.port) and (self.tls_port is None or self._accepts(self.tls_port)):
                return
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not accept connections on {HOST}:{self.port} within {timeout}s")

    @staticmethod
    def _accepts(port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its persistent sessions), then wait; SIGKILL if stuck."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Subscriber:
    """Records every message on ``topics``; a persistent session (QoS 1) when ``persistent``."""

    def __init__(self, broker: Broker, topics: list[str], *, persistent: bool = False,
                 client_id: str | None = None) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._cond = threading.Condition()
        self._topics = topics
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"test-sub-{uuid.uuid4().hex[:8]}",
                                  clean_session=not persistent)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async(broker.host, broker.port, keepalive=10)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise BrokerError(f"test subscriber could not subscribe to {topics} on {broker.host}:{broker.port}")

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        client.subscribe([(t, 1) for t in self._topics])

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def on(self, topic: str) -> list[mqtt.MQTTMessage]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[mqtt.MQTTMessage]], bool], timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def sample_reading(seq: int, value: str | None = "4107", confidence: float = 0.97) -> Reading:
    """A reading shaped like the pipeline's (digits and a number with boxes)."""
    digits = tuple(Digit(int(c), 0.99, Box(10 + 30 * i, 20, 25, 40)) for i, c in enumerate(value or ""))
    numbers = (Number(value, confidence, Box.union_all([d.box for d in digits]), digits),) if value else ()
    return Reading(seq=seq, ts=time.time(), value=value, confidence=confidence if value else 0.0,
                   numbers=numbers, digits=digits, latency_ms=7.4, model="digits_mlp_int8")

