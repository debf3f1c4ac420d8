"""The MQTT sink against a real Mosquitto: contract, retained topics, outages, bound, HA discovery."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.bench.broker import Broker, Subscriber, sample_reading
from edge.bench.waiting import wait_until
from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
from edge.sinks.spool import Spool

INFO = {"version": "0.1.0", "model": {"name": "digits_mlp_int8", "accuracy": 0.989}, "source": "demo",
        "config": {"fps": 10}}

SinkFactory = Callable[..., MqttSink]


@pytest.fixture
def make_sink(tmp_path: Path, topic_prefix: str) -> Iterator[SinkFactory]:
    """``make_sink(broker, **mqtt_config_overrides)``; every sink is closed at teardown."""
    sinks: list[MqttSink] = []

    def make(broker: Broker, state_dir: Path | None = None, **overrides: Any) -> MqttSink:
        fields: dict[str, Any] = {"host": broker.host, "port": broker.port, "topic_prefix": topic_prefix,
                                  "device_id": "dev1", "keepalive_s": 10}
        fields.update(overrides)
        sink = MqttSink(MqttConfig(**fields), state_dir or tmp_path / "state", INFO)
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=1.0)


def seqs_on(sub: Subscriber, topic: str) -> list[int]:
    return [json.loads(m.payload)["seq"] for m in sub.on(topic)]


def parked_subscriber(broker: Broker, topics: list[str]) -> Subscriber:
    """A persistent-session QoS 1 subscriber; the broker then queues for it while it is away."""
    return Subscriber(broker, topics, persistent=True)


def test_readings_match_the_json_contract(mqtt_broker: Broker, make_sink: SinkFactory, topic_prefix: str) -> None:
    p = f"{topic_prefix}/dev1"
    sub = Subscriber(mqtt_broker, [f"{p}/#"])
    sink = make_sink(mqtt_broker)
    readings = [sample_reading(1, "4107"), sample_reading(2, None), sample_reading(3, "0042")]
    for r in readings:
        sink.publish(r)
    assert sub.wait_for(lambda _: len(sub.on(f"{p}/reading")) >= 3), sink.stats()
    got = sub.on(f"{p}/reading")
    for msg, reading in zip(got, readings, strict=True):
        assert msg.payload == json.dumps(reading.to_json()).encode()
        assert msg.qos == 1 and not msg.retain
    bodies = [json.loads(m.payload) for m in got]
    assert [b["seq"] for b in bodies] == [1, 2, 3]
    assert (bodies[0]["value"], bodies[0]["number"]) == ("4107", 4107)
    assert (bodies[1]["value"], bodies[1]["number"]) == (None, None)
    assert (bodies[2]["value"], bodies[2]["number"]) == ("0042", 42)  # leading zeros kept in value
    assert isinstance(bodies[0]["number"], int) and isinstance(bodies[0]["confidence"], float)
    assert set(bodies[0]) >= {"seq", "ts", "value", "number", "confidence", "numbers", "digits",
                              "latency_ms", "model"}
    assert bodies[0]["ts"].endswith("Z") and bodies[0]["digits"][0]["box"] == [10, 20, 25, 40]
    assert sub.wait_for(lambda _: any(json.loads(m.payload)["seq"] == 3 for m in sub.on(f"{p}/state")))
    assert wait_until(lambda: sink.stats()["spool_depth"] == 0 and sink.stats()["sent"] == 3)
    sub.close()


def test_late_subscriber_gets_retained_state_availability_and_info(
    mqtt_broker: Broker, make_sink: SinkFactory, topic_prefix: str
) -> None:
    p = f"{topic_prefix}/dev1"
    early = Subscriber(mqtt_broker, [f"{p}/state"])
    sink = make_sink(mqtt_broker)
    sink.publish(sample_reading(1, "11"))
    sink.publish(sample_reading(2, "12"), snapshot_jpeg=b"\xff\xd8fake-jpeg\xff\xd9")
    assert early.wait_for(lambda _: 2 in seqs_on(early, f"{p}/state"))
    early.close()

    late = Subscriber(mqtt_broker, [f"{p}/#"])
    topics = ("availability", "state", "info", "snapshot")
    assert late.wait_for(lambda _: all(late.on(f"{p}/{t}") for t in topics)), [m.topic for m in late.messages]
    for t in topics:
        assert late.on(f"{p}/{t}")[-1].retain, t
    assert late.on(f"{p}/availability")[-1].payload == b"online"
    assert json.loads(late.on(f"{p}/state")[-1].payload)["seq"] == 2
    assert json.loads(late.on(f"{p}/info")[-1].payload) == INFO
    assert late.on(f"{p}/snapshot")[-1].payload == b"\xff\xd8fake-jpeg\xff\xd9"
    assert not late.on(f"{p}/reading")  # readings are not retained
    late.close()


def test_stats_carry_spool_depth_and_reconnects(mqtt_broker: Broker, make_sink: SinkFactory,
                                                topic_prefix: str) -> None:
    p = f"{topic_prefix}/dev1"
    sub = Subscriber(mqtt_broker, [f"{p}/stats"])
    sink = make_sink(mqtt_broker)
    assert wait_until(lambda: sink.stats()["connected"])
    sink.publish_stats({"fps": 9.8, "uptime_s": 12})
    assert sub.wait_for(lambda _: bool(sub.on(f"{p}/stats")))
    body = json.loads(sub.on(f"{p}/stats")[0].payload)
    assert body["fps"] == 9.8 and body["uptime_s"] == 12
    assert body["spool_depth"] == 0 and body["mqtt_reconnects"] == 0
    sub.close()


def test_broker_absent_at_start_then_everything_arrives(
    make_broker: Callable[..., Broker], make_sink: SinkFactory, topic_prefix: str
) -> None:
    broker = make_broker()
    p = f"{topic_prefix}/dev1"
    sub = parked_subscriber(broker, [f"{p}/reading"])
    broker.stop()
    sink = make_sink(broker)  # must not block or raise with no broker
    for seq in range(1, 21):
        sink.publish(sample_reading(seq, str(seq)))
    stats = sink.stats()
    assert stats["spool_depth"] == 20 and not stats["connected"]
    broker.start()
    assert sub.wait_for(lambda _: set(range(1, 21)) <= set(seqs_on(sub, f"{p}/reading")), timeout=40), (
        seqs_on(sub, f"{p}/reading"), sink.stats())
    assert wait_until(lambda: sink.stats()["spool_depth"] == 0)
    sub.close()


def test_broker_restart_mid_stream_loses_no_seq(
    make_broker: Callable[..., Broker], make_sink: SinkFactory, topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="edge")
    broker = make_broker()
    p = f"{topic_prefix}/dev1"
    sub = parked_subscriber(broker, [f"{p}/reading"])
    sink = make_sink(broker)
    total = 150
    produced = threading.Event()

    def produce() -> None:
        for seq in range(1, total + 1):
            sink.publish(sample_reading(seq, str(seq)))
            time.sleep(0.02)
        produced.set()

    producer = threading.Thread(target=produce)
    producer.start()
    assert sub.wait_for(lambda _: len(sub.on(f"{p}/reading")) >= 20)
    broker.stop()
    time.sleep(1.0)  # readings keep coming while the broker is down
    broker.start()
    producer.join()
    assert sub.wait_for(lambda _: set(range(1, total + 1)) <= set(seqs_on(sub, f"{p}/reading")), timeout=60), (
        sorted(set(range(1, total + 1)) - set(seqs_on(sub, f"{p}/reading"))), sink.stats())
    first_seen = list(dict.fromkeys(seqs_on(sub, f"{p}/reading")))
    assert first_seen == sorted(first_seen), "readings must arrive in seq order (duplicates allowed)"
    assert sink.stats()["reconnects"] >= 1
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("lost" in m for m in said), said  # one restart is a lost connection, not a flapping one
    assert not any("another client" in m for m in said), said
    sub.close()


def test_spool_bound_drops_oldest_counted_and_logged(
    make_broker: Callable[..., Broker], make_sink: SinkFactory, topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    broker = make_broker()
    p = f"{topic_prefix}/dev1"
    sub = parked_subscriber(broker, [f"{p}/reading"])
    broker.stop()
    sink = make_sink(broker, spool_max=10)
    for seq in range(1, 26):
        sink.publish(sample_reading(seq, str(seq)))
    stats = sink.stats()
    assert (stats["spool_depth"], stats["dropped"]) == (10, 15)
    assert any("spool full" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    broker.start()
    assert sub.wait_for(lambda _: set(range(16, 26)) <= set(seqs_on(sub, f"{p}/reading")), timeout=40)
    assert min(seqs_on(sub, f"{p}/reading")) == 16
    sub.close()


def test_close_flushes_then_says_offline(mqtt_broker: Broker, make_sink: SinkFactory, topic_prefix: str,
                                         tmp_path: Path) -> None:
    p = f"{topic_prefix}/dev1"
    sub = Subscriber(mqtt_broker, [f"{p}/reading", f"{p}/availability"])
    sink = make_sink(mqtt_broker)
    for seq in range(1, 51):
        sink.publish(sample_reading(seq))
    sink.close(timeout=5.0)
    assert sub.wait_for(lambda _: bool(sub.on(f"{p}/availability"))
                        and sub.on(f"{p}/availability")[-1].payload == b"offline")
    assert set(range(1, 51)) <= set(seqs_on(sub, f"{p}/reading"))
    assert Spool(tmp_path / "state", 100).depth() == 0
    sub.close()


def test_close_with_broker_down_keeps_the_spool(make_broker: Callable[..., Broker], make_sink: SinkFactory,
                                                tmp_path: Path) -> None:
    broker = make_broker(start=False)
    sink = make_sink(broker)
    for seq in range(1, 6):
        sink.publish(sample_reading(seq))
    sink.close(timeout=1.0)
    sink.publish(sample_reading(6))  # after close: refused with a log line, not an exception
    spool = Spool(tmp_path / "state", 100)
    assert [m.seq for m in spool.peek()] == [1, 2, 3, 4, 5]
    spool.close()


def test_home_assistant_discovery_and_resend_on_ha_online(
    mqtt_broker: Broker, make_sink: SinkFactory, topic_prefix: str
) -> None:
    dp = f"{topic_prefix}-ha"
    p = f"{topic_prefix}/dev1"
    sub = Subscriber(mqtt_broker, [f"{dp}/sensor/#"])
    make_sink(mqtt_broker, device_id="dev1", homeassistant={"discovery_prefix": dp})
    assert sub.wait_for(lambda _: len(sub.messages) >= 3)
    configs = {m.topic: json.loads(m.payload) for m in sub.messages}
    assert set(configs) == {f"{dp}/sensor/dev1/{o}/config" for o in ("number", "value", "confidence")}
    late = Subscriber(mqtt_broker, [f"{dp}/sensor/#"])  # they are retained: HA may start later
    assert late.wait_for(lambda _: len(late.messages) >= 3)
    assert all(m.retain for m in late.messages)
    late.close()
    unique_ids = {c["unique_id"] for c in configs.values()}
    assert len(unique_ids) == 3
    for c in configs.values():
        assert c["state_topic"] == f"{p}/state"
        assert c["availability_topic"] == f"{p}/availability"
        assert (c["payload_available"], c["payload_not_available"]) == ("online", "offline")
        assert c["device"]["identifiers"] and c["device"]["name"] and c["device"]["sw_version"]
        assert c["device"]["manufacturer"] and "digits_mlp_int8" in c["device"]["model"]
        assert c["origin"]["name"] == "digit-edge"
    number = configs[f"{dp}/sensor/dev1/number/config"]
    assert number["value_template"] == "{{ value_json.number }}" and number["state_class"] == "measurement"
    assert configs[f"{dp}/sensor/dev1/confidence/config"]["unit_of_measurement"] == "%"
    # Home Assistant restarts and announces itself: the configs are sent again.
    sub.client.publish(f"{dp}/status", "online", qos=1)
    assert sub.wait_for(lambda _: len(sub.messages) >= 6)
    sub.close()
