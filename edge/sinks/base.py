"""The interface every output implements, and the fan-out the runner talks to."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from edge.types import Reading

log = logging.getLogger(__name__)


class Sink(Protocol):
    """An output. ``publish`` must never block the frame loop for long."""

    def publish(self, reading: Reading, snapshot_jpeg: bytes | None = None) -> None:
        """A new stable reading (and, if the sink wants it, the annotated frame as JPEG)."""

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Periodic runtime figures (frames/s, latency, ...)."""

    def close(self, timeout: float = 3.0) -> None:
        """Flush what can be flushed within ``timeout`` seconds, then release resources."""


class FanOut:
    """Sends each event to every sink; one failing sink does not stop the others."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def publish(self, reading: Reading, snapshot_jpeg: bytes | None = None) -> None:
        for sink in self.sinks:
            try:
                sink.publish(reading, snapshot_jpeg)
            except Exception:
                log.exception("sink %s failed to publish reading %d", type(sink).__name__, reading.seq)

    def publish_stats(self, stats: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink.publish_stats(stats)
            except Exception:
                log.exception("sink %s failed to publish stats", type(sink).__name__)

    def publish_field(self, name: str, payload: dict[str, Any], rejected: bool) -> None:
        """A field's new stable value (or a rejected one), to the sinks that show fields."""
        for sink in self.sinks:
            publish = getattr(sink, "publish_field", None)
            if publish is None:
                continue
            try:
                publish(name, payload, rejected)
            except Exception:
                log.exception("sink %s failed to publish field %s", type(sink).__name__, name)

    def stage(self, reading: Reading) -> None:
        """Let sinks that keep readings on disk write this one inside the seq transaction.

        Unlike ``publish`` an error propagates: it rolls back the seq's transaction, and the
        reading goes out live (``publish``) without a copy on disk.
        """
        for sink in self.sinks:
            stage = getattr(sink, "stage", None)
            if stage is not None:
                stage(reading)

    def close(self, timeout: float = 3.0) -> None:
        for sink in reversed(self.sinks):
            try:
                sink.close(timeout)
            except Exception:
                log.exception("sink %s failed to close", type(sink).__name__)
