"""Turn a digit region of a paper frame into the 28x28 crop the model was trained on.

MNIST digits are white ink on black, the ink's box scaled so its longest side is 20 px
(aspect kept) and placed so the centre of mass sits at pixel (14, 14). A camera crop is
dark ink on uneven paper at any size and stroke width, so every step below exists to
remove one difference. ``fit_to_mnist`` is also what the converter applies to augmented
training digits, so training and inference share one definition of "MNIST-style".
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from edge.types import GrayImage, Region

CENTRE = 14.0  # MNIST's mean centre of mass, measured on the test set: (13.99, 14.00)
BOX = 20  # longest side of the ink box
MIN_STROKE = 1.5  # px at 28x28: thinner pen strokes are widened to this before scaling
MAX_STROKE = 4.5  # px at 28x28: thicker ones (a chisel marker) are narrowed to about this
FloatImage = npt.NDArray[np.float32]


def fit_to_mnist(ink: FloatImage | GrayImage, deskew: bool = False) -> GrayImage:
    """White-on-black ink of any size → 28x28 uint8, MNIST-style. Blank input → zeros."""
    img = ink.astype(np.float32, copy=False)  # never written to in place: the caller's stays
    peak = float(img.max())
    if peak <= 0:
        return np.zeros((28, 28), np.uint8)
    if peak > 1.0:
        img = img / 255.0
    img = _tight(img)
    if img.size == 0:
        return np.zeros((28, 28), np.uint8)
    if deskew:
        img = _deskew(img)
    h, w = img.shape
    scale = BOX / max(h, w)
    width = stroke_width(img)
    missing = MIN_STROKE / scale - width  # in this image's pixels
    excess = width - MAX_STROKE / scale
    if missing > 0:
        img = _widen(img, max(1, round(missing)))
        h, w = img.shape
        scale = BOX / max(h, w)
    elif excess >= 2:
        img = _narrow(img, round(excess))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(img, (nw, nh), interpolation=interp)
    # Centre of mass to (14, 14) by a whole-pixel shift, as MNIST did (a sub-pixel warp
    # would blur the strokes, and MNIST's own centres scatter by ~0.3 px anyway).
    # From the row and column sums (not cv2.moments: it takes an N x 2 float array, a crop of
    # a "1" two pixels wide, for a list of points).
    rows, cols = small.sum(axis=1), small.sum(axis=0)
    total = float(rows.sum())
    if total <= 0:
        return np.zeros((28, 28), np.uint8)
    top = round(CENTRE - float(rows @ np.arange(nh, dtype=np.float32)) / total)
    left = round(CENTRE - float(cols @ np.arange(nw, dtype=np.float32)) / total)
    out = np.zeros((28, 28), np.uint8)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + nh, 28), min(left + nw, 28)
    if y1 > y0 and x1 > x0:
        part = small[y0 - top : y1 - top, x0 - left : x1 - left]
        out[y0:y1, x0:x1] = np.clip(part * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def _tight(img: FloatImage) -> FloatImage:
    """Cropped to the box of its ink (pixels above 0.05); empty when there is none."""
    x, y, w, h = cv2.boundingRect((img > 0.05).view(np.uint8))  # a uint8 image: its non-zero pixels' box
    return img[y : y + h, x : x + w]


def stroke_width(img: FloatImage) -> float:
    """Mean stroke width in pixels: ink area over half the outline's length (A = w·L, P ≈ 2L)."""
    binary = (img > 0.4).view(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    perimeter = sum(cv2.arcLength(c, True) for c in contours)
    return 2.0 * float(img.sum()) / max(1.0, perimeter)


def _widen(img: FloatImage, grow: int) -> FloatImage:
    """Strokes ``grow`` px wider (grey dilation), so a fine pen on a big digit does not
    shrink to a faint hairline at 20 px: the model reads those at ~0.8 confidence."""
    padded = cv2.copyMakeBorder(img, grow, grow, grow, grow, cv2.BORDER_CONSTANT, value=0.0)
    size = grow + 1
    kernel = np.ones((2, 2), np.uint8) if size == 2 else cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    out: FloatImage = cv2.dilate(padded, kernel)
    return _tight(out)


def _narrow(img: FloatImage, shrink: int) -> FloatImage:
    """Strokes ``shrink`` px narrower (grey erosion), so a chisel marker's strokes do not
    close a digit's loops at 20 px: a "6" in a 25%-of-height marker reads as a blob."""
    size = shrink + 1
    kernel = np.ones((2, 2), np.uint8) if size == 2 else cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    out: FloatImage = cv2.erode(img, kernel)
    return out if out.max() > 0.05 else img


def _deskew(img: FloatImage) -> FloatImage:
    """Undo slant using the second moments (shear so the main axis is vertical)."""
    m = cv2.moments(img)
    if abs(m["mu02"]) < 1e-2:
        return img
    skew = m["mu11"] / m["mu02"]
    h, w = img.shape
    pad = int(abs(skew) * h / 2) + 1
    padded = cv2.copyMakeBorder(img, 0, 0, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    cy = h / 2.0
    mat = np.array([[1, -skew, skew * cy], [0, 1, 0]], dtype=np.float32)
    out = cv2.warpAffine(padded, mat, (w + 2 * pad, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return np.asarray(out, dtype=np.float32)


def ink_from_crop(gray: GrayImage, mask: GrayImage | None = None) -> FloatImage:
    """Dark-on-light greyscale crop → ink strength in [0, 1] (white on black).

    The paper level is taken from the pixels outside the ink (or the brightest part of
    the crop when no mask is given); the ink level from the darkest strokes, so faint
    pencil and dark marker both come out as full-strength strokes like MNIST's. Both
    levels are read from 256-bin histograms and applied as a lookup table: the crop is
    uint8, so this is exact and costs a few microseconds instead of sorting pixels.
    """
    if mask is None:
        _, m = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)
        mask = m
    inside = gray[mask > 0]
    if inside.size == 0:
        return np.zeros(gray.shape, np.float32)
    grown = cv2.dilate(mask, _GROW)
    outside = gray[grown == 0]
    paper = _quantile(outside, 0.5) if outside.size > 8 else _quantile(gray.ravel(), 0.9)
    strong = paper - _quantile(inside, 0.1)  # the 90th percentile of the ink strength
    if strong <= 1.0:
        return np.zeros(gray.shape, np.float32)
    lo = 0.15 * strong
    lut = np.clip((paper - _LEVELS - lo) / (0.85 * strong - lo), 0.0, 1.0).astype(np.float32)
    # Keep only this digit's own ink: its mask, grown by a pixel for the soft stroke edges.
    ink: FloatImage = np.zeros(gray.shape, np.float32)
    cv2.copyTo(cv2.LUT(gray, lut), grown, ink)
    return ink


_GROW = np.ones((3, 3), np.uint8)
_LEVELS = np.arange(256, dtype=np.float32)


def _quantile(values: GrayImage, q: float) -> float:
    """The q-quantile of uint8 values (linear between the two nearest ranks, as numpy),
    from a partial sort: only the two ranks around it are put in place."""
    n = int(values.size)
    pos = q * (n - 1)
    lo_rank, frac = int(pos), pos - int(pos)
    hi_rank = min(lo_rank + 1, n - 1)
    part = np.partition(values, (lo_rank, hi_rank))
    lo_val, hi_val = int(part[lo_rank]), int(part[hi_rank])
    return lo_val + frac * (hi_val - lo_val)


WORK_SIDE = 40  # crops are reduced to this (longest side) before the ink is measured


def normalize_region(gray: GrayImage, region: Region, deskew: bool = False,
                     work_side: int | None = WORK_SIDE, turn: float = 0.0) -> GrayImage:
    """Cut ``region`` from a greyscale frame and make it a 28x28 MNIST-style crop.

    A big crop is first reduced to ``work_side`` px (area averaging, its mask too): the
    crop ends up 20 px tall anyway, and the per-pixel statistics then cost the same for
    a 20 px and a 200 px digit. ``turn``: degrees the digit is turned counter-clockwise
    (its row's angle, ``edge.recognition.orient``); it is turned back upright first.
    """
    b = region.box
    crop = gray[b.y : b.y2, b.x : b.x2]
    if crop.size == 0:
        return np.zeros((28, 28), np.uint8)
    mask = region.mask
    if mask is not None and mask.shape != crop.shape:
        mask = None
    longest = max(crop.shape)
    if work_side is not None and longest > work_side:
        f = work_side / longest
        size = (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        if mask is not None:
            mask = cv2.resize(mask, size, interpolation=cv2.INTER_AREA)
    ink = ink_from_crop(crop, mask)
    return fit_to_mnist(_upright(ink, turn) if turn else ink, deskew=deskew)


def _upright(ink: FloatImage, turn: float) -> FloatImage:
    """``ink`` turned clockwise by ``turn`` degrees, on a canvas that loses none of it."""
    h, w = ink.shape
    rad = math.radians(abs(turn))
    cw = math.ceil(w * math.cos(rad) + h * math.sin(rad))
    ch = math.ceil(w * math.sin(rad) + h * math.cos(rad))
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -turn, 1.0)
    m[0, 2] += (cw - w) / 2
    m[1, 2] += (ch - h) / 2
    return np.asarray(cv2.warpAffine(ink, m, (cw, ch), flags=cv2.INTER_LINEAR, borderValue=0.0), np.float32)
