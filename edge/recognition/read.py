"""Digits → numbers in reading order, and the k-of-n stabiliser across frames.

Grouping is relative to digit height, so it works the same for 20 px and 200 px digits.
Lines are built by chaining each digit to the line whose last digit overlaps it
vertically, which tolerates a tilted sheet (±15°) where a fixed row band would not.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from edge.types import Box, Digit, FrameResult, Number


def _vertical_overlap(a: Box, b: Box) -> float:
    inter = min(a.y2, b.y2) - max(a.y, b.y)
    return inter / min(a.h, b.h) if min(a.h, b.h) > 0 else 0.0


def _at(d: Digit, layout: Mapping[int, Box] | None) -> Box:
    """Where ``d`` lies in the picture its rows are read in (see ``split_lines``)."""
    return d.box if layout is None else layout[id(d)]


def split_lines(digits: Sequence[Digit], layout: Mapping[int, Box] | None = None) -> list[list[Digit]]:
    """Lines top to bottom, each left to right. ``layout``: where each digit (by ``id``)
    lies in the picture its rows are read in, when that is not its ``box`` (a turned sheet)."""
    lines: list[list[Digit]] = []
    for d in sorted(digits, key=lambda d: _at(d, layout).x):
        best: list[Digit] | None = None
        best_overlap = 0.4  # at least this much of the smaller height must overlap
        for line in lines:
            last = line[-1]
            if _at(last, layout).cx >= _at(d, layout).cx:
                continue
            overlap = _vertical_overlap(_at(last, layout), _at(d, layout))
            if overlap > best_overlap:
                best, best_overlap = line, overlap
        if best is None:
            lines.append([d])
        else:
            best.append(d)
    lines.sort(key=lambda line: sum(_at(d, layout).cy for d in line) / len(line))
    return lines


MARK_HEIGHT = 0.3  # in a number, "digits" shorter than this x its tallest are a dash or a stop (cheques)


def group_numbers(digits: Sequence[Digit], gap_factor: float, layout: Mapping[int, Box] | None = None,
                  drop_marks: bool = False) -> tuple[tuple[Digit, ...], tuple[Number, ...]]:
    """Digits in reading order, and the numbers they form (a wide gap starts a new number).
    ``layout`` as for ``split_lines``.

    With ``drop_marks`` (what the classifier found, not a truth), a "digit" much shorter
    than the digits it stands with (the dash after a cheque's amount, an underline's end,
    a full stop) is left out: handwritten digits of one number vary in height, but hardly
    ever by two thirds."""
    ordered: list[Digit] = []
    numbers: list[Number] = []
    for line in split_lines(digits, layout):
        runs: list[list[Digit]] = [[line[0]]]
        for prev, cur in pairwise(line):
            a, b = _at(prev, layout), _at(cur, layout)
            if b.x - a.x2 > gap_factor * max(a.h, b.h):
                runs.append([])
            runs[-1].append(cur)
        for run in runs:
            tallest = max(_at(d, layout).h for d in run)
            kept = [d for d in run if _at(d, layout).h >= MARK_HEIGHT * tallest] if drop_marks else run
            ordered.extend(kept)
            numbers.append(make_number(kept))
    return tuple(ordered), tuple(numbers)


def make_number(digits: Sequence[Digit]) -> Number:
    confidence = 1.0
    for d in digits:
        confidence *= d.confidence
    return Number(
        value="".join(str(d.digit) for d in digits),
        confidence=confidence,
        box=Box.union_all([d.box for d in digits]),
        digits=tuple(digits),
    )


def reading_value(numbers: Sequence[Number]) -> str | None:
    """One number → its digits; several → joined by spaces in reading order; none → None."""
    return " ".join(n.value for n in numbers) if numbers else None


@dataclass(frozen=True, slots=True)
class StableRead:
    value: str | None
    confidence: float
    numbers: tuple[Number, ...]
    digits: tuple[Digit, ...]


class Stabilizer:
    """A value becomes the stable reading once seen in ``k`` of the last ``n`` frames.

    The candidate is always the newest frame's reading, so a value that never stood on the
    paper (a mix of the old and new number during a change) cannot be reported. Each of
    its digits is matched by position to the digits of the earlier frames and must carry
    the same label in ``k`` of them; a flicker in an older frame costs one vote, not the
    whole number.
    """

    def __init__(self, k: int, n: int, gap_factor: float) -> None:
        self.k, self.n, self.gap_factor = k, n, gap_factor
        self._history: deque[FrameResult] = deque(maxlen=n)
        self._stable: StableRead | None = None

    @property
    def stable(self) -> StableRead | None:
        return self._stable

    def update(self, result: FrameResult) -> StableRead | None:
        """Feed one frame; return the new stable reading when it changed, else None."""
        if len(self._history) == self.n and all(r is result for r in self._history):
            return None  # the same result again (a frame the change gate skipped): the vote cannot change
        self._history.append(result)
        candidate = self._vote(result)
        if candidate is None:
            return None
        if self._stable is not None and candidate.value == self._stable.value:
            self._stable = candidate  # keep boxes and confidence fresh without re-announcing
            return None
        self._stable = candidate
        return candidate

    def _vote(self, latest: FrameResult) -> StableRead | None:
        if not latest.digits:
            empty = sum(1 for r in self._history if not r.digits)
            return StableRead(None, 1.0, (), ()) if empty >= self.k else None
        voted: list[Digit] = []
        for d in latest.digits:
            support = [m for r in self._history if (m := _nearest(d.box, r.digits)) is not None and m.digit == d.digit]
            if len(support) < self.k:
                return None
            voted.append(Digit(d.digit, sum(m.confidence for m in support) / len(support), d.box))
        digits, numbers = group_numbers(voted, self.gap_factor)
        confidence = min((n.confidence for n in numbers), default=1.0)
        return StableRead(reading_value(numbers), confidence, numbers, digits)


def _nearest(box: Box, candidates: Sequence[Digit]) -> Digit | None:
    """The digit whose centre is closest to ``box``'s, within half a digit height."""
    best: Digit | None = None
    best_d2 = (0.5 * box.h) ** 2
    for c in candidates:
        d2 = (c.box.cx - box.cx) ** 2 + (c.box.cy - box.cy) ** 2
        if d2 <= best_d2:
            best, best_d2 = c, d2
    return best
