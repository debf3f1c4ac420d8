"""What the live view costs the frame loop: frames/s with the server off, on and idle, and on
with viewers streaming MJPEG.

The daemon's own Runner runs in this process on an unthrottled source (``fps: 120`` on the
demo scenes: the pipeline cannot keep up, so it runs flat out); frames are counted straight
from its LoopStats over a fixed window after a warm-up, and the process CPU time over the
same window gives CPU ms per frame. Viewers are separate processes (as browsers would be)
reading ``/stream.mjpg``. Conditions are interleaved for ``--rounds`` rounds and the median
of each is printed with its ratio to "off".

    python -m edge.bench.http_overhead [--seconds 10] [--warmup 3] [--rounds 2] [--viewers 2]
                                  [--source demo] [--fps 120] [--model PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.bench.waiting import wait_until
from edge.config import Config
from edge.runner import Runner, RunOptions

VIEWER = r"""
import socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((host, port))
s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
end, got, parts = time.monotonic() + seconds, 0, 0
while time.monotonic() < end:
    chunk = s.recv(1 << 16)
    if not chunk:
        break
    got += len(chunk)
    parts += chunk.count(b"--frame\r\n")
print(got, parts)
"""


@dataclass
class Sample:
    condition: str
    fps: float
    cpu_ms_per_frame: float  # the whole process: loop, source, server and encoder threads
    loop_cpu_ms_per_frame: float  # the frame-loop thread alone
    encodes_per_s: float
    viewer_fps: float


def measure(cfg: Config, condition: str, viewers: int, warmup: float, seconds: float) -> Sample:
    runner = Runner(cfg, RunOptions(output="json"))
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        thread = threading.Thread(target=runner.run, name="bench-runner")
        thread.start()
        try:
            _wait(lambda: runner.live.stats.frames > 0, "the first frame")
            if cfg.http.enabled:
                _wait(lambda: runner.http is not None and bool(runner.http.url), "the server")
            procs = []
            if viewers:
                assert runner.http is not None
                host, port = runner.http.url.split("//")[1].rstrip("/").rsplit(":", 1)
                procs = [
                    subprocess.Popen([sys.executable, "-c", VIEWER, host, port, str(warmup + seconds)],
                                     stdout=subprocess.PIPE, text=True)
                    for _ in range(viewers)
                ]
            time.sleep(warmup)
            stats = runner.live.stats
            enc0 = runner.http.cache.encoded if runner.http else 0
            tid = thread.native_id
            f0, c0, l0, t0 = stats.frames, time.process_time(), _thread_cpu(tid), time.monotonic()
            time.sleep(seconds)
            f1, c1, l1, t1 = stats.frames, time.process_time(), _thread_cpu(tid), time.monotonic()
            enc1 = runner.http.cache.encoded if runner.http else 0
            parts = [int(p.communicate(timeout=warmup + seconds + 30)[0].split()[1]) for p in procs]
        finally:
            runner.stop_event.set()
            thread.join(30)
    frames = max(1, f1 - f0)
    viewer_fps = statistics.mean(parts) / (warmup + seconds) if parts else 0.0
    return Sample(condition, frames / (t1 - t0), (c1 - c0) * 1000 / frames, (l1 - l0) * 1000 / frames,
                  (enc1 - enc0) / (t1 - t0), viewer_fps)


def observe_cost_us(calls: int = 20000) -> float:
    """What the frame loop pays per frame with the server on: Metrics.observe (histograms)."""
    from edge.http.metrics import Metrics
    from edge.live import LiveView
    from edge.types import FrameResult

    metrics = Metrics(LiveView())
    stages = {"gray": 0.2, "detect": 4.0, "normalize": 1.5, "classify": 0.1, "read": 0.05}
    result = FrameResult((), (), 5.85, stages)
    t0 = time.perf_counter()
    for _ in range(calls):
        metrics.observe(result)
    return (time.perf_counter() - t0) / calls * 1e6


def encode_cost_ms(source: str, fps: float, frames: int = 30) -> float:
    """CPU ms to annotate + JPEG-encode one frame: what each JPEG/s above costs."""
    from edge.http.state import JpegCache
    from edge.live import LiveView
    from edge.sources import open_source
    from edge.types import FrameResult

    live = LiveView()
    cache = JpegCache(live, min_interval_s=0.0)
    src = open_source(source, Config.model_validate({"fps": fps, "source": source}))
    try:
        total = 0.0
        for _ in range(frames):
            frame = src.read(timeout=5.0)
            assert frame is not None
            live.frame, live.result = frame, FrameResult((), (), 0.0)
            t0 = time.process_time()
            cache.get()
            total += time.process_time() - t0
    finally:
        src.close()
    return total / frames * 1000


def _thread_cpu(tid: int | None) -> float:
    """CPU seconds (user + system) of one thread of this process, from /proc (10 ms ticks)."""
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(cond: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    if not wait_until(cond, timeout):
        raise SystemExit(f"bench: {what} did not come within {timeout:g} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--seconds", type=float, default=10.0, help="measuring window per run")
    p.add_argument("--warmup", type=float, default=3.0, help="seconds before the window opens")
    p.add_argument("--rounds", type=int, default=2, help="times each condition is run (interleaved)")
    p.add_argument("--viewers", type=int, default=2, help="MJPEG viewers in the last condition")
    p.add_argument("--source", default="demo", help="frame source SPEC")
    p.add_argument("--fps", type=float, default=120.0, help="target fps (above what the pipeline can do)")
    p.add_argument("--model", help="TFLite model (default: the shipped one)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    conditions = [("off", False, 0), ("on, idle", True, 0), (f"on, {args.viewers} viewers", True, args.viewers)]
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory() as tmp:
        base = {"source": args.source, "fps": args.fps, "model": args.model, "state_dir": Path(tmp),
                "mqtt": {"enabled": False}}
        for r in range(args.rounds):
            for name, enabled, viewers in conditions:
                cfg = Config.model_validate({**base, "http": {"enabled": enabled, "port": 0}})
                s = measure(cfg, name, viewers, args.warmup, args.seconds)
                samples.append(s)
                print(f"round {r + 1}: {name:<16} {s.fps:6.1f} frames/s  CPU ms/frame {s.cpu_ms_per_frame:5.2f} "
                      f"(loop {s.loop_cpu_ms_per_frame:5.2f})  {s.encodes_per_s:5.1f} JPEG/s  "
                      f"viewers got {s.viewer_fps:4.1f} frames/s", flush=True)
    print(f"\n{'condition':<16} {'frames/s':>9} {'ratio':>6} {'CPU ms/frame':>13} {'ratio':>6} "
          f"{'loop CPU ms/frame':>18} {'JPEG/s':>7}")
    base_fps = statistics.median(s.fps for s in samples if s.condition == "off")
    base_cpu = statistics.median(s.cpu_ms_per_frame for s in samples if s.condition == "off")
    for name, _, _ in conditions:
        mine = [s for s in samples if s.condition == name]
        fps = statistics.median(s.fps for s in mine)
        cpu = statistics.median(s.cpu_ms_per_frame for s in mine)
        loop = statistics.median(s.loop_cpu_ms_per_frame for s in mine)
        enc = statistics.median(s.encodes_per_s for s in mine)
        print(f"{name:<16} {fps:9.1f} {fps / base_fps:6.3f} {cpu:13.2f} {cpu / base_cpu:6.3f} {loop:18.2f} {enc:7.1f}")
    observe_us = observe_cost_us()
    off_ms = 1000 / base_fps
    print(f"\nper-frame hook with the server on (Metrics.observe): {observe_us:.1f} µs "
          f"= {observe_us / 10 / off_ms:.2f}% of a {off_ms:.1f} ms frame")
    enc_ms = encode_cost_ms(args.source, args.fps)
    share = enc_ms * 10 / 1000  # at the default stream_fps: 10 JPEGs a second, shared by all viewers
    print(f"one annotated JPEG: {enc_ms:.1f} CPU ms; at stream_fps 10: {share:.1%} of one core, "
          "however many viewers")
    print(f"{os.cpu_count()} CPUs; {args.rounds} rounds of {args.seconds:g} s after {args.warmup:g} s warm-up; "
          f"source {args.source} at fps {args.fps:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
