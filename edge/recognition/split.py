"""Touching digits: cut a region much wider than a digit at column-projection minima.

Shape alone cannot tell a wide "0" or "2" from two digits that touch ("10", "35"): their
boxes have the same aspect ratios. So a region that is wide enough to be either is offered
both ways — whole, and cut into the likely number of digits — all in the same batched
invoke, and ``pick_alternatives`` keeps the reading the classifier is more sure of, with
a prior from the region's aspect ratio (measured on the tuning scenes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import DetectConfig
from edge.types import Box, GrayImage, Region

MAX_TILT = math.radians(15)
MIN_PART, MAX_PART = 0.2, 1.1  # a digit's width, as a fraction of its height
WIDTH_PRIOR = 3.0  # cost of a part 100% off the average width, in mean columns of ink
RUN_PRIOR = (0.0, 0.0, -0.25, -0.25)  # credit for a cut crossing 0, 1, 2, 3+ strokes
SLIVER = 0.25  # a cut part's pieces smaller than this x its biggest are a neighbour's


WHOLE_BONUS = 0.25  # log-confidence credit for leaving a region whole (tuning scenes)


class _Confident(Protocol):  # edge.recognition.classify.Prediction, without importing the runtime
    @property
    def confidence(self) -> float: ...


def split_group(box: Box, mask: GrayImage, cfg: DetectConfig,
                alternatives: bool) -> list[tuple[Box, GrayImage, int, float]]:
    """``(box, mask, parts, prior)``: the whole region (parts=1) and/or its cuts (parts=n).

    ``prior`` is what the shape says for that way of reading the group, as a log-odds
    credit added to the classifier's mean log-confidence (see ``pick_alternatives``).
    """
    aspect = box.w / max(1, box.h)
    whole = [(box, mask, 1, WHOLE_BONUS - cfg.split_prior * abs(aspect / cfg.digit_aspect - 1))]
    if not cfg.split_touching or aspect <= (cfg.alt_aspect if alternatives else cfg.split_aspect):
        return whole
    ink = _Ink.of(box, mask)
    if ink is None:
        return whole
    guess = max(2, round(aspect / cfg.digit_aspect))
    if not alternatives:
        return _cut(ink, guess)[0]
    out = list(whole)
    for n in sorted({max(2, guess - 1), guess, guess + 1}):  # the tuning scenes' right count: guess 75%, guess + 1 24%
        if n <= 6 and box.w / n >= 0.2 * box.h:
            parts, runs = _cut(ink, n)
            if len(parts) < n:
                continue  # a part too small to be a digit: this is not n digits
            prior = -cfg.split_prior * abs(aspect / cfg.digit_aspect - n) + RUN_PRIOR[min(runs, 3)]
            out.extend((b, m, k, prior) for b, m, k, _ in parts)
    return out


class _Ink:
    """A group's ink pixels in row coordinates: ``u`` along the (tilted) row, ``v`` across."""

    def __init__(self, box: Box, ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp], theta: float) -> None:
        u = (xs * math.cos(theta) + ys * math.sin(theta) + 0.5).astype(np.int32)
        u -= int(u.min())
        order = np.argsort(u, kind="stable")
        self.box, self.u, self.ys, self.xs = box, u[order], ys[order], xs[order]
        self.v = (self.ys * math.cos(theta) - self.xs * math.sin(theta)).astype(np.float32)
        self.span = int(self.u[-1]) + 1
        counts = np.bincount(self.u, minlength=self.span).astype(np.float32)
        self.cols = np.convolve(counts, np.ones(3, np.float32) / 3, "same").astype(np.float32)

    @classmethod
    def of(cls, box: Box, mask: GrayImage) -> _Ink | None:
        m = cv2.moments(mask, binaryImage=True)
        if m["m00"] == 0:
            return None
        ys, xs = np.nonzero(mask)
        # A tilted number's digits lean with it: cut perpendicular to the blob's long axis.
        theta = 0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"])
        return cls(box, ys, xs, max(-MAX_TILT, min(MAX_TILT, theta)))


