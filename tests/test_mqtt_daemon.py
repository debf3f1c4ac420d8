"""The whole daemon (`digit-edge run`) against a real Mosquitto: what users' automations see.

The source is ``demo`` (endless; a new value every few seconds) or ``dir:`` of demo frames
written by the test, one new value per image. ``--output json`` prints each reading, the same
object the daemon publishes, so stdout is the ground truth the broker is checked against.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import cv2

from edge.bench.broker import Broker, Subscriber
from edge.config import Config
from edge.sinks.spool import Spool
from edge.sources.demo import DemoSource
from tests.daemon import DaemonProcess, write_config


def broker_config(tmp_path: Path, broker: Broker, prefix: str) -> Path:
    return write_config(
        tmp_path / "config.yaml", state_dir=tmp_path / "state",
        mqtt=f"mqtt:\n  host: {broker.host}\n  port: {broker.port}\n  topic_prefix: {prefix}\n"
        f"  device_id: dev\n  keepalive_s: 5\n  homeassistant: {{discovery_prefix: {prefix}-ha}}\n",
    )


def demo_frames(folder: Path, count: int, first: int = 0) -> Path:
    """``count`` images of the demo scene, each showing the next value."""
    folder.mkdir(parents=True, exist_ok=True)
    demo = DemoSource(Config())
    for i in range(first, first + count):
        cv2.imwrite(str(folder / f"{i:03d}.png"), demo.frame_at(i * demo.frames_per_value + 1))
    return folder


def seqs(sub: Subscriber, topic: str) -> set[int]:
    return {json.loads(m.payload)["seq"] for m in sub.on(topic)}


def test_daemon_publishes_what_it_prints_and_leaves_retained_topics(
    mqtt_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    p = f"{topic_prefix}/dev"
    sub = Subscriber(mqtt_broker, [f"{p}/reading"])
    daemon = DaemonProcess(broker_config(tmp_path, mqtt_broker, topic_prefix),
                           "--source", f"dir:{demo_frames(tmp_path / 'img', 5)}")
    assert daemon.wait() == 0, daemon.stderr()
    printed = daemon.readings()
    assert printed, daemon.stderr()
    assert sub.wait_for(lambda _: seqs(sub, f"{p}/reading") >= {r["seq"] for r in printed})
    published = {json.loads(m.payload)["seq"]: json.loads(m.payload) for m in sub.on(f"{p}/reading")}
    for reading in printed:
        assert published[reading["seq"]] == reading  # the same object on stdout and on MQTT
    late = Subscriber(mqtt_broker, [f"{p}/#", f"{topic_prefix}-ha/#"])
    assert late.wait_for(lambda m: {x.topic for x in m} >= {f"{p}/availability", f"{p}/state", f"{p}/info"})
    assert late.on(f"{p}/availability")[-1].payload == b"offline"  # a clean stop says so
    assert json.loads(late.on(f"{p}/state")[-1].payload) == printed[-1]
    info = json.loads(late.on(f"{p}/info")[-1].payload)
    assert info["source"].startswith("dir:") and info["version"] and info["model"]["name"]
    assert late.wait_for(lambda m: sum(x.topic.endswith("/config") for x in m) >= 3)
    sub.close()
    late.close()


def test_daemon_sigkill_broker_publishes_offline(
    mqtt_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    topic = f"{topic_prefix}/dev/availability"
    sub = Subscriber(mqtt_broker, [topic])
    daemon = DaemonProcess(broker_config(tmp_path, mqtt_broker, topic_prefix), "--source", "demo")
    try:
        assert sub.wait_for(lambda m: bool(m) and m[-1].payload == b"online", timeout=60), daemon.stderr()
        daemon.kill()
        assert sub.wait_for(lambda m: m[-1].payload == b"offline")
    finally:
        daemon.kill()
        sub.close()


def test_daemon_broker_absent_at_start_then_all_arrive(
    make_broker: Callable[..., Broker], topic_prefix: str, tmp_path: Path
) -> None:
    broker = make_broker()
    p = f"{topic_prefix}/dev"
    sub = Subscriber(broker, [f"{p}/reading"], persistent=True)
    broker.stop()
    daemon = DaemonProcess(broker_config(tmp_path, broker, topic_prefix), "--source", "demo")
    try:
        daemon.wait_readings(2)  # recognition goes on with no broker
        broker.start()
        assert sub.wait_for(lambda _: seqs(sub, f"{p}/reading") >= {r["seq"] for r in daemon.readings()},
                            timeout=60)
        assert daemon.terminate() == 0, daemon.stderr()
    finally:
        daemon.kill()
    daemon.wait()
    printed = {r["seq"] for r in daemon.readings()}
    assert sub.wait_for(lambda _: seqs(sub, f"{p}/reading") >= printed)
    sub.close()


def test_daemon_sigterm_with_spooled_readings_then_restart(
    make_broker: Callable[..., Broker], topic_prefix: str, tmp_path: Path
) -> None:
    broker = make_broker()
    p = f"{topic_prefix}/dev"
    sub = Subscriber(broker, [f"{p}/reading"], persistent=True)
    broker.stop()
    config = broker_config(tmp_path, broker, topic_prefix)
    first = DaemonProcess(config, "--source", "demo")
    try:
        first.wait_readings(2)
        assert first.terminate() == 0, first.stderr()  # SIGTERM, broker down: exits 0 promptly
    finally:
        first.kill()
    first.wait()
    spooled = [r["seq"] for r in first.readings()]
    spool = Spool(tmp_path / "state", 100_000)
    assert [m.seq for m in spool.peek(limit=1000)] == spooled  # kept on disk for the next start
    spool.close()

    broker.start()
    second = DaemonProcess(config, "--source", f"dir:{demo_frames(tmp_path / 'img', 3, first=10)}")
    assert second.wait() == 0, second.stderr()
    again = [r["seq"] for r in second.readings()]
    assert again and again[0] == spooled[-1] + 1  # seq carries on from the state directory
    everything = set(range(1, again[-1] + 1))
    assert sub.wait_for(lambda _: seqs(sub, f"{p}/reading") >= everything, timeout=60), (
        sorted(everything - seqs(sub, f"{p}/reading")))
    sub.close()
