"""Connecting for real: username/password, TLS with test-made certificates, and what is logged
when it fails (one clear line per problem, retries with backoff, never the password)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.bench.broker import Broker, Subscriber, TlsFiles, make_tls_files, sample_reading
from edge.bench.waiting import wait_until
from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
from edge.sinks.mqtt_setup import ENV_PASSWORD, MqttSetupError

PASSWORD = "correct-horse-battery"
WRONG = "wrong-password-xyz"


@pytest.fixture
def sink_for(tmp_path: Path, topic_prefix: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., MqttSink]]:
    monkeypatch.delenv(ENV_PASSWORD, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    sinks: list[MqttSink] = []

    def make(broker: Broker, **overrides: Any) -> MqttSink:
        fields: dict[str, Any] = {"host": broker.host, "port": broker.port, "topic_prefix": topic_prefix,
                                  "device_id": "dev1"}
        fields.update(overrides)
        sink = MqttSink(MqttConfig(**fields), tmp_path / f"state{len(sinks)}", {"version": "test"})
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.close(timeout=1.0)


def warnings_with(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and text in r.getMessage()]


def delivers(broker: Broker, sink: MqttSink, topic_prefix: str) -> bool:
    sub = Subscriber(broker, [f"{topic_prefix}/dev1/reading"]) if broker.users is None else None
    sink.publish(sample_reading(1))
    ok = wait_until(lambda: sink.stats()["sent"] == 1)
    if sub is not None:
        ok = ok and sub.wait_for(lambda m: bool(m)) and json.loads(sub.messages[0].payload)["seq"] == 1
        sub.close()
    return ok


def test_wrong_password_one_clear_line_then_retries(
    make_broker: Callable[..., Broker], sink_for: Callable[..., MqttSink], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge")
    broker = make_broker(users={"edge": PASSWORD})
    pw_file = tmp_path / "mqtt_password"
    pw_file.write_text(WRONG + "\n")
    sink = sink_for(broker, username="edge", password_file=pw_file)
    assert wait_until(lambda: sink.stats()["failed_attempts"] >= 3), sink.stats()
    assert not sink.stats()["connected"]
    lines = warnings_with(caplog, "refused the login")
    assert len(lines) == 1, lines  # retried 3+ times, said once
    assert "Not authorized" in lines[0] and "mqtt.username" in lines[0]
    assert WRONG not in caplog.text and PASSWORD not in caplog.text
    assert broker.log_text().count("not authorised") >= 3  # the retries really happened


def test_right_password_from_env_and_from_file(
    make_broker: Callable[..., Broker], sink_for: Callable[..., MqttSink], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, topic_prefix: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    broker = make_broker(users={"edge": PASSWORD})
    monkeypatch.setenv(ENV_PASSWORD, PASSWORD)
    assert delivers(broker, sink_for(broker, username="edge"), topic_prefix)
    monkeypatch.delenv(ENV_PASSWORD)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "mqtt_password").write_text(PASSWORD)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))  # systemd LoadCredential=
    assert delivers(broker, sink_for(broker, username="edge"), topic_prefix)
    assert PASSWORD not in caplog.text


def test_unreadable_password_file_names_the_file(make_broker: Callable[..., Broker],
                                                 sink_for: Callable[..., MqttSink], tmp_path: Path) -> None:
    broker = make_broker(start=False)
    missing = tmp_path / "nope" / "pw"
    with pytest.raises(MqttSetupError, match=f"mqtt.password_file {missing}: cannot read it"):
        sink_for(broker, username="edge", password_file=missing)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(MqttSetupError, match="is empty"):
        sink_for(broker, username="edge", password_file=empty)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ({"host": "127.0.0.1", "port": "closed"}, "refused the connection"),
        ({"host": "no-such-broker.invalid"}, "cannot resolve"),
    ],
)
def test_unreachable_broker_one_line_then_backoff(
    make_broker: Callable[..., Broker], sink_for: Callable[..., MqttSink], caplog: pytest.LogCaptureFixture,
    where: dict[str, Any], expected: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge")
    broker = make_broker(start=False)
    overrides = {k: (broker.port if v == "closed" else v) for k, v in where.items()}
    sink = sink_for(broker, **overrides)
    sink.publish(sample_reading(1))  # recognition goes on: the reading is spooled
    assert wait_until(lambda: sink.stats()["failed_attempts"] >= 3), sink.stats()
    lines = warnings_with(caplog, expected)
    assert len(lines) == 1, lines
    assert sink.stats()["spool_depth"] == 1 and expected in sink.state


def test_tls_with_test_made_certificates(
    make_broker: Callable[..., Broker], sink_for: Callable[..., MqttSink], tls_files: TlsFiles, tmp_path: Path,
    topic_prefix: str,
) -> None:
    broker = make_broker(tls=tls_files)
    tls = {"enabled": True, "ca_file": tls_files.ca_cert}
    sink = sink_for(broker, port=broker.tls_port, tls=tls)
    assert delivers(broker, sink, topic_prefix)  # sent over TLS, received on the plain listener
    assert f"on port {broker.tls_port}" in broker.log_text()
    by_name = sink_for(broker, host="localhost", port=broker.tls_port, tls=tls, client_id="by-name")
    assert wait_until(lambda: by_name.stats()["connected"])


def test_tls_untrusted_certificate_one_clear_line(
    make_broker: Callable[..., Broker], sink_for: Callable[..., MqttSink], tls_files: TlsFiles, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge")
    broker = make_broker(tls=tls_files)
    other_ca = make_tls_files(tmp_path / "other", "other").ca_cert
    sink = sink_for(broker, port=broker.tls_port, tls={"enabled": True, "ca_file": other_ca})
    assert wait_until(lambda: sink.stats()["failed_attempts"] >= 2), sink.stats()
    lines = warnings_with(caplog, "TLS certificate rejected")
    assert len(lines) == 1 and "mqtt.tls.ca_file" in lines[0], lines
    assert not sink.stats()["connected"]


def test_tls_missing_ca_file_names_the_key(make_broker: Callable[..., Broker],
                                           sink_for: Callable[..., MqttSink], tmp_path: Path) -> None:
    broker = make_broker(start=False)
    missing = tmp_path / "ca.crt"
    with pytest.raises(MqttSetupError, match=f"mqtt.tls.ca_file {missing}: file not found"):
        sink_for(broker, tls={"enabled": True, "ca_file": missing})


def test_duplicate_client_id_is_named_once_not_flooded(
    mqtt_broker: Broker, sink_for: Callable[..., MqttSink], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edge")
    one = sink_for(mqtt_broker, device_id="twin")
    two = sink_for(mqtt_broker, device_id="twin")  # same client id: the broker keeps kicking one out

    def named() -> list[str]:
        return warnings_with(caplog, "another client using client id 'digit-edge-twin'")

    assert wait_until(lambda: bool(named()), timeout=40), (one.stats(), two.stats())
    assert wait_until(lambda: one.stats()["reconnects"] + two.stats()["reconnects"] >= 6, timeout=60)
    assert len(named()) <= 2, named()  # at most once per sink, however often it flaps
    lines = warnings_with(caplog, "MQTT connection to")
    assert len(lines) <= 6, lines  # per sink: two "lost", then the one line naming the cause


def test_repeated_broker_restarts_are_lost_connections_not_a_duplicate_client_id(
    make_broker: Callable[..., Broker], sink_for: Callable[..., MqttSink], caplog: pytest.LogCaptureFixture
) -> None:
    """A broker restarted four times within a minute, each time a few seconds after we connect."""
    caplog.set_level(logging.DEBUG, logger="edge")
    broker = make_broker()
    sink = sink_for(broker)
    assert wait_until(lambda: sink.stats()["connected"], timeout=30)
    for n in range(1, 5):
        time.sleep(1.0)
        broker.stop()
        time.sleep(1.5)  # down long enough for a reconnect attempt to be refused
        broker.start()
        assert wait_until(lambda n=n: sink.stats()["reconnects"] == n, timeout=60), sink.stats()
    assert not warnings_with(caplog, "another client"), [r.getMessage() for r in caplog.records]
    lost = [m for m in warnings_with(caplog, "MQTT connection to") if "lost" in m]
    assert len(lost) == 4, lost  # each restart: one "connection lost"
    assert delivers(broker, sink, sink.cfg.topic_prefix)


def test_a_server_that_never_sends_connack_is_not_said_to_close(
    make_broker: Callable[..., Broker], sink_for: Callable[..., MqttSink], caplog: pytest.LogCaptureFixture,
) -> None:
    """A port that accepts TCP and then says nothing (not a broker, or a hung one)."""
    import socket

    caplog.set_level(logging.DEBUG, logger="edge")
    broker = make_broker(start=False)
    silent = socket.create_server((broker.host, 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(silent.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        broker.port = silent.getsockname()[1]
        sink = sink_for(broker, keepalive_s=5)
        assert wait_until(lambda: sink.stats()["failed_attempts"] >= 1, timeout=60), sink.stats()
        lines = warnings_with(caplog, "never answered the MQTT login (no CONNACK within 5 s)")
        assert len(lines) == 1, [r.getMessage() for r in caplog.records]
        assert not warnings_with(caplog, "closed the connection")
    finally:
        stop.set()
        thread.join(5)
        for sock in accepted:
            sock.close()
        silent.close()