def _cut(ink: _Ink, count: int) -> tuple[list[tuple[Box, GrayImage, int, float]], int]:
    """Cut into ``count`` parts across the row direction, at the thinnest places.

    Also returns the most strokes any cut crosses: two touching digits meet in one
    place, while a cut through a single "0", "8" or "2" crosses two or three strokes.
    """
    box, h = ink.box, ink.box.h
    inner = _best_cuts(ink.cols, count, h)
    bounds = np.searchsorted(ink.u, [0, *inner, ink.span + 1])
    runs = 0
    for c in inner:
        lo, hi = np.searchsorted(ink.u, [c, c + 1])
        runs = max(runs, _runs(ink.v[lo:hi]))
    parts: list[tuple[Box, GrayImage, int, float]] = []
    for a, b in itertools.pairwise(bounds):
        if b <= a:
            continue
        py, px = ink.ys[a:b], ink.xs[a:b]
        r0, r1, c0, c1 = int(py.min()), int(py.max()) + 1, int(px.min()), int(px.max()) + 1
        if r1 - r0 < 0.4 * h or c1 - c0 < 2:
            continue  # a sliver of a neighbour, not a digit
        part = np.zeros((r1 - r0, c1 - c0), np.uint8)
        part[py - r0, px - c0] = 255
        cut = _drop_slivers(Box(box.x + c0, box.y + r0, c1 - c0, r1 - r0), part)
        if cut is not None and cut[0].h >= 0.4 * h:
            parts.append((*cut, count, 0.0))
    return parts, runs


def _runs(v: npt.NDArray[np.float32]) -> int:
    """Separate runs of ink along one cut line (positions across the row direction)."""
    if v.size == 0:
        return 0
    v = np.sort(v)
    return 1 + int(np.count_nonzero(np.diff(v) > 2.0))


def _drop_slivers(box: Box, part: GrayImage) -> tuple[Box, GrayImage] | None:
    """Keep the part's main strokes; bits of a neighbour the cut sliced off are dropped."""
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(part, 8, cv2.CV_32S, cv2.CCL_GRANA)
    if n <= 2:
        return (box, part) if n == 2 else None
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= SLIVER * areas.max()) + 1
    if keep.size == n - 1:
        return box, part
    mask = np.isin(labels, keep)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    out = (mask[r0:r1, c0:c1] * 255).astype(np.uint8)
    return Box(box.x + c0, box.y + r0, c1 - c0, r1 - r0), out


def _best_cuts(cols: npt.NDArray[np.float32], count: int, h: int) -> list[int]:
    """``count - 1`` cut positions with the least ink across them, every part between
    ``MIN_PART`` and ``MAX_PART`` x the height wide (dynamic programming over columns)."""
    span = cols.size
    lo, hi = max(1, int(MIN_PART * h)), max(2, int(MAX_PART * h))
    if count * lo >= span:  # too narrow for the widths: equal parts
        return [round(i * span / count) for i in range(1, count)]
    big = np.float32(1e9)
    # Parts much narrower or wider than the average part cost extra: the thinnest
    # column is often a digit's own tail, not the gap between two digits.
    expected = span / count
    weight = WIDTH_PRIOR * float(cols.mean())

    def prior(widths: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return (weight * ((widths - expected) / expected) ** 2).astype(np.float32)

    cost = np.full(span, big, np.float32)  # best cost with the last cut at each column
    first = np.arange(lo, min(hi, span - 1) + 1)
    cost[first] = cols[first] + prior(first)
    back: list[npt.NDArray[np.intp]] = []
    width = hi - lo + 1
    step_prior = prior(hi - np.arange(width))  # window offset k = a part hi - k wide
    for _ in range(count - 2):
        padded = np.concatenate([np.full(hi, big, np.float32), cost])
        # windows[p] = cost[p - hi .. p - lo], the places the previous cut may be
        windows = np.lib.stride_tricks.sliding_window_view(padded, width)[:span] + step_prior
        arg = windows.argmin(axis=1)
        cost = windows[np.arange(span), arg] + cols
        back.append(np.arange(span) - hi + arg)
    last = np.arange(span)
    ok = (span - last >= lo) & (span - last <= hi)
    if not ok.any():
        return [round(i * span / count) for i in range(1, count)]
    p = int(np.argmin(np.where(ok, cost + prior(span - last), big)))
    cuts = [p]
    for b in reversed(back):
        p = int(b[p])
        cuts.append(p)
    return sorted(cuts)


def pick_alternatives(regions: Sequence[Region], predictions: Sequence[_Confident]) -> list[int]:
    """Indices of the regions to keep: for each group, the whole or one way of cutting it."""
    by_group: dict[int, dict[int, list[int]]] = {}
    for i, r in enumerate(regions):
        by_group.setdefault(r.group, {}).setdefault(r.parts, []).append(i)
    keep: list[int] = []
    for group, ways in by_group.items():
        if group < 0 or len(ways) == 1:
            keep.extend(i for idx in ways.values() for i in idx)
            continue
        best, best_score = -1, -math.inf
        for n, idx in ways.items():
            logp = sum(math.log(max(1e-6, predictions[i].confidence)) for i in idx) / len(idx)
            score = logp + regions[idx[0]].prior
            if score > best_score:
                best, best_score = n, score
        keep.extend(ways[best])
    return sorted(keep)
