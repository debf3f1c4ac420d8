"""The live view as a service: basic auth, the LAN warning, start-up errors, stopping with viewers."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.bench.broker import Broker
from tests.http_daemon import DEADLINE_S, Daemon, get, open_stream, start_daemon, stop_daemon, wait_for, wait_listening
from tests.imaging import draw_number, paper, save
from tests.source_helpers import PausableCamera

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    tmp = tmp_path_factory.mktemp("http-auth")
    (tmp / "password").write_text(PASSWORD + "\n")
    d = wait_listening(start_daemon(tmp, f"{{enabled: true, port: 0, password_file: {tmp / 'password'}}}"))
    try:
        wait_for(lambda: d.request("/healthz")[0] == 200, "frames", d)
        yield d
    finally:
        assert PASSWORD not in stop_daemon(d)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("headers", [
    {},
    basic("admin", "wrong"),
    basic("root", PASSWORD),
    basic("admin", PASSWORD + "x"),
    {"Authorization": "Bearer " + PASSWORD},
    {"Authorization": "Basic not-base64!"},
])
def test_bad_auth_is_401_with_a_challenge(locked: Daemon, headers: dict[str, str]) -> None:
    for path in ("/", "/snapshot.jpg", "/api/reading", "/metrics", "/stream.mjpg", "/nope"):
        status, got, _ = locked.request(path, headers)
        assert status == 401 and got["www-authenticate"].startswith('Basic realm="digit-edge"'), path


def test_right_password_opens_everything_and_healthz_stays_open(locked: Daemon) -> None:
    ok = basic("admin", PASSWORD)
    assert locked.request("/", ok)[0] == 200
    assert locked.request("/api/status", ok)[0] == 200
    assert locked.request("/metrics", ok)[0] == 200
    assert locked.request("/healthz")[:1] == (200,)
    assert "basic auth" in locked.log()


def test_open_to_the_lan_without_password_warns(tmp_path: Path) -> None:
    d = start_daemon(tmp_path, "{enabled: true, host: 0.0.0.0, port: 0}", "--max-frames", "1")
    d.proc.wait(timeout=DEADLINE_S)
    log = stop_daemon(d)
    assert re.search(r"WARNING.*http.host is 0\.0\.0\.0 and no http.password_file is set: anyone", log), log


def test_port_in_use_and_missing_password_file_are_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        d = start_daemon(tmp_path, f"{{enabled: true, port: {port}}}")
        d.proc.wait(timeout=DEADLINE_S)
    assert d.proc.returncode == 2
    assert f"digit-edge: error: http: cannot listen on 127.0.0.1:{port}: address already in use" in d.log()
    missing = tmp_path / "no-such-password"
    d = start_daemon(tmp_path, f"{{enabled: true, port: 0, password_file: {missing}}}")
    d.proc.wait(timeout=DEADLINE_S)
    assert d.proc.returncode == 2
    assert d.log().strip().splitlines()[-1] == (
        f"digit-edge: error: http -> password_file: {missing}: file not found"
    )
    assert "Traceback" not in d.log()



def test_sigterm_while_a_viewer_streams_stops_cleanly(tmp_path: Path) -> None:
    d = wait_listening(start_daemon(tmp_path, "{enabled: true, port: 0}"))
    try:
        sock, _ = open_stream(d)
    except BaseException:
        stop_daemon(d)
        raise
    with sock:
        log = stop_daemon(d)  # exit 0, no traceback, while the stream is still open
        sock.settimeout(30)
        while sock.recv(65536):  # the server ends the stream
            pass
    assert "stopped after" in log


def test_healthz_turns_503_with_the_reason_while_the_camera_stalls(tmp_path: Path) -> None:
    canvas = paper(640, 480, seed=3)
    draw_number(canvas, "42", 200, 180, 90, seed=4)
    camera = PausableCamera(save(tmp_path / "frame.jpg", canvas).read_bytes())
    d = start_daemon(tmp_path, "{enabled: true, port: 0}", "--source", camera.url,
                     extra="camera: {stall_timeout_s: 1, reopen_backoff_max_s: 1}")
    try:
        wait_listening(d)
        wait_for(lambda: d.request("/healthz")[0] == 200, "frames from the camera", d)
        camera.flowing.clear()
        wait_for(lambda: d.request("/healthz")[0] == 503, "/healthz to say 503", d)
        body = d.request("/healthz")[2].decode()
        # /healthz is open without the password: it says why, but not the camera's URL
        assert re.fullmatch(r"no frame processed for \d+\.\d s \(limit 1\.0 s\) from the source"
                            r" \((stalled|reopening|ok)\)\n", body), body
        status = json.loads(d.request("/api/status")[2])
        assert "cam.mjpg" in status["health"]["reason"]  # the status page, behind the password if set, does
        assert d.request("/snapshot.jpg")[0] == 200  # the last frame is still there to look at
        # /healthz says 503 once no frame was processed for 1 s, which can be before the source
        # itself has declared the stall: resume only once it has closed the stalled connection,
        # so the frames come back over a new one (a reconnect), not over the old one.
        wait_for(lambda: "camera stalled; closing and reopening it" in d.log(), "the source to declare the stall", d)
        camera.flowing.set()
        wait_for(lambda: d.request("/healthz")[0] == 200, "/healthz to recover", d)

        def reconnects() -> str:
            metrics = d.request("/metrics")[2].decode()
            found = re.search(r"^digit_edge_source_reconnects_total (\S+)$", metrics, re.M)
            return found.group(1) if found else metrics

        # the outage ends (and is counted) once frames have kept coming for stall_timeout_s
        wait_for(lambda: re.fullmatch(r"[1-9][0-9.]*", reconnects()) is not None, "a reconnect in /metrics", d)
    finally:
        stop_daemon(d)
        camera.close()


def test_broker_state_and_spool_show_on_status_and_metrics(tmp_path: Path, mqtt_broker: Broker,
                                                           topic_prefix: str) -> None:
    mqtt = (f"mqtt: {{enabled: true, host: {mqtt_broker.host}, port: {mqtt_broker.port}, "
            f"topic_prefix: {topic_prefix}, device_id: cam, homeassistant: {{enabled: false}}}}")
    d = start_daemon(tmp_path, "{enabled: true, port: 0}", mqtt=mqtt)
    try:
        wait_listening(d)

        def broker(connected: bool) -> bool:
            s = json.loads(d.request("/api/status")[2])
            return bool(s["mqtt"]["enabled"] and s["mqtt"]["connected"] is connected)

        wait_for(lambda: broker(True), "the MQTT connection on /api/status", d)
        metrics = d.request("/metrics")[2].decode()
        assert re.search(r"^digit_edge_mqtt_connected 1\.0$", metrics, re.M), metrics
        assert re.search(r"^digit_edge_spool_depth \d", metrics, re.M), metrics
        mqtt_broker.stop()
        wait_for(lambda: broker(False), "the broker to show as offline", d)
        status = json.loads(d.request("/api/status")[2])["mqtt"]
        assert status["state"].startswith("disconnected") and status["spool_depth"] >= 0
        assert d.request("/healthz")[0] == 200  # a broker outage does not make the camera unhealthy
    finally:
        stop_daemon(d)


def test_before_the_first_frame_each_endpoint_says_what_it_waits_for() -> None:
    from edge.config import Config
    from edge.http import HttpServer
    from edge.live import LiveView

    server = HttpServer(LiveView(), Config.model_validate({"http": {"enabled": True, "port": 0}}))
    server.start()
    try:
        assert get("127.0.0.1", server.port, "/healthz")[::2] == (503, b"model not loaded\n")
        status, _, body = get("127.0.0.1", server.port, "/snapshot.jpg")
        assert (status, body) == (503, b"503: no frame yet: the source is not open yet\n")
        status, _, body = get("127.0.0.1", server.port, "/api/reading")
        assert status == 404 and json.loads(body) == {"error": "no stable reading yet",
                                                      "waiting_for": "the source is not open yet"}
        status, _, body = get("127.0.0.1", server.port, "/api/status")
        assert status == 200 and json.loads(body)["frame"] is None
        assert get("127.0.0.1", server.port, "/metrics")[0] == 200
    finally:
        server.stop()


def test_aiohttp_is_loaded_only_when_the_live_view_is_on() -> None:
    code = ("import sys, edge.cli, edge.runner, edge.config; "
            "print(sorted(m for m in ('aiohttp', 'prometheus_client', 'edge.http') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_slowloris_connections_are_closed_and_healthz_still_answers(tmp_path: Path) -> None:
    """200 clients that send a header byte every second and never finish: the live view goes on."""
    d = wait_listening(start_daemon(tmp_path, "{enabled: true, port: 0}"))
    slow: list[socket.socket] = []
    try:
        wait_for(lambda: d.request("/healthz")[0] == 200, "frames", d)
        for _ in range(200):
            sock = socket.create_connection((d.host, d.port), timeout=30)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        for _ in range(3):  # a trickle, as slowloris sends to keep each one open
            for sock in slow:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X")
        assert d.request("/healthz")[0] == 200  # a new client gets an answer despite the 200
        closed = 0
        for sock in slow:  # every slow one is closed by the server: EOF or reset
            sock.settimeout(DEADLINE_S)
            try:
                closed += sock.recv(1024) == b""
            except OSError:
                closed += 1
        assert closed == len(slow)
    finally:
        for sock in slow:
            sock.close()
        stop_daemon(d)


def test_a_failed_start_stops_cleanly_however_late_its_loop_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port in use raises HttpError; stop() right after must not find the loop just closed.

    The server thread closes its own loop after a failed start; on a loaded machine the daemon's
    clean-up could call stop() between that close and the thread's end, and the RuntimeError
    ("Event loop is closed") replaced the one-line error with a traceback and exit 1. A slow
    close makes that window wide.
    """
    import asyncio
    import time

    from edge.config import Config
    from edge.http import HttpServer
    from edge.http.server import HttpError
    from edge.live import LiveView

    close = asyncio.BaseEventLoop.close

    def slow_close(loop: asyncio.BaseEventLoop) -> None:
        close(loop)
        if threading.current_thread().name == "http":
            time.sleep(0.5)

    monkeypatch.setattr(asyncio.BaseEventLoop, "close", slow_close)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = HttpServer(LiveView(), Config.model_validate({"http": {"enabled": True, "port": port}}))
        with pytest.raises(HttpError, match="address already in use"):
            server.start()
        while server._loop is not None and not server._loop.is_closed():
            time.sleep(0.01)  # the old order raised before the clean-up: reach the window it left
        server.stop()
