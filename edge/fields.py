"""Fields: which number on the sheet is which, and whether a value is plausible.

Service side (recognition only finds numbers and the sheet): each configured field takes
the numbers whose box lies mostly inside its region — in sheet coordinates when the
pipeline found the sheet, else in frame coordinates — and checks the value against its
format, min/max, direction (a meter only goes up) and largest change per hour, the last
two from the last accepted value. ``FieldTracker`` adds the per-field k-of-n vote across
frames, so each field is stabilised on its own, whatever else flickers in view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from edge.config import FieldConfig
from edge.types import Box, Digit, FrameResult, Number

Status = Literal["ok", "rejected", "missing"]
MIN_INSIDE = 0.5  # a number belongs to a region when at least this much of its box lies in it


@dataclass(frozen=True, slots=True)
class Accepted:
    """The last accepted value of a field (what the rules compare a new one with)."""

    number: float
    ts: float


@dataclass(frozen=True, slots=True)
class FieldValue:
    """What one field reads in one frame (or, from the tracker, stably)."""

    name: str
    status: Status
    anchor: Literal["sheet", "frame"]
    value: str | None = None
    number: float | int | None = None
    confidence: float = 0.0
    box: Box | None = None
    reason: str | None = None
    digits: tuple[Digit, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "number": self.number,
            "confidence": round(self.confidence, 3),
            "box": self.box.to_list() if self.box else None,
            "status": self.status,
            "reason": self.reason,
            "anchor": self.anchor,
        }


def _inside(box: tuple[float, float, float, float], region: tuple[float, float, float, float]) -> float:
    """The fraction of ``box``'s area that lies inside ``region`` (both x, y, w, h)."""
    bx, by, bw, bh = box
    rx, ry, rw, rh = region
    ix = max(0.0, min(bx + bw, rx + rw) - max(bx, rx))
    iy = max(0.0, min(by + bh, ry + rh) - max(by, ry))
    return ix * iy / (bw * bh) if bw > 0 and bh > 0 else 0.0


def apply_format(digits: str, fmt: str | None) -> tuple[str, float | int] | str:
    """(value, number) for digits read under ``fmt``, or why they do not fit it."""
    if fmt is None:
        return digits, int(digits)
    want = fmt.count("#")
    if len(digits) != want:
        return f"format: {len(digits)} digits read ({digits}), {fmt!r} expects {want}"
    if "." not in fmt:
        return digits, int(digits)
    whole = fmt.index(".")
    value = f"{digits[:whole]}.{digits[whole:]}"
    return value, float(value)


def check_rules(cfg: FieldConfig, number: float, ts: float, last: Accepted | None) -> str | None:
    """Why ``number`` is implausible for this field, or None. ``last``: the last accepted value."""
    if cfg.min is not None and number < cfg.min:
        return f"min: {number:g} is below {cfg.min:g}"
    if cfg.max is not None and number > cfg.max:
        return f"max: {number:g} is above {cfg.max:g}"
    if last is None:
        return None
    if cfg.monotonic == "increasing" and number < last.number:
        return f"decreased: {number:g} is below the last accepted {last.number:g}"
    if cfg.monotonic == "decreasing" and number > last.number:
        return f"increased: {number:g} is above the last accepted {last.number:g}"
    if cfg.max_rate is not None:
        hours = max(ts - last.ts, 1.0) / 3600.0  # at least a second: two frames apart are not 0 h
        rate = abs(number - last.number) / hours
        if rate > cfg.max_rate:
            return (f"max_rate: changed by {abs(number - last.number):g} in {hours * 3600:.0f} s "
                    f"({rate:.4g} per hour, at most {cfg.max_rate:g})")
    return None


