"""The live view as a service: basic auth, the LAN warning, start-up errors, stopping with viewers."""

from __future__ import annotations

import base64
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.http_daemon import DEADLINE_S, Daemon, open_stream, start_daemon, stop_daemon, wait_for, wait_listening

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
