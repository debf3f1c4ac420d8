"""MQTT outage benchmark: readings at a realistic rate, the broker stopped and restarted midway.

A real Mosquitto (persistence on) and a persistent-session QoS 1 subscriber; the MQTT sink
publishes ``--rate`` readings/s for ``--duration`` s while the broker is stopped for
``--outage`` s in the middle. Prints, per run, ``lost N of M`` (target: 0, every time),
duplicates, how long after the broker came back the sink reconnected and the backlog was
delivered; then a burst: how many readings/s the spool takes and the publisher gets
acknowledged when the pipeline produces faster than any camera would.

    python -m edge.bench.mqtt_outage [--runs 3] [--rate 10] [--duration 20] [--outage 5] [--burst 2000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edge.bench.broker import Broker, Subscriber, sample_reading
from edge.bench.waiting import wait_until
from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink


@dataclass
class Outcome:
    produced: int = 0
    lost: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    backlog: int = 0
    reconnect_s: float = float("nan")
    backlog_delivered_s: float = float("nan")
    latency_ms: list[float] = field(default_factory=list)


def arrivals(sub: Subscriber, topic: str) -> list[tuple[int, float]]:
    """(seq, arrival time.monotonic()) in arrival order; arrival time is stamped on receipt."""
    return [(json.loads(m.payload)["seq"], m.timestamp) for m in sub.on(topic)]


def run_outage(work: Path, rate: float, duration: float, outage: float, outage_at: float) -> Outcome:
    broker = Broker(work / "broker")
    broker.start()
    prefix = f"bench-{int(time.time() * 1000)}"
    topic = f"{prefix}/dev/reading"
    sub = Subscriber(broker, [topic], persistent=True)
    cfg = MqttConfig(host=broker.host, port=broker.port, topic_prefix=prefix, device_id="dev", keepalive_s=10)
    sink = MqttSink(cfg, work / "state", {"version": "bench"})
    out = Outcome()
    produced_at: dict[int, float] = {}
    t_down: float | None = None
    t_up: float | None = None
    reconnected: float | None = None
    try:
        start = time.monotonic()
        seq = 0
        while (now := time.monotonic()) - start < duration:
            if t_down is None and now - start >= outage_at:
                broker.stop()
                t_down = time.monotonic()
            elif t_down is not None and t_up is None and now - t_down >= outage:
                broker.start()
                t_up = time.monotonic()
            elif t_up is not None and reconnected is None and sink.stats()["connected"]:
                reconnected = time.monotonic()
            if now - start >= seq / rate:
                seq += 1
                produced_at[seq] = time.monotonic()
                sink.publish(sample_reading(seq, str(seq)))
            time.sleep(0.002)
        out.produced = seq
        sub.wait_for(lambda _: len({s for s, _ in arrivals(sub, topic)}) >= seq, timeout=60)
        got = arrivals(sub, topic)
        first: dict[int, float] = {}
        for s, t in got:
            first.setdefault(s, t)
        out.lost = len(set(range(1, seq + 1)) - set(first))
        out.duplicates = len(got) - len(first)
        out.out_of_order = sum(1 for a, b in itertools.pairwise(first) if b < a)
        if t_down is not None and t_up is not None:
            back = reconnected if reconnected is not None else t_up
            backlog = [s for s, t in produced_at.items() if t_down <= t < back]
            out.backlog = len(backlog)
            out.reconnect_s = back - t_up
            if backlog and all(s in first for s in backlog):
                out.backlog_delivered_s = max(first[s] for s in backlog) - t_up
        out.latency_ms = [(first[s] - t) * 1000 for s, t in produced_at.items()
                          if s in first and (t_down is None or t < t_down)]
    finally:
        sink.close(timeout=3.0)
        sub.close()
        broker.stop()
    return out


def run_burst(work: Path, count: int) -> tuple[float, float, float]:
    """(spool puts/s, drain readings/s, live readings/s) for ``count`` readings at once.

    Puts are timed with the broker down (pure durable writes); the drain is the spool emptied
    after the broker starts (publish, PUBACK, delete); live is publish-and-ack with it up.
    """
    broker = Broker(work / "broker-burst")
    cfg = MqttConfig(host=broker.host, port=broker.port, topic_prefix="bench-burst", device_id="dev")
    sink = MqttSink(cfg, work / "state-burst", {"version": "bench"})
    try:
        t0 = time.monotonic()
        for seq in range(1, count + 1):
            sink.publish(sample_reading(seq, str(seq)))
        puts = count / (time.monotonic() - t0)
        broker.start()
        _wait(lambda: sink.stats()["connected"])
        t0 = time.monotonic()
        _wait(lambda: sink.stats()["sent"] >= count)
        drain = sink.stats()["sent"] / (time.monotonic() - t0)
        t0 = time.monotonic()
        for seq in range(count + 1, 2 * count + 1):
            sink.publish(sample_reading(seq, str(seq)))
        _wait(lambda: sink.stats()["sent"] >= 2 * count)
        live = (sink.stats()["sent"] - count) / (time.monotonic() - t0)
        return puts, drain, live
    finally:
        sink.close(timeout=3.0)
        broker.stop()


def _wait(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    wait_until(predicate, timeout, poll_s=0.002)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=1, help="outage runs (each with a fresh broker)")
    parser.add_argument("--rate", type=float, default=10.0, help="readings per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of readings per run")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds the broker is down")
    parser.add_argument("--burst", type=int, default=2000, help="readings for the burst test (0: skip)")
    parser.add_argument("--verbose", action="store_true", help="show the sink's log lines")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    outage_at = max(0.0, (args.duration - args.outage) / 2)
    print(f"outage: {args.rate:g} readings/s for {args.duration:g} s, broker down {args.outage:g} s "
          f"from t={outage_at:g} s; {args.runs} run(s)")
    total_lost = 0
    with tempfile.TemporaryDirectory(prefix="mqtt-outage-") as tmp:
        for i in range(args.runs):
            o = run_outage(Path(tmp) / f"run{i}", args.rate, args.duration, args.outage, outage_at)
            total_lost += o.lost
            lat = f"{statistics.median(o.latency_ms):.1f} ms" if o.latency_ms else "n/a"
            print(f"run {i + 1}: lost {o.lost} of {o.produced}; duplicates {o.duplicates}; "
                  f"out of order {o.out_of_order}; reconnected {o.reconnect_s:.2f} s after the broker "
                  f"returned; backlog of {o.backlog} delivered {o.backlog_delivered_s:.2f} s after it "
                  f"returned; median delivery latency while up {lat}")
        if args.burst:
            puts, drain, live = run_burst(Path(tmp), args.burst)
            print(f"burst of {args.burst}: the spool stores {puts:.0f} readings/s (fsynced put); "
                  f"the publisher drains a full spool at {drain:.0f} readings/s and sustains "
                  f"{live:.0f} readings/s live (publish + PUBACK + delete)")
    print(f"total: lost {total_lost} of all runs' readings")
    return 0 if total_lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
