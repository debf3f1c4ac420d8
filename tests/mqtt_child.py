"""A small real process that owns an MqttSink, for the signal tests (SIGTERM / SIGKILL).

It does what the daemon does around the sink: takes ``seq`` from the state directory's
counter, publishes ``--count`` readings at ``--rate`` per second, prints ``seq N`` for each
and ``connected``/``done`` markers on stdout, then idles until SIGTERM, on which it closes
the sink (flush, ``offline``) and exits 0 — the runner's shutdown path, without the camera.

    python -m tests.mqtt_child --host H --port P --prefix T --state-dir D --count N
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from edge.bench.broker import sample_reading
from edge.config import MqttConfig
from edge.sinks.mqtt import MqttSink
from edge.state import SequenceCounter


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--close-timeout", type=float, default=3.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")

    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    cfg = MqttConfig(host=args.host, port=args.port, topic_prefix=args.prefix, device_id="child", keepalive_s=5)
    counter = SequenceCounter(args.state_dir)
    sink = MqttSink(cfg, args.state_dir, {"version": "child"})
    said_connected = False
    for _ in range(args.count):
        if stop.is_set():
            break
        seq = counter.next()
        sink.publish(sample_reading(seq, str(seq)))
        print(f"seq {seq}", flush=True)
        stop.wait(1.0 / args.rate)
    print("done", flush=True)
    while not stop.wait(0.05):
        if sink.stats()["connected"] and not said_connected:
            said_connected = True
            print("connected", flush=True)
    sink.close(timeout=args.close_timeout)
    counter.close()
    print(f"closed spool_depth={sink.stats()['spool_depth']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
