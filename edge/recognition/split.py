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
from typing import NamedTuple, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import DetectConfig
from edge.types import Box, GrayImage, Region

MAX_TILT = math.radians(15)
MIN_PART, MAX_PART = 0.2, 1.1  # a digit's width, as a fraction of its height
WIDTH_PRIOR = 3.0  # cost of a part 100% off the average width, in mean columns of ink
RUN_PRIOR = (0.0, 0.0, -0.1, -0.2)  # credit for a cut crossing 0, 1, 2, 3+ strokes (tuning scenes, cheques)
SLIVER = 0.25  # a cut part's pieces smaller than this x its biggest are a neighbour's


WHOLE_BONUS = 0.1  # log-confidence credit for leaving a region whole (tuning scenes)
WIDTH_WEIGHT = 1.0  # cost of a segment 100% off the mean width, in log-confidence
MAX_DIGITS = 6  # most digits one ink blob is read as
MINIMUM_REACH = 0.12  # a lattice cut point is a column with the least ink within this x height
MINIMUM_INK = 0.6  # ... and less than this x the blob's inkiest column
MERGE_NEAR = 0.08  # cut points closer than this x height are one
POINTS_PER_DIGIT = 2  # inner cut points at most per digit of the likeliest count, + 2 (the thinnest kept)
RING = -1  # ``Piece.parts`` of a lattice segment cut out around a hole (a loop of linked "0"s), not by columns
HOLE_HEIGHT = 0.4  # a ring's hole is at least this x the group's height (an "8"'s loops are smaller)
HOLE_WIDTH = 0.15  # ... and this wide (the lens where two rings overlap is narrower)
RING_REACH = 1.3  # a ring's ink lies within this x the stroke width of its hole
RING_GAP = 1.0  # a loop's gap up to this x the stroke width is closed
RING_LEFTOVER = 0.1  # more ink than this x the rings' over their columns: something else is there too


class _Confident(Protocol):  # edge.recognition.classify.Prediction, without importing the runtime
    @property
    def confidence(self) -> float: ...


class Piece(NamedTuple):
    """One way of reading (part of) a group, as ``split_group`` offers it."""

    box: Box
    mask: GrayImage
    parts: int  # 1: the group whole; n: one of n parts (shape-only cut); 0: a lattice segment
    prior: float  # what the shape says (log-odds credit), see ``pick_alternatives``
    span: tuple[int, int] | None = None  # a lattice segment: from cut point i to cut point j


def split_group(box: Box, mask: GrayImage, cfg: DetectConfig, alternatives: bool) -> list[Piece]:
    """The whole region and/or its cuts.

    Without ``alternatives`` the shape alone decides (``parts`` = n for each of n parts).
    With them, the region comes whole (``span`` = (0, last)) and as a lattice: the likely
    cut points (the thinnest places for each plausible digit count, and every local
    minimum of ink between), and every segment between two cut points that is as wide as a
    digit may be. All go into the same batched invoke; ``pick_alternatives`` then finds
    the path through the cut points that the classifier reads best (Casey and Lecolinet's
    over-segment-then-recognise scheme, as a dynamic programme).
    """
    aspect = box.w / max(1, box.h)
    whole_prior = WHOLE_BONUS - cfg.split_prior * abs(aspect / cfg.digit_aspect - 1)
    whole = [Piece(box, mask, 1, whole_prior)]
    if not cfg.split_touching or aspect <= (cfg.alt_aspect if alternatives else cfg.split_aspect):
        return whole
    ink = _Ink.of(box, mask)
    if ink is None:
        return whole
    guess = max(2, round(aspect / cfg.digit_aspect))
    if not alternatives:
        return _cut(ink, guess)
    counts = [n for n in sorted({max(2, guess - 1), guess, guess + 1})  # the tuning scenes' right count:
              if n <= MAX_DIGITS and box.w / n >= MIN_PART * box.h]  # guess 75%, guess + 1 24%
    if not counts:
        return whole  # more digits than one blob is read as
    rings = _rings(ink, mask)
    nodes = _cut_points(ink, counts, [u for r in rings for u in (r.start, r.end)])
    if len(nodes) < 3:
        return whole
    last = len(nodes) - 1
    lo, hi = MIN_PART * box.h, MAX_PART * box.h
    segments: dict[tuple[int, int], tuple[Box, GrayImage]] = {}
    for i, j in itertools.combinations(range(len(nodes)), 2):
        if (i, j) != (0, last) and lo <= nodes[j][0] - nodes[i][0] <= hi:
            part = _part(ink, nodes[i][0], nodes[j][0])
            if part is not None:
                segments[i, j] = part
    at = {u: k for k, (u, _) in enumerate(nodes)}
    ring_spans = {(at[r.start], at[r.end]): r for r in rings if r.start in at and r.end in at}
    on_path = _on_a_path(sorted({*segments, *ring_spans}), last)
    if not on_path:
        return whole  # no way through the cut points leaves only digits
    out = [Piece(box, mask, 1, whole_prior, (0, last))]
    for i, j in on_path:
        credit = RUN_PRIOR[min(nodes[i][1], 3)] if i > 0 else 0.0
        if (i, j) in segments:
            out.append(Piece(*segments[i, j], 0, credit, (i, j)))
        if (i, j) in ring_spans:
            out.append(Piece(ring_spans[i, j].box, ring_spans[i, j].mask, RING, 0.0, (i, j)))
    return out