def read_field(cfg: FieldConfig, result: FrameResult, ts: float = 0.0, last: Accepted | None = None) -> FieldValue:
    """The field's value in one frame: its numbers, formatted and checked."""
    sheet = result.sheet
    anchor: Literal["sheet", "frame"] = "sheet" if sheet is not None else "frame"
    fw, fh = result.size
    mine: list[Number] = []
    for n in result.numbers:
        if n.sheet_box is not None:
            where = n.sheet_box
        elif sheet is not None:
            where = sheet.box_in_sheet(n.box)
        elif fw > 0 and fh > 0:
            where = (n.box.x / fw, n.box.y / fh, n.box.w / fw, n.box.h / fh)
        else:
            continue
        if _inside(where, cfg.region) >= MIN_INSIDE:
            mine.append(n)
    if not mine:
        return FieldValue(cfg.name, "missing", anchor, reason="no number in the region")
    digits = "".join(n.value for n in mine)
    confidence = 1.0
    for n in mine:
        confidence *= n.confidence
    box = Box.union_all([n.box for n in mine])
    parts = tuple(d for n in mine for d in n.digits)
    formatted = apply_format(digits, cfg.format)
    if isinstance(formatted, str):
        return FieldValue(cfg.name, "rejected", anchor, digits, None, confidence, box, formatted, parts)
    value, number = formatted
    reason = check_rules(cfg, float(number), ts, last)
    return FieldValue(cfg.name, "rejected" if reason else "ok", anchor, value, number, confidence, box, reason,
                      parts)


def read_fields(fields: Sequence[FieldConfig], result: FrameResult) -> dict[str, FieldValue]:
    """Every field in one frame, without history (``predict``: format and min/max only)."""
    return {f.name: read_field(f, result) for f in fields}


class FieldTracker:
    """Per field: a k-of-n vote on the value across frames, then the rules against the last
    accepted value. ``update`` returns the fields whose stable value changed."""

    def __init__(self, fields: Sequence[FieldConfig], k: int, n: int,
                 last: dict[str, Accepted] | None = None) -> None:
        self.fields = tuple(fields)
        self.k = k
        self.last: dict[str, Accepted] = dict(last or {})
        self._votes: dict[str, deque[str | None]] = {f.name: deque(maxlen=n) for f in fields}
        self._stable: dict[str, str | None] = {}
        self.current: dict[str, FieldValue] = {}  # the latest stable value of each field
        self.rejected: dict[str, int] = {f.name: 0 for f in fields}
        self.accepted: dict[str, int] = {f.name: 0 for f in fields}

    def update(self, result: FrameResult, ts: float) -> list[FieldValue]:
        changed = []
        for cfg in self.fields:
            raw = read_field(cfg, result, ts, self.last.get(cfg.name))
            votes = self._votes[cfg.name]
            key = raw.value if raw.status != "missing" else None
            votes.append(key)
            if sum(1 for v in votes if v == key) < self.k:
                continue
            if cfg.name in self._stable and self._stable[cfg.name] == key:
                continue
            self._stable[cfg.name] = key
            self.current = {**self.current, cfg.name: raw}  # a new dict: the HTTP thread reads it unlocked
            if raw.status == "ok" and raw.number is not None:
                self.last[cfg.name] = Accepted(float(raw.number), ts)
                self.accepted[cfg.name] += 1
            elif raw.status == "rejected":
                self.rejected[cfg.name] += 1
            changed.append(raw)
        return changed


def field_outlines(fields: Sequence[FieldConfig], result: FrameResult) -> list[tuple[str, list[list[float]]]]:
    """Where each field is looked for in this frame: (name, four corners in frame pixels),
    the sheet's outline first (named ""), for the live view's picture."""
    sheet = result.sheet
    out: list[tuple[str, list[list[float]]]] = []
    if sheet is not None:
        out.append(("", [list(c) for c in sheet.corners]))
    w, h = result.size
    for f in fields:
        if sheet is not None:
            out.append((f.name, sheet.region_in_frame(f.region)))
        else:
            x, y, rw, rh = f.region
            out.append((f.name, [[x * w, y * h], [(x + rw) * w, y * h], [(x + rw) * w, (y + rh) * h],
                                 [x * w, (y + rh) * h]]))
    return out
