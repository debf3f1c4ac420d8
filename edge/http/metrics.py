"""Prometheus metrics for ``/metrics``, in a registry of our own (not the process-global one).

Counters and gauges are read from the live state when someone scrapes, so they cost the
frame loop nothing. Only the per-stage latency histograms need a call per frame
(``observe``): a handful of bucket increments, microseconds against a frame's milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from edge import __version__
from edge.types import FrameResult

if TYPE_CHECKING:
    from edge.live import LiveView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# A stage takes from ~0.05 ms (read) to tens of ms (detect on a big frame, on a Pi).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class Metrics:
    """The registry, the per-frame histograms and the scrape-time collector."""

    def __init__(self, live: LiveView, viewers: Callable[[], int] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.stage_seconds = Histogram(
            "digit_edge_stage_seconds",
            "Time per frame spent in each pipeline stage",
            ["stage"],
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.frame_seconds = Histogram(
            "digit_edge_frame_seconds",
            "Pipeline time per frame, all stages",
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self._stages: dict[str, Any] = {}
        self.registry.register(LiveCollector(live, viewers))

    def observe(self, result: FrameResult) -> None:
        """Called by the frame loop once per processed frame."""
        for name, ms in result.stage_ms.items():
            child = self._stages.get(name)
            if child is None:
                child = self._stages[name] = self.stage_seconds.labels(stage=name)
            child.observe(ms / 1000.0)
        self.frame_seconds.observe(result.latency_ms / 1000.0)

    def render(self) -> bytes:
        return bytes(generate_latest(self.registry))


class LiveCollector(Collector):
    """Counters and gauges taken from LiveView at scrape time."""

    def __init__(self, live: LiveView, viewers: Callable[[], int] | None = None) -> None:
        self.live = live
        self.viewers = viewers  # the number of open MJPEG streams

    def collect(self) -> Iterator[Metric]:
        live = self.live
        stats = live.stats
        yield _counter("digit_edge_frames", "Frames taken from the source (read or skipped)", stats.frames)
        yield _counter("digit_edge_frames_read", "Frames read by the pipeline", stats.frames_read)
        yield _counter("digit_edge_frames_skipped", "Frames the change gate did not read (unchanged or moving)",
                       stats.frames_skipped)
        yield _counter("digit_edge_frames_moving", "Skipped frames whose picture was still changing "
                       "(counted as no confirmation)", stats.frames_moving)
        yield _counter("digit_edge_readings", "Stable readings produced (each one published)", stats.readings)
        yield _counter("digit_edge_errors", "Frames that failed in the pipeline", stats.errors)
        yield _counter("digit_edge_source_timeouts", "Waits of 1 s for a frame that came back empty",
                       stats.source_timeouts)
        yield _gauge("digit_edge_fps", "Frames processed per second (over ~2 s)", stats.fps)
        yield _gauge("digit_edge_uptime_seconds", "Seconds since the pipeline started", stats.uptime_s())
        age = stats.seconds_since_frame()
        if age is not None:
            yield _gauge("digit_edge_last_frame_age_seconds", "Seconds since the last processed frame", age)
        reading = live.reading
        if reading is not None:
            yield _gauge("digit_edge_reading_confidence", "Confidence of the current stable reading",
                         reading.confidence)
            if reading.number is not None:
                yield _gauge("digit_edge_reading_number", "The current stable reading as a number",
                             float(reading.number))
            yield _gauge("digit_edge_reading_timestamp_seconds", "When the current stable reading was captured",
                         reading.ts)
        source = live.source
        if source is not None:
            yield _counter("digit_edge_source_reconnects", "Times a stalled camera was reopened", source.reconnects)
            yield _counter("digit_edge_source_dropped_frames", "Frames replaced by a newer one before being read",
                           getattr(source, "dropped", 0))
            yield _gauge("digit_edge_source_up", "1 while the source delivers frames (state ok)",
                         1.0 if source.state == "ok" else 0.0)
        yield from _mqtt_metrics(live.mqtt)
        yield from _field_metrics(live.fields)
        if self.viewers is not None:
            yield _gauge("digit_edge_http_viewers", "Open /stream.mjpg connections", float(self.viewers()))
        info = InfoMetricFamily("digit_edge", "Version, model and source")
        model = live.model
        info.add_metric([], {
            "version": __version__,
            "model": model.name if model is not None else "",
            "runtime": model.runtime if model is not None else "",
            "source": source.describe() if source is not None else "",
        })
        yield info


def _field_metrics(fields: Any) -> Iterator[Metric]:
    if fields is None:
        return
    counts: dict[str, dict[str, int]] = fields.counts()
    for kind, doc in (("accepted", "Field values accepted (published as the field's state)"),
                      ("rejected", "Field values that broke a rule (format, min/max, direction, rate)")):
        family = CounterMetricFamily(f"digit_edge_field_{kind}", doc, labels=["field"])
        for name, c in sorted(counts.items()):
            family.add_metric([name], float(c[kind]))
        yield family


def _mqtt_metrics(mqtt: Any) -> Iterator[Metric]:
    if mqtt is None:
        return
    stats: dict[str, Any] = mqtt.stats()
    yield _gauge("digit_edge_mqtt_connected", "1 while connected to the MQTT broker",
                 1.0 if stats.get("connected") else 0.0)
    yield _gauge("digit_edge_spool_depth", "Readings waiting in the spool for the broker",
                 float(stats.get("spool_depth", 0)))
    yield _counter("digit_edge_mqtt_reconnects", "Times the MQTT connection was re-established",
                   stats.get("reconnects", 0))
    if "dropped" in stats:
        yield _counter("digit_edge_spool_dropped", "Readings dropped because the spool was full", stats["dropped"])
    if "sent" in stats:
        yield _counter("digit_edge_mqtt_sent", "Readings acknowledged by the broker", stats["sent"])


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=float(value))


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value))
