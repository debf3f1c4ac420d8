"""Cut ruled and squared paper lines out of a binary ink image, at any tilt.

A line is a thin straight structure much longer than any digit. Its direction is found by a
Hough transform on a 1/4-size max-pooled copy (two narrow angle bands: near-horizontal and,
on the transposed image, near-vertical). Along that direction a morphological opening with
a one-pixel line kernel keeps only long straight runs; what is also thick (a big digit's
straight stroke) is given back. The line pixels are removed, and where a line crossed a
stroke the gap is bridged again by a short closing across the line, limited to the cut band.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import GrayImage

HOUGH_BAND = math.radians(20)  # how far from horizontal/vertical a sheet may be turned
MIN_SPAN = 0.45  # a line spans at least this fraction of the frame (width or height)
KERNEL_FRAC = 0.12  # opening length, as a fraction of the frame's shorter side
EDGE = 3  # quarter-size pixels along the frame's edges left out of the line search
LONE_FRAC = 0.75  # ... and a lone line at least this long
STILL_LONG_FRAC = 0.9  # ... in a photo somebody took of their digits: ruling crosses it
ACROSS_FACTOR = 1.5  # ... or runs longer than this x the photo's other side (a cheque's baseline)
DENSE_WEAK = 0.25  # a weak mask inking more than this share of the frame may be texture
ROW_TOLERANCE = 2.0  # half-size pixels across a line that its broken pieces may stray
ROW_INKED = 0.5  # ... and the share of its length they cover at least
LONG_FRAC = 0.3  # a ruling piece is at least this long (fraction of the frame's width/height)


def remove_lines(ink: GrayImage, weak: GrayImage | None = None, long_frac: float = LONG_FRAC) -> GrayImage:
    """``ink`` (0/255) without long thin straight lines; returns ``ink`` itself if none.

    ``weak`` is the same picture thresholded more permissively: a faint line that breaks
    up into dashes in ``ink`` is still continuous there, so it is found and removed whole.
    ``long_frac``: how much of the frame a piece of ruling spans at least (in a tight photo
    of one digit, its own straight strokes span most of the frame: ``STILL_LONG_FRAC``).
    """
    h, w = ink.shape
    if min(h, w) < 16:
        return ink
    if min(h, w) < 64:  # a small scan (a cheque's amount box): look for lines at 2-4x
        f = 2  # its half-size search then runs at the scan's own pixels (line widths as they are)
        size = (w * f, h * f)
        big = remove_lines(cv2.resize(ink, size, interpolation=cv2.INTER_NEAREST),
                           None if weak is None else cv2.resize(weak, size, interpolation=cv2.INTER_NEAREST),
                           long_frac)
        if big is ink:
            return ink
        out: GrayImage = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
        return np.where(out >= 128, ink, 0).astype(np.uint8)
    src = ink if weak is None else weak
    found, boxes = _find_lines(src, long_frac)
    if src is weak and cv2.countNonZero(weak) > DENSE_WEAK * weak.size:
        # A faint line is continuous in ``weak``; but on a patterned ground (a cheque's
        # security print) ``weak`` is texture all over and a line may not stand out: look
        # in ``ink`` too, and take the lines of both.
        more, more_boxes = _find_lines(ink, long_frac)
        if more_boxes:
            found = [a if b is None else b if a is None else a | b for a, b in zip(found, more, strict=True)]
            boxes += more_boxes
            src = ink  # a line crossing strokes is told by its run across them in ink, not in texture
    if not boxes:
        return ink
    # Work at full size only where the lines are (one stray line: a thin band).
    run = max(5, round(7 * min(h, w) / 480)) | 1
    x0 = max(0, 2 * min(b[0] for b in boxes) - run)
    y0 = max(0, 2 * min(b[1] for b in boxes) - run)
    x1 = min(w, 2 * max(b[0] + b[2] for b in boxes) + run)
    y1 = min(h, 2 * max(b[1] + b[3] for b in boxes) + run)
    roi = np.s_[y0:y1, x0:x1]
    near = [None if f is None else cv2.dilate(cv2.resize(f, (w, h), interpolation=cv2.INTER_NEAREST)[roi],
                                              np.ones((3, 3), np.uint8)) for f in found]
    weak_roi, ink_roi = src[roi], ink[roi]
    # Pixel-exact: near a found line, a pixel is ruling only if the ink run through it,
    # across the line, is no longer than a line is thick. A stroke that crosses the line
    # runs on beyond it and stays. (The other direction's lines are left out of that run,
    # or every grid crossing would count as a stroke.)
    band = np.zeros_like(ink_roi)
    for i, size in ((0, (1, run)), (1, (run, 1))):
        here, other = near[i], near[1 - i]
        if here is not None:
            strokes = weak_roi if other is None else weak_roi & ~other
            stroke = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, size))
            band |= here & weak_roi & ~stroke
    clean_roi = ink_roi & ~band
    for i, size in ((0, (1, 9)), (1, (9, 1))):
        if near[i] is not None:
            closed = cv2.morphologyEx(clean_roi, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, size))
            clean_roi |= closed & band & ink_roi
    clean: GrayImage = ink.copy()
    clean[roi] = clean_roi
    return clean


def _find_lines(src: GrayImage, long_frac: float) -> tuple[list[GrayImage | None], list[tuple[int, int, int, int]]]:
    """Where the long lines of ``src`` are: per direction (horizontal, vertical) a half-size
    mask or None, and their half-size bounding boxes."""
    h, w = src.shape
    half = cv2.resize(src, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    _, half = cv2.threshold(half, 0, 255, cv2.THRESH_BINARY)
    quarter = cv2.resize(half, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    # The frame's own edges are no ruling (vignetting makes a faint band along them).
    edge = EDGE if min(h, w) >= 256 else 1  # a small scan's baseline runs close to its edge
    quarter[:edge, :] = 0
    quarter[-edge:, :] = 0
    quarter[:, :edge] = 0
    quarter[:, -edge:] = 0
    length = max(9, int(KERNEL_FRAC * min(h, w) / 2)) | 1
    found: list[GrayImage | None] = []  # per direction (horizontal, vertical), half size
    boxes: list[tuple[int, int, int, int]] = []
    for vertical in (False, True):
        img = quarter.T if vertical else quarter
        angle = _dominant_angle(np.ascontiguousarray(img))
        lines = _long_lines(half, angle, length, vertical, long_frac) if angle is not None else []
        if not lines:
            found.append(None)
            continue
        mask = np.zeros_like(half)
        cv2.drawContours(mask, lines, -1, 255, cv2.FILLED)
        found.append(mask)
        boxes.extend(cv2.boundingRect(c) for c in lines)
    return found, boxes


def _long_lines(half: GrayImage, angle: float, length: int, vertical: bool,
                long_frac: float = LONG_FRAC) -> list[npt.NDArray[np.int32]]:
    """Outlines (half size) of the thin straight runs at ``angle`` long enough to be ruling."""
    kernel = _line_kernel(angle, length)
    if vertical:
        kernel = np.ascontiguousarray(kernel.T)
    # Thicken across the line by a pixel: a one-pixel digital line and the kernel's own
    # staircase rarely line up all along, and the opening would miss pieces.
    fat = cv2.dilate(half, np.ones((2, 1) if not vertical else (1, 2), np.uint8))
    opened = cv2.morphologyEx(fat, cv2.MORPH_OPEN, kernel)
    # Give back what is thick across the line direction: strokes, not ruling.
    across = (1, 6) if not vertical else (6, 1)
    thick = cv2.morphologyEx(opened, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, across))
    opened &= ~cv2.dilate(thick, np.ones((3, 3), np.uint8))
    # Only what runs on far beyond a digit is ruling; a digit's straight stroke is not.
    along, across = (half.shape[0], half.shape[1]) if vertical else (half.shape[1], half.shape[0])
    span = long_frac * along
    if long_frac > LONG_FRAC:  # a still: ruling crosses the photo, or is longer than any digit in it
        span = min(span, ACROSS_FACTOR * across)
    contours, _ = cv2.findContours(opened, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    long = [c for c in contours if max(cv2.boundingRect(c)[2:]) >= span]
    lengths = [max(cv2.boundingRect(c)[2:]) for c in long]
    if not long:  # digits standing on the line cut it where they touch: its pieces, in a row
        long, extent = _in_a_row(contours, angle, vertical, span)
        lengths = [extent] if long else []
    # One line alone is no ruling unless it runs nearly across the frame: a big "1" or
    # a "7"'s stem in a tight photo is a long straight stroke too.
    if len(lengths) == 1 and lengths[0] < LONE_FRAC * span / long_frac:
        return []
    return long


def _in_a_row(contours: Sequence[npt.NDArray[np.int32]], angle: float, vertical: bool,
              span: float) -> tuple[list[npt.NDArray[np.int32]], float]:
    """The pieces of one broken line: on one line at ``angle`` (within 2 px across it),
    reaching ``span`` from the first to the last and inked along half of that at least."""
    if len(contours) < 2:
        return [], 0.0
    cos, sin = math.cos(angle), math.sin(angle)
    pieces = []
    for k, c in enumerate(contours):
        pts = c.reshape(-1, 2).astype(np.float64)
        x, y = (pts[:, 1], pts[:, 0]) if vertical else (pts[:, 0], pts[:, 1])
        along, across = x * cos + y * sin, y * cos - x * sin
        pieces.append((float(across.mean()), float(along.min()), float(along.max()), k))
    pieces.sort()
    best: tuple[list[int], float] = ([], 0.0)
    start = 0
    for end in range(1, len(pieces) + 1):
        if end < len(pieces) and pieces[end][0] - pieces[end - 1][0] <= ROW_TOLERANCE:
            continue
        row = pieces[start:end]
        start = end
        extent = max(p[2] for p in row) - min(p[1] for p in row)
        inked = sum(p[2] - p[1] for p in row)
        if len(row) > 1 and extent >= span and inked >= ROW_INKED * extent and extent > best[1]:
            best = ([p[3] for p in row], extent)
    return [contours[k] for k in best[0]], best[1]


def _dominant_angle(img: GrayImage) -> float | None:
    """Direction (radians from the x axis) of the long near-horizontal lines, if any."""
    votes = max(20, int(MIN_SPAN * img.shape[1]))
    lines = cv2.HoughLines(img, 1, math.pi / 180, votes, min_theta=math.pi / 2 - HOUGH_BAND,
                           max_theta=math.pi / 2 + HOUGH_BAND)
    if lines is None or len(lines) == 0:
        return None
    # Strongest first; in a small scan a digit's strokes get as many votes as the one
    # baseline, so only the strongest few count there.
    thetas = lines[: min(len(lines), 12 if img.shape[1] >= 100 else 3), 0, 1]
    ordered, k = np.sort(thetas), len(thetas) // 2  # np.median would import numpy.ma (1.2 MB of RSS)
    mid = ordered[k] if len(ordered) % 2 else ordered[k - 1 : k + 1].mean()
    return float(mid) - math.pi / 2


def _line_kernel(angle: float, length: int) -> GrayImage:
    half = length // 2
    dy = math.ceil(abs(math.sin(angle)) * half)
    k = np.zeros((2 * dy + 1, length), np.uint8)
    ex, ey = math.cos(angle) * half, math.sin(angle) * half
    cv2.line(k, (round(half - ex), round(dy - ey)), (round(half + ex), round(dy + ey)), 1, 1)
    return k
