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

from edge.config import DetectConfig
from edge.types import Box, GrayImage, Region

MAX_TILT = math.radians(15)


WHOLE_BONUS = 0.5  # log-confidence credit for leaving a region whole (tuning scenes)


class _Confident(Protocol):  # edge.classify.Prediction, without importing the runtime
    @property
    def confidence(self) -> float: ...


def split_group(box: Box, mask: GrayImage, cfg: DetectConfig,
                alternatives: bool) -> list[tuple[Box, GrayImage, int]]:
    """``(box, mask, parts)`` triples: the whole region (parts=1) and/or its cuts (parts=n)."""
    aspect = box.w / max(1, box.h)
    whole = [(box, mask, 1)]
    if not cfg.split_touching:
        return whole
    if not alternatives:
        if aspect <= cfg.split_aspect:
            return whole
        return _cut(box, mask, max(2, round(aspect / cfg.digit_aspect)))
    if aspect <= cfg.alt_aspect:
        return whole
    out = list(whole)
    guess = max(2, round(aspect / cfg.digit_aspect))
    for n in sorted({max(2, guess - 1), guess, guess + 1}):
        if n <= 6 and box.w / n >= 0.2 * box.h:
            out.extend(_cut(box, mask, n))
    return out


def _cut(box: Box, mask: GrayImage, count: int) -> list[tuple[Box, GrayImage, int]]:
    """Cut into ``count`` parts across the row direction, at the thinnest places."""
    h = box.h
    m = cv2.moments(mask, binaryImage=True)
    if m["m00"] == 0:
        return []
    ys, xs = np.nonzero(mask)
    # A tilted number's digits lean with it: cut perpendicular to the blob's long axis.
    theta = 0.5 * math.atan2(2 * m["mu11"], m["mu20"] - m["mu02"])
    theta = max(-MAX_TILT, min(MAX_TILT, theta))
    u = (xs * math.cos(theta) + ys * math.sin(theta) + 0.5).astype(np.int32)
    u -= int(u.min())
    span = int(u.max()) + 1
    cols = np.convolve(np.bincount(u, minlength=span).astype(np.float32), np.ones(3, np.float32) / 3, "same")
    cuts = [0]
    for i in range(1, count):
        step = (span - cuts[-1]) / (count - i + 1)  # re-centred on what is left
        lo = max(int(cuts[-1] + 0.65 * step), cuts[-1] + 1)
        hi = min(int(cuts[-1] + 1.35 * step) + 1, span - 1)
        cuts.append(lo + int(np.argmin(cols[lo:hi])) if hi > lo else int(cuts[-1] + step))
    cuts.append(span + 1)
    parts: list[tuple[Box, GrayImage, int]] = []
    for a, b in itertools.pairwise(cuts):
        sel = (u >= a) & (u < b)
        if not sel.any():
            continue
        py, px = ys[sel], xs[sel]
        r0, r1, c0, c1 = int(py.min()), int(py.max()) + 1, int(px.min()), int(px.max()) + 1
        if r1 - r0 < 0.4 * h or c1 - c0 < 2:
            continue  # a sliver of a neighbour, not a digit
        part = np.zeros((r1 - r0, c1 - c0), np.uint8)
        part[py - r0, px - c0] = 255
        parts.append((Box(box.x + c0, box.y + r0, c1 - c0, r1 - r0), part, count))
    return parts


def pick_alternatives(regions: Sequence[Region], predictions: Sequence[_Confident],
                      cfg: DetectConfig) -> list[int]:
    """Indices of the regions to keep: for each group, the whole or one way of cutting it."""
    by_group: dict[int, dict[int, list[int]]] = {}
    for i, r in enumerate(regions):
        by_group.setdefault(r.group, {}).setdefault(r.parts, []).append(i)
    keep: list[int] = []
    for group, ways in by_group.items():
        if group < 0 or len(ways) == 1:
            keep.extend(i for idx in ways.values() for i in idx)
            continue
        whole = regions[ways[1][0]].box if 1 in ways else None
        aspect = whole.w / max(1, whole.h) if whole is not None else 2.0
        best, best_score = -1, -math.inf
        for n, idx in ways.items():
            logp = sum(math.log(max(1e-6, predictions[i].confidence)) for i in idx) / len(idx)
            score = logp - cfg.split_prior * abs(aspect / cfg.digit_aspect - n) + (WHOLE_BONUS if n == 1 else 0.0)
            if score > best_score:
                best, best_score = n, score
        keep.extend(ways[best])
    return sorted(keep)
