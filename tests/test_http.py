"""The live view over real HTTP against a running `digit-edge run` on the demo source.

One daemon for the module (http on a free port, MQTT off); the page itself is opened in
headless Chromium. Auth, start-up errors and stopping: tests/test_http_service.py.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.http_daemon import Daemon, open_stream, start_daemon, stop_daemon, wait_for, wait_listening

READING_KEYS = {"seq", "ts", "value", "number", "confidence", "numbers", "digits", "latency_ms", "model",
                "clipped"}
STAGES = {"gray", "detect", "normalize", "classify", "read"}


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

