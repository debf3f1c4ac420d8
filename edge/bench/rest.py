"""What a device costs at rest, and how fast it sees a change: built-in scenes, no data needed.

The scenes are the ``demo`` source's (HwD-1000 glyphs shipped in the package), so a user runs
this on their own board from an installed wheel. Figures come from fresh ``digit-edge run``
processes on a video of a still page, gate on and off:

* CPU per frame at rest as a ratio to a loop that only decodes the same video, measured in
  this run (start-up is taken out: a run of ``STARTUP_FRAMES`` frames is subtracted);
* the delay from a change on the paper to the new reading, in frames and seconds at 10 fps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.bench.scenes import Scene
from edge.bench.speed import digit_edge_command, run_process
from edge.config import Config
from edge.sources.demo import DemoSource

STARTUP_FRAMES = 3
CHANGE_AT = 20  # the frame where the paper changes in the change video
LATENCY_FPS = 10.0


def builtin_scenes(count: int) -> list[Scene]:
    """``count`` demo frames as JPEG scenes (no truth boxes: for timing, not for scoring)."""
    source = DemoSource(Config())
    step = source.frames_per_value
    out = []
    for i in range(count):
        ok, buf = cv2.imencode(".jpg", source.frame_at(i * step + i % step), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        out.append(Scene(seed=i, jpeg=buf.tobytes(), digits=(), values=(), hard=()))
    return out


def write_video(path: Path, frame_at: Callable[[int], npt.NDArray[np.uint8]], count: int) -> Path:
    first = frame_at(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (first.shape[1], first.shape[0]))
    for i in range(count):
        writer.write(frame_at(i))
    writer.release()
    return path


def decode_cpu_per_frame(video: Path) -> float:
    """CPU seconds per frame of a loop that only decodes ``video`` (this process, one thread)."""
    cap = cv2.VideoCapture(str(video))
    frames, t0 = 0, time.process_time()
    while cap.read()[0]:
        frames += 1
    cap.release()
    return (time.process_time() - t0) / max(1, frames)


def _config(folder: Path, video: Path, gate: bool, fps: float, model: str | None) -> Path:
    lines = [f"source: video:{video}", f"fps: {fps:g}", f"state_dir: {folder / 'state'}", "log_level: WARNING",
             "mqtt: {enabled: false}", f"gate: {{enabled: {str(gate).lower()}}}"]
    if model:
        lines.append(f"model: {model}")
    path = folder / f"rest-{'on' if gate else 'off'}.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def measure_rest(folder: Path, model: str | None, frames: int, fps: float = 50.0) -> dict[str, Any]:
    """CPU at rest (gate on and off) against the bare decode loop, and the change delay."""
    source = DemoSource(Config())
    step = source.frames_per_value
    still = write_video(folder / "still.avi", lambda i: source.frame_at(i % step), frames)
    decode = decode_cpu_per_frame(still)
    out: dict[str, Any] = {"frames": frames, "fps": fps, "decode_ms": round(decode * 1e3, 3)}
    for gate in (True, False):
        cfg = _config(folder, still, gate, fps, model)
        run = [*digit_edge_command(), "run", "--config", str(cfg), "--output", "json"]
        full = run_process([*run, "--max-frames", str(frames)])
        start = run_process([*run, "--max-frames", str(STARTUP_FRAMES)])
        per_frame = max(0.0, full.cpu_s - start.cpu_s) / (frames - STARTUP_FRAMES)
        out["gate_on" if gate else "gate_off"] = {
            "cpu_ms_per_frame": round(per_frame * 1e3, 3), "ratio": round(per_frame / max(decode, 1e-9), 2),
            "exit_status": full.returncode, **({"stderr": full.stderr_tail} if full.returncode else {})}
    change = write_video(folder / "change.avi",
                         lambda i: source.frame_at(i % step if i < CHANGE_AT else step + i % step), 2 * CHANGE_AT)
    for gate in (True, False):
        delay = _change_delay(folder, change, gate, model)
        out["gate_on" if gate else "gate_off"]["change_frames"] = delay
        out["gate_on" if gate else "gate_off"]["change_s"] = None if delay is None else round(delay / LATENCY_FPS, 2)
    return out


def _change_delay(folder: Path, video: Path, gate: bool, model: str | None) -> int | None:
    """Frames from the change (frame CHANGE_AT) to the reading of the new value, from the
    readings' capture times: the first reading stands at frame k - 1 = 2 (3 of 5)."""
    import subprocess

    cfg = _config(folder, video, gate, LATENCY_FPS, model)
    proc = subprocess.run([*digit_edge_command(), "run", "--config", str(cfg), "--output", "json"],
                          capture_output=True, text=True, timeout=120)
    stamps = [datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()
              for line in proc.stdout.splitlines() if line.startswith("{")]
    if len(stamps) < 2:
        return None
    first_at = Config().read.stable_k - 1
    return round((stamps[1] - stamps[0]) * LATENCY_FPS) + first_at - CHANGE_AT
