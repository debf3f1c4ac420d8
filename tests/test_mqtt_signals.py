"""Signals for real: a process owning the MQTT sink is SIGKILLed or SIGTERMed (tests/mqtt_child.py)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from edge.bench.broker import Broker, Subscriber
from edge.sinks.spool import Spool
from tests.imaging import REPO
from tests.line_process import LineProcess


class Child(LineProcess):
    """``python -m tests.mqtt_child``: owns an MqttSink, prints ``seq N``/``done``/``connected``."""

    def __init__(self, broker: Broker, prefix: str, state_dir: Path, count: int) -> None:
        super().__init__([sys.executable, "-m", "tests.mqtt_child", "--host", broker.host,
                          "--port", str(broker.port), "--prefix", prefix, "--state-dir", str(state_dir),
                          "--count", str(count)], cwd=REPO)

    def wait_for(self, prefix: str) -> str:
        return self.wait_line(lambda line: line.startswith(prefix))

    def seqs(self) -> list[int]:
        return [int(line.split()[1]) for line in self.lines if line.startswith("seq ")]


def test_sigkill_makes_the_broker_publish_offline(mqtt_broker: Broker, topic_prefix: str, tmp_path: Path) -> None:
    topic = f"{topic_prefix}/child/availability"
    sub = Subscriber(mqtt_broker, [topic])
    child = Child(mqtt_broker, topic_prefix, tmp_path / "state", count=3)
    try:
        child.wait_for("connected")
        assert sub.wait_for(lambda m: bool(m) and m[-1].payload == b"online")
        child.kill()  # no chance to say goodbye: the broker's last will does
        assert sub.wait_for(lambda m: m[-1].payload == b"offline"), [m.payload for m in sub.messages]
    finally:
        child.kill()
        sub.close()


def test_sigterm_keeps_spooled_readings_and_seq_carries_on(
    make_broker: Callable[..., Broker], topic_prefix: str, tmp_path: Path
) -> None:
    broker = make_broker()
    p = f"{topic_prefix}/child"
    sub = Subscriber(broker, [f"{p}/reading"], persistent=True)
    broker.stop()
    state = tmp_path / "state"

    first = Child(broker, topic_prefix, state, count=10)
    try:
        first.wait_for("done")
        assert first.terminate() == 0, first.stderr()  # SIGTERM with the broker down: exits 0, promptly
        first.wait_for("closed")
    finally:
        first.kill()
    assert first.seqs() == list(range(1, 11))
    spool = Spool(state, 1000)
    assert [m.seq for m in spool.peek(limit=100)] == list(range(1, 11))  # on disk, for the next start
    spool.close()

    broker.start()
    avail = Subscriber(broker, [f"{p}/availability"])
    second = Child(broker, topic_prefix, state, count=5)
    try:
        second.wait_for("done")
        assert sub.wait_for(lambda _: set(range(1, 16)) <= {json.loads(m.payload)["seq"] for m in sub.messages},
                            timeout=40), [json.loads(m.payload)["seq"] for m in sub.messages]
        assert second.seqs() == list(range(11, 16))  # seq went on from the state directory
        assert second.terminate() == 0, second.stderr()
        assert second.wait_for("closed") == "closed spool_depth=0"
        assert avail.wait_for(lambda m: bool(m) and m[-1].payload == b"offline")
    finally:
        second.kill()
        sub.close()
        avail.close()
