"""Plain data passed between the pipeline stages.

Stages hand each other these small frozen dataclasses, never bare tuples or dicts,
so the shape of what flows through the pipeline is written down in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from edge.recognition.sheet import Sheet

GrayImage = npt.NDArray[np.uint8]
"""A 2-D uint8 image (greyscale)."""


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned rectangle in image pixels: ``[x, y, width, height]`` in JSON."""

    x: int
    y: int
    w: int
    h: int

    @property
    def x2(self) -> int:
        return self.x + self.w

    @property
    def y2(self) -> int:
        return self.y + self.h

    @property
    def cx(self) -> float:
        return self.x + self.w / 2.0

    @property
    def cy(self) -> float:
        return self.y + self.h / 2.0

    @property
    def area(self) -> int:
        return self.w * self.h

    def to_list(self) -> list[int]:
        return [int(self.x), int(self.y), int(self.w), int(self.h)]

    def union(self, other: Box) -> Box:
        x, y = min(self.x, other.x), min(self.y, other.y)
        return Box(x, y, max(self.x2, other.x2) - x, max(self.y2, other.y2) - y)

    def iou(self, other: Box) -> float:
        ix = max(0, min(self.x2, other.x2) - max(self.x, other.x))
        iy = max(0, min(self.y2, other.y2) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    @staticmethod
    def union_all(boxes: list[Box]) -> Box:
        out = boxes[0]
        for b in boxes[1:]:
            out = out.union(b)
        return out


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture from a source. ``image`` is BGR (H, W, 3) or greyscale (H, W) uint8."""

    image: npt.NDArray[np.uint8]
    index: int
    ts: float  # wall-clock seconds (time.time()) when the frame was captured
    name: str = ""  # file name for file/dir sources, empty for cameras


@dataclass(frozen=True, slots=True)
class Region:
    """Where the detector found ink that may be one digit.

    ``mask`` is a uint8 image of the box's size (255 = this digit's own ink pixels), so
    the normaliser can keep only this digit's strokes and not a neighbour's or a grid line's.
    """

    box: Box
    mask: GrayImage | None = None
    # Touching digits: the detector may offer one ink blob both whole (parts=1) and cut
    # into n digits (parts=n), all with the same group; the classifier picks one way.
    group: int = -1
    parts: int = 1
    prior: float = 0.0  # what the shape says for this way of reading the group (log-odds)
    clipped: bool = False  # touches the image's edge (read only in stills: a tight crop)
    # ... or as a lattice: the whole (parts=1) and segments (parts=0) between cut points i, j
    span: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Digit:
    digit: int
    confidence: float
    box: Box
    clipped: bool = False  # its ink touches the image's edge: part of it may be cut off

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"digit": self.digit, "confidence": round(self.confidence, 3),
                               "box": self.box.to_list()}
        if self.clipped:
            out["clipped"] = True
        return out


@dataclass(frozen=True, slots=True)
class Number:
    """Adjacent digits of one line, left to right."""

    value: str
    confidence: float  # the product of the digits' confidences
    box: Box
    digits: tuple[Digit, ...] = ()
    sheet_box: tuple[float, float, float, float] | None = None  # x, y, w, h on the sheet (fractions)

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "confidence": round(self.confidence, 3), "box": self.box.to_list()}


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What the pipeline read in one frame (before smoothing across frames)."""

    digits: tuple[Digit, ...]
    numbers: tuple[Number, ...]
    latency_ms: float
    stage_ms: dict[str, float] = field(default_factory=dict)
    regions: int = 0  # candidate regions found by the detector (before the threshold)
    candidates: tuple[Box, ...] = ()  # their boxes (for recall in the bench, and annotations)
    clipped: int = 0  # digits left out because the frame's edge cuts them (streams only)
    sheet: Sheet | None = None  # the paper's outline, looked for only when fields are configured
    size: tuple[int, int] = (0, 0)  # the frame's width and height in pixels


def utc_timestamp(ts: float) -> str:
    """ISO 8601 with milliseconds and a ``Z``, as in the reading contract."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class Reading:
    """A stable reading: what goes to MQTT, the console and the HTTP API."""

    seq: int
    ts: float
    value: str | None
    confidence: float
    numbers: tuple[Number, ...]
    digits: tuple[Digit, ...]
    latency_ms: float
    model: str
    clipped: int = 0  # digits in view that the frame's edge cuts: not read, so maybe missing
    fields: dict[str, dict[str, Any]] | None = None  # each field's latest stable value (fields: configured)

    @property
    def number(self) -> int | None:
        return int(self.value) if self.value is not None and self.value.isdigit() else None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": utc_timestamp(self.ts),
            "value": self.value,
            "number": self.number,
            "confidence": round(self.confidence, 3),
            "numbers": [n.to_json() for n in self.numbers],
            "digits": [d.to_json() for d in self.digits],
            "latency_ms": round(self.latency_ms, 2),
            "model": self.model,
            "clipped": self.clipped,
            **({"fields": self.fields} if self.fields is not None else {}),
        }
