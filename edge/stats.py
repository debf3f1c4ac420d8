"""Running figures of the frame loop: frames/s, latency, per-stage times, uptime.

``frames`` counts every frame the loop took from the source; the change gate splits them
into ``frames_read`` (through the pipeline) and ``frames_skipped`` (not read: unchanged, or
``frames_moving``, still changing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoopStats:
    started: float = field(default_factory=time.monotonic)
    frames: int = 0
    readings: int = 0
    errors: int = 0
    source_timeouts: int = 0
    frames_read: int = 0
    frames_skipped: int = 0
    frames_moving: int = 0  # of the skipped: the picture was still changing (confirms nothing)
    last_frame_at: float | None = None
    fps: float = 0.0  # exponential moving average over ~2 s
    latency_ms: float = 0.0  # moving average of pipeline time per frame
    stage_ms: dict[str, float] = field(default_factory=dict)
    _window_frames: int = 0
    _window_start: float = field(default_factory=time.monotonic)

    def record_frame(self, latency_ms: float, stage_ms: dict[str, float]) -> None:
        """A frame the pipeline read."""
        self.frames_read += 1
        alpha = 0.1
        self.latency_ms = latency_ms if self.frames_read == 1 else (1 - alpha) * self.latency_ms + alpha * latency_ms
        for name, ms in stage_ms.items():
            prev = self.stage_ms.get(name, ms)
            self.stage_ms[name] = (1 - alpha) * prev + alpha * ms
        self._tick()

    def record_skip(self, moving: bool) -> None:
        """A frame the change gate let pass unread (it still counts for frames/s and health)."""
        self.frames_skipped += 1
        self.frames_moving += moving
        self._tick()

    def _tick(self) -> None:
        now = time.monotonic()
        self.frames += 1
        self._window_frames += 1
        self.last_frame_at = now
        elapsed = now - self._window_start
        if elapsed >= 2.0:
            self.fps = self._window_frames / elapsed
            self._window_frames = 0
            self._window_start = now

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def seconds_since_frame(self) -> float | None:
        return None if self.last_frame_at is None else time.monotonic() - self.last_frame_at

    def snapshot(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "frames_read": self.frames_read,
            "frames_skipped": self.frames_skipped,
            "frames_moving": self.frames_moving,
            "readings": self.readings,
            "fps": round(self.fps, 2),
            "latency_ms": round(self.latency_ms, 2),
            "stage_ms": {k: round(v, 3) for k, v in self.stage_ms.items()},
            "errors": self.errors,
            "uptime_s": round(self.uptime_s(), 1),
        }