class _Ring(NamedTuple):
    box: Box
    mask: GrayImage
    start: int  # where along the row the lattice enters and leaves it
    end: int


def _rings(ink: _Ink, mask: GrayImage) -> list[_Ring]:
    """Digits drawn as closed loops side by side ("000" written in one stroke, as on
    cheques), each cut out with the ink around its own hole.

    Linked "0"s often overlap: no column cut separates them, so the column lattice can only
    offer arcs ("(", ")", "x"), which read as 6s, 2s and 1s. The ink within a stroke's reach
    of each big hole is that loop. Offered only when the rings explain all the ink over their
    columns (a "6"'s stem, a "9"'s tail or an "8"'s second loop would be left over), and only
    as one more way through the lattice for the classifier to weigh.
    """
    h = ink.box.h
    found, _ = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    ink_px = mask > 0
    outline = sum(cv2.arcLength(c, True) for c in found)
    stroke = 2.0 * float(np.count_nonzero(ink_px)) / max(1.0, outline)  # 2 x area / outline
    # A loop left open by a pen's gap of about a stroke is a loop still.
    size = max(3, 2 * round(stroke * RING_GAP / 2) + 1)
    closed = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)))
    found, hierarchy = cv2.findContours(closed, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    holes = sorted((cv2.boundingRect(c), c) for c, link in zip(found, hierarchy.reshape(-1, 4), strict=True)
                   if link[3] >= 0)
    holes = [(r, c) for r, c in holes if r[3] >= HOLE_HEIGHT * h and r[2] >= HOLE_WIDTH * h]
    if len(holes) < 2 or any(b[0][0] < a[0][0] + a[0][2] / 2 for a, b in itertools.pairwise(holes)):
        return []  # fewer than two loops side by side (stacked ones are an "8")
    reach = RING_REACH * stroke + size / 2
    outside = np.full(mask.shape, 255, np.uint8)
    covered = np.zeros(mask.shape, np.bool_)
    rings: list[tuple[Box, GrayImage, npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
    for _, contour in holes:
        outside[:] = 255
        cv2.drawContours(outside, [contour], -1, 0, cv2.FILLED)
        ring = ink_px & (cv2.distanceTransform(outside, cv2.DIST_L2, 3) <= reach)
        ys, xs = np.nonzero(ring)
        if ys.size == 0:
            return []
        covered |= ring
        r0, r1, c0, c1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
        if r1 - r0 < 0.4 * h:
            return []
        part = (ring[r0:r1, c0:c1] * 255).astype(np.uint8)
        rings.append((Box(ink.box.x + c0, ink.box.y + r0, c1 - c0, r1 - r0), part, ys, xs))
    spans = [ink.along(ys, xs) for *_, ys, xs in rings]  # each ring's pixels along the row
    lo, hi = np.searchsorted(ink.u, [int(spans[0].min()), int(spans[-1].max()) + 1])
    between = int(np.count_nonzero(~covered[ink.ys[lo:hi], ink.xs[lo:hi]]))
    if between > RING_LEFTOVER * np.count_nonzero(covered):
        return []  # not only loops there
    # The lattice's nodes: where the first ring starts, between each two, where the last ends.
    edges = [int(spans[0].min())]
    edges += [(int(a.max()) + int(b.min()) + 1) // 2 for a, b in itertools.pairwise(spans)]
    edges.append(int(spans[-1].max()) + 1)
    snap = MIN_PART * h  # a lead-in or tail narrower than a digit is no digit of its own
    if edges[0] < snap:
        edges[0] = 0
    if ink.span - edges[-1] < snap:
        edges[-1] = ink.span
    return [_Ring(b, m, edges[k], edges[k + 1]) for k, (b, m, _, _) in enumerate(rings)]


def _on_a_path(segments: list[tuple[int, int]], last: int) -> list[tuple[int, int]]:
    """The segments that lie on some path from cut point 0 to ``last`` (the others would
    only cost crops in the invoke). ``segments`` come sorted by their first point."""
    ahead = {0}
    for i, j in segments:
        if i in ahead:
            ahead.add(j)
    behind = {last}
    for i, j in reversed(segments):
        if j in behind:
            behind.add(i)
    return [(i, j) for i, j in segments if i in ahead and j in behind]


def _cut_points(ink: _Ink, counts: Sequence[int], fixed: Sequence[int] = ()) -> list[tuple[int, int]]:
    """``(u, strokes crossed)`` of the lattice's cut points, first 0, last the far end;
    ``fixed`` ones (the rings' edges) are kept as they are."""
    h, cols = ink.box.h, ink.cols
    found = {c for n in counts for c in _best_cuts(cols, n, h)}
    reach = max(2, round(MINIMUM_REACH * h))
    inner = cols[reach:-reach] if cols.size > 2 * reach else cols[:0]
    if inner.size:
        windows = np.lib.stride_tricks.sliding_window_view(cols, 2 * reach + 1)
        minima = np.flatnonzero(inner <= windows.min(axis=1)) + reach
        found.update(int(c) for c in minima if cols[c] <= MINIMUM_INK * float(cols.max()))
    points: list[int] = []
    for c in sorted(c for c in found if 0 < c < ink.span):  # near neighbours: keep the thinner
        if points and c - points[-1] < MERGE_NEAR * h:
            if cols[c] < cols[points[-1]]:
                points[-1] = c
            continue
        points.append(c)
    most = POINTS_PER_DIGIT * max(counts) + 2  # bounds the segments, so the crops, per blob
    if len(points) > most:
        points = sorted(sorted(points, key=lambda c: float(cols[c]))[:most])
    inner_fixed = {c for c in fixed if 0 < c < ink.span}
    points = sorted({c for c in points if all(abs(c - f) >= MERGE_NEAR * h for f in inner_fixed)} | inner_fixed)
    return [(0, 0), *((c, _runs_at(ink, c)) for c in points), (ink.span, 0)]


class _Ink:
    """A group's ink pixels in row coordinates: ``u`` along the (tilted) row, ``v`` across."""

    def __init__(self, box: Box, ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp], theta: float) -> None:
        self.theta, self.u0 = theta, 0
        u = self.along(ys, xs)
        self.u0 = int(u.min())
        u -= self.u0
        order = np.argsort(u, kind="stable")
        self.box, self.u, self.ys, self.xs = box, u[order], ys[order], xs[order]
        self.v = (self.ys * math.cos(theta) - self.xs * math.sin(theta)).astype(np.float32)
        self.span = int(self.u[-1]) + 1
        counts = np.bincount(self.u, minlength=self.span).astype(np.float32)
        self.cols = np.convolve(counts, np.ones(3, np.float32) / 3, "same").astype(np.float32)

    def along(self, ys: npt.NDArray[np.intp], xs: npt.NDArray[np.intp]) -> npt.NDArray[np.int32]:
        """Where pixels of the box lie along the row, in the lattice's ``u``."""
        return (xs * math.cos(self.theta) + ys * math.sin(self.theta) + 0.5).astype(np.int32) - self.u0

    @classmethod
    def of(cls, box: Box, mask: GrayImage) -> _Ink | None:
        m = cv2.moments(mask, binaryImage=True)
        if m["m00"] == 0:
            return None
        ys, xs = np.nonzero(mask)
        # A tilted number's digits lean with it: cut perpendicular to the blob's long axis.
        theta = 0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"])
        return cls(box, ys, xs, max(-MAX_TILT, min(MAX_TILT, theta)))


def _cut(ink: _Ink, count: int) -> list[Piece]:
    """Cut into ``count`` parts across the row direction, at the thinnest places."""
    inner = _best_cuts(ink.cols, count, ink.box.h)
    parts = (_part(ink, a, b) for a, b in itertools.pairwise([0, *inner, ink.span]))
    return [Piece(*p, count, 0.0) for p in parts if p is not None]


def _runs_at(ink: _Ink, c: int) -> int:
    """How many strokes a cut at ``c`` crosses: two touching digits meet in one place,
    while a cut through a single "0", "8" or "2" crosses two or three strokes."""
    lo, hi = np.searchsorted(ink.u, [c, c + 1])
    return _runs(ink.v[lo:hi])


def _part(ink: _Ink, a: int, b: int) -> tuple[Box, GrayImage] | None:
    """The ink between ``a`` and ``b`` along the row, without a neighbour's slivers; None if
    what is left is too small to be a digit."""
    box, h = ink.box, ink.box.h
    lo, hi = np.searchsorted(ink.u, [a, b])
    if hi <= lo:
        return None
    py, px = ink.ys[lo:hi], ink.xs[lo:hi]
    r0, r1, c0, c1 = int(py.min()), int(py.max()) + 1, int(px.min()), int(px.max()) + 1
    if r1 - r0 < 0.4 * h or c1 - c0 < 2:
        return None  # a sliver of a neighbour, not a digit
    part = np.zeros((r1 - r0, c1 - c0), np.uint8)
    part[py - r0, px - c0] = 255
    cut = _drop_slivers(Box(box.x + c0, box.y + r0, c1 - c0, r1 - r0), part)
    return cut if cut is not None and cut[0].h >= 0.4 * h else None


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


def pick_alternatives(regions: Sequence[Region], predictions: Sequence[_Confident],
                      cfg: DetectConfig | None = None) -> list[int]:
    """Indices of the regions to keep: for each group, the whole or one way of cutting it.

    A group offered as a lattice (``Region.span``) keeps the best path through its cut
    points (``_best_path``); one offered as whole-or-n-parts keeps the likelier way.
    """
    cfg = cfg or DetectConfig()
    by_group: dict[int, list[int]] = {}
    for i, r in enumerate(regions):
        by_group.setdefault(r.group, []).append(i)
    keep: list[int] = []
    for group, idx in by_group.items():
        if group < 0:
            keep.extend(idx)
        elif any(regions[i].span is not None for i in idx):
            keep.extend(_best_path(regions, predictions, idx, cfg))
        else:
            keep.extend(_likelier_way(regions, predictions, idx))
    return sorted(keep)


def _logp(prediction: _Confident) -> float:
    return math.log(max(1e-6, prediction.confidence))


def _likelier_way(regions: Sequence[Region], predictions: Sequence[_Confident], idx: list[int]) -> list[int]:
    ways: dict[int, list[int]] = {}
    for i in idx:
        ways.setdefault(regions[i].parts, []).append(i)
    if len(ways) == 1:
        return idx
    def score(way: list[int]) -> float:
        return sum(_logp(predictions[i]) for i in way) / len(way) + regions[way[0]].prior
    return max(ways.values(), key=score)


def _best_path(regions: Sequence[Region], predictions: Sequence[_Confident], idx: list[int],
               cfg: DetectConfig) -> list[int]:
    """The whole region, or the path of n segments from the first cut point to the last
    that scores best: mean log-confidence of its segments, plus the mean credit of its
    cuts (strokes crossed), minus how far its parts' widths and count are from what the
    region's shape suggests. One dynamic programme per plausible count n (the means over a
    known n are sums, so each step's weight is known)."""
    whole = next((i for i in idx if regions[i].parts == 1), None)
    segments = [i for i in idx if regions[i].parts in (0, RING) and regions[i].span is not None]
    if whole is None:
        return idx
    box, last = regions[whole].box, (regions[whole].span or (0, 0))[1]
    aspect = box.w / max(1, box.h)
    guess = max(2, round(aspect / cfg.digit_aspect))
    rings = sum(regions[i].parts == RING for i in segments)
    best, best_score = [whole], _logp(predictions[whole]) + regions[whole].prior
    for n in range(max(2, min(guess - 1, rings)), min(MAX_DIGITS, guess + 1) + 1):
        expected = box.w / n
        # node -> (score, segments, digit widths beyond one that its rings stand for)
        paths: dict[int, tuple[float, list[int], float]] = {0: (0.0, [], 0.0)}
        for _ in range(n):
            step: dict[int, tuple[float, list[int], float]] = {}
            for i in segments:
                a, b = regions[i].span or (0, 0)
                if a not in paths:
                    continue
                width = (regions[i].box.w - expected) / expected
                gain = (_logp(predictions[i]) - WIDTH_WEIGHT * width * width) / n + regions[i].prior / (n - 1)
                total = paths[a][0] + gain
                wide = max(0.0, regions[i].box.w / (cfg.digit_aspect * box.h) - 1) if regions[i].parts == RING else 0.0
                if b not in step or total > step[b][0]:
                    step[b] = (total, [*paths[a][1], i], paths[a][2] + wide)
            paths = step
        if last in paths:
            # A ring is a wide digit: the count the aspect suggests is less for it.
            total = paths[last][0] - cfg.split_prior * abs(aspect / cfg.digit_aspect - n - paths[last][2])
            if total > best_score:
                best, best_score = paths[last][1], total
    return best
