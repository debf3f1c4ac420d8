"""A turned sheet: the angle its rows of digits run at, and the frame turned upright.

The classifier learnt upright digits (MNIST, ±12° of augmentation), and a sheet or a camera
turned by 20–30° turns every digit with it. A single digit does not say which way is up, but
a row of them does: neighbouring digits of one number sit side by side along the row. So the
angle is the median direction from each digit-sized region to its nearest neighbour along a
row. From 12° each digit's crop is turned back before it is classified (cheap), and rows
and gaps are told as if the frame were upright. From 16° the detector's own work suffers too
(cuts between touching digits lean too far, pieces merge across the row), so the frame is
turned upright (on a canvas big enough to lose nothing) and read again, and what was read
there is mapped back to frame pixels: twice the detection, only for such frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import Box, GrayImage, Region

MIN_TURN = 12.0  # degrees: below this the reader copes as it is (rows are chained at ±15°)
REDETECT_TURN = 16.0  # degrees: from here the frame is turned and detected again
MAX_TURN = 45.0  # neighbours further off horizontal are in the line above or below
NEAR = 2.0  # a neighbour along the row is at most this x the digits' height away
MIN_PAIRS = 2  # neighbour pairs needed before an angle is believed ...
LONE_PAIR_TURN = 15.0  # ... or one pair, this far off horizontal (one pair's centres say ±6°)
MAX_SPREAD = 8.0  # degrees: the pairs' angles agree this well (their median absolute deviation)


def row_angle(regions: Sequence[Region]) -> float:
    """Degrees (counter-clockwise in the picture, i.e. rows rising to the right) that the rows
    of digits run at; 0 when too few digits say so or they disagree."""
    whole = [r.box for r in regions if r.parts == 1 or r.group < 0]
    if len(whole) < 2:
        return 0.0
    cx = np.array([b.cx for b in whole])
    cy = np.array([b.cy for b in whole])
    h = np.array([b.h for b in whole], np.float64)
    dx, dy = cx[None, :] - cx[:, None], cy[:, None] - cy[None, :]  # dy > 0: the neighbour is higher
    dist = np.hypot(dx, dy)
    angle = np.degrees(np.arctan2(dy, dx))
    alike = (np.minimum(h[:, None], h) >= 0.6 * np.maximum(h[:, None], h))
    ok = (dx > 0) & (np.abs(angle) <= MAX_TURN) & alike & (dist <= NEAR * np.maximum(h[:, None], h))
    dist = np.where(ok, dist, np.inf)
    nearest = dist.argmin(axis=1)
    has = np.isfinite(dist[np.arange(len(whole)), nearest])
    if not has.any():
        return 0.0
    found = np.sort(angle[np.flatnonzero(has), nearest[has]])
    mid = float(found[len(found) // 2])
    if found.size < MIN_PAIRS:
        return mid if abs(mid) >= LONE_PAIR_TURN else 0.0
    spread = float(np.sort(np.abs(found - mid))[len(found) // 2])
    return mid if spread <= MAX_SPREAD else 0.0


def turned_back(box: Box, angle: float, shape: tuple[int, ...]) -> Box:
    """Where ``box`` would lie with the frame turned clockwise by ``angle`` degrees about its
    centre (its size kept): rows and gaps between digits are told there."""
    h, w = shape[0], shape[1]
    rad = math.radians(angle)
    dx, dy = box.cx - w / 2, box.cy - h / 2
    # Clockwise in the picture (y down) undoes rows rising to the right.
    cx = w / 2 + dx * math.cos(rad) - dy * math.sin(rad)
    cy = h / 2 + dx * math.sin(rad) + dy * math.cos(rad)
    return Box(round(cx - box.w / 2), round(cy - box.h / 2), box.w, box.h)


@dataclass(frozen=True)
class Upright:
    """The frame turned upright by ``angle`` degrees, and the way back to frame pixels."""

    image: GrayImage
    back: npt.NDArray[np.float64]  # 2x3 affine: upright pixels → frame pixels
    shape: tuple[int, int]  # the frame's height, width

    @classmethod
    def turn(cls, gray: GrayImage, angle: float) -> Upright:
        h, w = gray.shape
        rad = math.radians(abs(angle))
        cw, ch = math.ceil(w * math.cos(rad) + h * math.sin(rad)), math.ceil(w * math.sin(rad) + h * math.cos(rad))
        # Turning clockwise by the rows' angle makes them horizontal (OpenCV's positive
        # angle is counter-clockwise with y down, like ours).
        m = cv2.getRotationMatrix2D((w / 2, h / 2), -angle, 1.0)
        m[0, 2] += (cw - w) / 2
        m[1, 2] += (ch - h) / 2
        image = cv2.warpAffine(gray, m, (cw, ch), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cls(image, cv2.invertAffineTransform(m), (h, w))

    def box_back(self, region: Region) -> Box:
        """The tight box, in frame pixels, of the region's own ink (its box's corners would
        give a box too big for a turned digit)."""
        box = region.box
        if region.mask is not None and region.mask.any():
            ys, xs = np.nonzero(region.mask)
            pts = np.stack([xs + box.x + 0.5, ys + box.y + 0.5], axis=1)
        else:
            pts = np.array([[box.x, box.y], [box.x2, box.y], [box.x, box.y2], [box.x2, box.y2]], np.float64)
        mapped = pts @ self.back[:, :2].T + self.back[:, 2]
        h, w = self.shape
        x0, y0 = (max(0, math.floor(v)) for v in mapped.min(axis=0))
        x1, y1 = min(w, math.ceil(mapped[:, 0].max())), min(h, math.ceil(mapped[:, 1].max()))
        return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))
