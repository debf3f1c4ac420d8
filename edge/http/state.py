"""What the HTTP endpoints say about the daemon, computed from LiveView on request.

No aiohttp here: health, the status JSON and the shared JPEG of the latest frame are plain
functions and one small cache, called from the server's threads.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edge import __version__
from edge.annotate import annotate, draw_outlines, encode_jpeg
from edge.types import Frame, utc_timestamp

if TYPE_CHECKING:
    from edge.live import LiveView

RECENT = 10  # readings listed on the page, newest first


@dataclass(frozen=True)
class Health:
    ok: bool
    reason: str


def health(live: LiveView, fps: float, stall_timeout_s: float, where: bool = True) -> Health:
    """Healthy = the model is loaded and a frame went through the pipeline recently.

    "Recently" is the longer of three frame periods and the camera's stall timeout, so a
    slow fps does not flap and a stalled camera shows up as unhealthy while it is reopened.
    """
    if live.model is None:
        return Health(False, "model not loaded")
    source = live.source
    if not where:  # for /healthz, which is open without the password
        place = f"the source ({source.state})" if source is not None else "no source open"
    else:
        place = f"{source.describe()} ({source.state})" if source is not None else "no source open"
    age = live.stats.seconds_since_frame()
    if age is None:
        return Health(False, f"no frame processed yet from {place}")
    limit = max(3.0 / fps, stall_timeout_s)
    if age > limit:
        return Health(False, f"no frame processed for {age:.1f} s (limit {limit:.1f} s) from {place}")
    return Health(True, "ok")


def status(live: LiveView, fps: float, stall_timeout_s: float, viewers: int) -> dict[str, Any]:
    """Everything the page shows besides the picture and the reading."""
    stats = live.stats
    with live.lock:
        frame, result, recent = live.frame, live.result, list(live.recent)
    source, mqtt, model = live.source, live.mqtt, live.model
    h = health(live, fps, stall_timeout_s)
    out: dict[str, Any] = {
        "version": __version__,
        "health": {"ok": h.ok, "reason": h.reason},
        **stats.snapshot(),
        "fps_target": fps,
        "source": None if source is None else {
            "spec": source.describe(),
            "state": source.state,
            "live": source.live,
            "reconnects": source.reconnects,
            "dropped": getattr(source, "dropped", 0),
        },
        "mqtt": {"enabled": False} if mqtt is None else {"enabled": True, **mqtt.stats()},
        "model": None if model is None else model.describe(),
        "frame": None,
        "recent": [
            {"seq": r.seq, "ts": utc_timestamp(r.ts), "value": r.value, "confidence": round(r.confidence, 3)}
            for r in reversed(recent[-RECENT:])
        ],
        "viewers": viewers,
    }
    fields = live.fields
    if fields is not None:  # each field: its latest stable value, its counts and where it is looked for
        current, counts = fields.current(), fields.counts()
        out["fields"] = {f.name: {**current.get(f.name, {"value": None, "status": "missing", "reason": None}),
                                  **counts[f.name], "region": list(f.region), "format": f.format}
                         for f in fields.tracker.fields}
    if frame is not None:
        out["frame"] = {
            "index": frame.index,
            "width": int(frame.image.shape[1]),
            "height": int(frame.image.shape[0]),
            "ts": utc_timestamp(frame.ts),
            "numbers": [n.to_json() for n in result.numbers] if result is not None else [],
            "regions": result.regions if result is not None else 0,
        }
    return out


class JpegCache:
    """The latest frame, annotated and JPEG-encoded once and shared by every viewer.

    A new JPEG is made only when someone asks, only if the frame changed, and at most every
    ``min_interval_s`` — so viewers cost at most that many encodes per second in total, and
    no viewers cost nothing. ``get`` blocks while encoding: call it from a worker thread.
    """

    def __init__(self, live: LiveView, min_interval_s: float, quality: int = 80) -> None:
        self.live = live
        self.min_interval_s = min_interval_s
        self.quality = quality
        self.encoded = 0
        self._lock = threading.Lock()
        self._frame: Frame | None = None
        self._jpeg: bytes | None = None
        self._at = 0.0

    def current_frame(self) -> Frame | None:
        return self.live.frame

    def get(self) -> bytes | None:
        """The JPEG of the newest frame (None if no frame has been processed yet)."""
        with self._lock:
            with self.live.lock:
                frame, result = self.live.frame, self.live.result
            if frame is None or result is None:
                return None
            now = time.monotonic()
            fresh = frame is self._frame or now - self._at < self.min_interval_s
            if self._jpeg is not None and fresh:
                return self._jpeg
            image = annotate(frame.image, result.digits, result.numbers)
            fields = self.live.fields
            if fields is not None:  # where each field is looked for, on the sheet when found
                from edge.fields import field_outlines

                image = draw_outlines(image, field_outlines(fields.tracker.fields, result))
            self._jpeg = encode_jpeg(image, self.quality)
            self._frame, self._at = frame, now
            self.encoded += 1
            return self._jpeg
