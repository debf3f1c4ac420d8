"""Shared fixtures. MQTT: a real Mosquitto per test (see edge/bench/broker.py)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.bench.broker import Broker, BrokerError, TlsFiles, make_tls_files


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Handlers and level of the root logger put back as they were (the daemon's logging
    setup adds handlers to it)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Factory: ``make_broker(users=..., tls=..., start=True)``; every broker is stopped at teardown."""
    brokers: list[Broker] = []

    def make(*, start: bool = True, **kwargs: Any) -> Broker:
        try:
            broker = Broker(tmp_path / f"broker{len(brokers)}", **kwargs)
            brokers.append(broker)
            if start:
                broker.start()
        except BrokerError as exc:
            pytest.fail(str(exc), pytrace=False)
        return broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mqtt_broker(make_broker: Callable[..., Broker]) -> Broker:
    """A running anonymous Mosquitto on a free loopback port, with persistence."""
    return make_broker()


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    try:
        return make_tls_files(tmp_path / "tls")
    except BrokerError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test (or earlier run) uses."""
    return f"test-{uuid.uuid4().hex[:10]}"
