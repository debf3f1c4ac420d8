"""A slow link to the broker (10 KB/s, through a throttling TCP proxy on loopback): memory stays
bounded, stale snapshots are dropped, readings get through in order."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from edge.bench.broker import HOST, Broker, Subscriber
from edge.bench.proxy import ThrottlingProxy
from tests.daemon import DaemonProcess, write_config
from tests.test_mqtt_daemon import demo_frames


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_10_kb_s_link_keeps_memory_bounded_and_readings_in_order(
    mqtt_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    proxy = ThrottlingProxy(mqtt_broker.port, rate=10_000)
    p = f"{topic_prefix}/dev"
    sub = Subscriber(mqtt_broker, [f"{p}/reading", f"{p}/snapshot"])  # straight to the broker: fast
    cfg = write_config(
        tmp_path / "c.yaml", state_dir=tmp_path / "state", fps=4,
        mqtt=f"mqtt:\n  host: {HOST}\n  port: {proxy.port}\n  topic_prefix: {topic_prefix}\n"
        "  device_id: dev\n  keepalive_s: 60\n  homeassistant: {enabled: false}\n",
    )
    daemon = DaemonProcess(cfg, "--source", f"dir:{demo_frames(tmp_path / 'img', 150)}")  # 37 s of readings
    samples: list[float] = []
    try:
        daemon.wait_readings(8)  # past start-up: the model, the first snapshots
        for _ in range(25):  # 4 readings/s, each with a ~12 KB snapshot: 5x what the link carries
            samples.append(rss_mb(daemon.proc.pid))
            time.sleep(1.0)
            if daemon.proc.poll() is not None:
                break
        checked_at = time.time()
        got_then = {int(json.loads(m.payload)["seq"]) for m in sub.on(f"{p}/reading")}
        code = daemon.wait(120)
    finally:
        daemon.kill()
        proxy.close()
    err = daemon.stderr()
    assert code == 0, err
    assert len(samples) >= 10, err
    growth = max(samples) - samples[0]
    assert growth < 15, (samples, err)  # without a bound paho piles up every snapshot: ~300 KB/s
    printed = [int(r["seq"]) for r in daemon.readings()]  # type: ignore[call-overload]
    got: list[int] = []
    for m in sub.on(f"{p}/reading"):
        seq = int(json.loads(m.payload)["seq"])
        if seq not in got:
            got.append(seq)
    sub.close()
    assert got, "no reading got through the slow link"
    assert got == sorted(got) and got == printed[: len(got)], got  # in order, none skipped
    # Readings are not stuck behind a pile of old snapshots: what was printed 10 s before had
    # reached the broker (queued snapshots would delay them by minutes: ~40 KB/s more than fits).
    due = [int(r["seq"]) for r in daemon.readings()  # type: ignore[call-overload]
           if datetime.strptime(str(r["ts"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
           < checked_at - 10]
    assert due and max(got_then) >= max(due), (max(got_then), max(due))
