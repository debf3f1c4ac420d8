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

import cv2
import numpy as np

from edge.types import GrayImage

HOUGH_BAND = math.radians(20)  # how far from horizontal/vertical a sheet may be turned
MIN_SPAN = 0.45  # a line spans at least this fraction of the frame (width or height)
KERNEL_FRAC = 0.12  # opening length, as a fraction of the frame's shorter side


def remove_lines(ink: GrayImage) -> GrayImage:
    """``ink`` (0/255) without long thin straight lines; returns ``ink`` itself if none."""
    h, w = ink.shape
    if min(h, w) < 64:
        return ink
    quarter = cv2.resize(ink, (w // 4, h // 4), interpolation=cv2.INTER_AREA)
    half = cv2.resize(ink, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    _, half = cv2.threshold(half, 0, 255, cv2.THRESH_BINARY)
    length = max(9, int(KERNEL_FRAC * min(h, w) / 2)) | 1
    found = np.zeros_like(half)
    bridges: list[tuple[int, int]] = []
    for vertical in (False, True):
        img = quarter.T if vertical else quarter
        angle = _dominant_angle(np.ascontiguousarray(img))
        if angle is None:
            continue
        kernel = _line_kernel(angle, length)
        if vertical:
            kernel = np.ascontiguousarray(kernel.T)
        opened = cv2.morphologyEx(half, cv2.MORPH_OPEN, kernel)
        # Give back what is thick across the line direction: strokes, not ruling.
        across = (1, 5) if not vertical else (5, 1)
        thick = cv2.morphologyEx(opened, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, across))
        found |= opened & ~cv2.dilate(thick, np.ones((3, 3), np.uint8))
        bridges.append((1, 11) if not vertical else (11, 1))
    if not bridges:
        return ink
    band = cv2.resize(found, (w, h), interpolation=cv2.INTER_NEAREST)
    band = cv2.dilate(band & ink, np.ones((3, 3), np.uint8))
    clean: GrayImage = ink & ~band
    for kw, kh in bridges:
        closed = cv2.morphologyEx(clean, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (kw, kh)))
        clean |= closed & band
    return clean


def _dominant_angle(img: GrayImage) -> float | None:
    """Direction (radians from the x axis) of the long near-horizontal lines, if any."""
    votes = max(20, int(MIN_SPAN * img.shape[1]))
    lines = cv2.HoughLines(img, 1, math.pi / 180, votes, min_theta=math.pi / 2 - HOUGH_BAND,
                           max_theta=math.pi / 2 + HOUGH_BAND)
    if lines is None or len(lines) == 0:
        return None
    thetas = lines[: min(len(lines), 12), 0, 1]  # strongest first
    return float(np.median(thetas)) - math.pi / 2


def _line_kernel(angle: float, length: int) -> GrayImage:
    half = length // 2
    dy = math.ceil(abs(math.sin(angle)) * half)
    k = np.zeros((2 * dy + 1, length), np.uint8)
    ex, ey = math.cos(angle) * half, math.sin(angle) * half
    cv2.line(k, (round(half - ex), round(dy - ey)), (round(half + ex), round(dy + ey)), 1, 1)
    return k
