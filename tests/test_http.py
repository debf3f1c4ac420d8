"""The live view over real HTTP against a running `digit-edge run` on the demo source.

One daemon per module (http on a free port, MQTT off), another with a password file; the
page itself is opened in headless Chromium. The model is the shipped one; set
DIGIT_EDGE_TEST_MODEL to use another (e.g. in a checkout where models/ is not built yet).
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

DIGIT_EDGE = str(Path(sys.executable).with_name("digit-edge"))
READING_KEYS = {"seq", "ts", "value", "number", "confidence", "numbers", "digits", "latency_ms", "model"}
STAGES = {"gray", "detect", "normalize", "classify", "read"}
DEADLINE_S = 90.0  # a generous bound for start-up on a loaded machine; not a speed check
PASSWORD = "correct horse battery staple"


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    host: str = ""
    port: int = 0

    def request(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def readings(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stdout.read_text().splitlines() if line.strip()]


def wait_for(condition: Callable[[], bool], what: str, daemon: Daemon | None = None) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return
        if daemon is not None and daemon.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen; daemon stderr:\n{daemon.log() if daemon else ''}")


def write_config(tmp: Path, http: str) -> Path:
    model = os.environ.get("DIGIT_EDGE_TEST_MODEL")
    cfg = tmp / "config.yaml"
    cfg.write_text(
        f"source: demo\nfps: 10\nstate_dir: {tmp / 'state'}\nmqtt: {{enabled: false}}\n"
        f"{f'model: {model}' if model else ''}\nhttp: {http}\n"
    )
    return cfg


def start_daemon(tmp: Path, http: str, *args: str) -> Daemon:
    cfg = write_config(tmp, http)
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


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = wait_listening(start_daemon(tmp_path_factory.mktemp("http"), "{enabled: true, port: 0}"))
    try:
        wait_for(lambda: d.request("/api/reading")[0] == 200, "a first stable reading", d)
        yield d
    finally:
        stop_daemon(d)


def test_page_is_served_without_external_assets(daemon: Daemon) -> None:
    status, headers, body = daemon.request("/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    page = body.decode()
    assert 'id="value"' in page and 'id="video"' in page and 'name="viewport"' in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # no CDN, no other host


def test_snapshot_is_the_annotated_frame_as_jpeg(daemon: Daemon) -> None:
    status, headers, body = daemon.request("/snapshot.jpg")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (480, 640, 3)
    b, g, r = (image[:, :, i].astype(int) for i in range(3))
    assert ((g - r > 60) & (g - b > 60)).sum() > 50  # the green boxes of digits read with confidence


def test_reading_is_the_same_object_as_on_the_console(daemon: Daemon) -> None:
    status, headers, body = daemon.request("/api/reading")
    assert status == 200 and headers["content-type"].startswith("application/json")
    reading = json.loads(body)
    assert set(reading) == READING_KEYS
    wait_for(lambda: any(r["seq"] == reading["seq"] for r in daemon.readings()), "the reading on stdout", daemon)
    assert reading in daemon.readings()


def test_status_tells_source_broker_and_recent_readings(daemon: Daemon) -> None:
    status, _, body = daemon.request("/api/status")
    assert status == 200
    s = json.loads(body)
    assert s["health"] == {"ok": True, "reason": "ok"}
    assert s["source"]["state"] == "ok" and s["source"]["spec"].startswith("demo")
    assert s["mqtt"] == {"enabled": False}
    assert s["frames"] > 0 and s["recent"] and s["recent"][0]["seq"] >= s["recent"][-1]["seq"]
    assert s["frame"]["width"] == 640 and s["model"]["name"]


def test_healthz_is_ok_while_frames_flow(daemon: Daemon) -> None:
    assert daemon.request("/healthz")[::2] == (200, b"ok\n")


def metric_families(daemon: Daemon) -> dict[str, Any]:
    status, headers, body = daemon.request("/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def test_metrics_count_frames_and_time_each_stage(daemon: Daemon) -> None:
    families = metric_families(daemon)
    frames = families["digit_edge_frames"]
    assert frames.type == "counter" and frames.samples[0].value > 0
    assert families["digit_edge_readings"].samples[0].value >= 1
    stages = families["digit_edge_stage_seconds"]
    assert stages.type == "histogram"
    counts = {s.labels["stage"]: s.value for s in stages.samples if s.name.endswith("_count")}
    assert set(counts) == STAGES and min(counts.values()) > 0
    assert families["digit_edge_frame_seconds"].type == "histogram"
    for gauge in ("digit_edge_fps", "digit_edge_source_up", "digit_edge_http_viewers"):
        assert families[gauge].type == "gauge"
    assert "digit_edge_source_reconnects" in families and "digit_edge_spool_depth" not in families  # MQTT off


def test_unknown_path_is_404_and_the_daemon_carries_on(daemon: Daemon) -> None:
    status, _, body = daemon.request("/nope/../../etc/passwd")
    assert status == 404 and b"/snapshot.jpg" in body
    assert daemon.request("/api/reading", {"Authorization": "Basic !!!"})[0] == 200  # no auth configured
    before = metric_families(daemon)["digit_edge_frames"].samples[0].value
    wait_for(lambda: metric_families(daemon)["digit_edge_frames"].samples[0].value > before,
             "more frames", daemon)


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


def test_mjpeg_stream_survives_viewers_that_vanish(daemon: Daemon) -> None:
    sock, data = open_stream(daemon)
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"multipart/x-mixed-replace; boundary=frame" in head
    part_head, _, part = rest.split(b"--frame\r\n")[1].partition(b"\r\n\r\n")
    assert b"Content-Type: image/jpeg" in part_head
    frame = cv2.imdecode(np.frombuffer(part[:-2], np.uint8), cv2.IMREAD_COLOR)
    assert frame is not None and frame.shape == (480, 640, 3)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # abrupt: a TCP reset mid-stream
    polite, _ = open_stream(daemon)
    polite.close()  # a plain close between two parts

    def viewers() -> float:
        return float(metric_families(daemon)["digit_edge_http_viewers"].samples[0].value)

    wait_for(lambda: viewers() == 0, "both streams to end", daemon)
    assert daemon.request("/healthz")[0] == 200
    assert daemon.proc.poll() is None
    log = daemon.log()
    assert "Traceback" not in log and "ERROR" not in log, log


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("headless Chromium is needed: apt-get install chromium (scripts/dev.sh test does)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={tmp}", "--virtual-time-budget=5000"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=180)


def test_page_in_headless_chromium_shows_the_picture_and_the_reading(daemon: Daemon, tmp_path: Path) -> None:
    url = f"http://{daemon.host}:{daemon.port}/"
    shot = tmp_path / "page.png"
    done = chromium(f"--screenshot={shot}", "--window-size=412,900", url, tmp=tmp_path / "profile1")
    assert shot.exists(), done.stderr[-2000:]
    image = cv2.imread(str(shot), cv2.IMREAD_GRAYSCALE)
    assert image is not None and image.shape == (900, 412)
    video = image[60:340, 20:392]  # where the picture sits on a phone-sized page
    assert (video > 150).mean() > 0.5, "no bright paper in the video area"  # the page itself is dark
    assert video.std() > 15, "the video area is flat"
    dom = chromium("--dump-dom", url, tmp=tmp_path / "profile2").stdout
    value = re.search(r'<div id="value"[^>]*>([^<]*)</div>', dom)
    assert value is not None, dom[:2000]
    assert value.group(1) in {r["value"] for r in daemon.readings()}
    assert re.search(r'<div id="meta">confidence \d+% · #\d+', dom), dom[:2000]
    assert re.search(r'<img id="video"[^>]* src="blob:', dom), "the picture was never loaded"
    assert re.search(r'<b id="fps">\d', dom)


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
