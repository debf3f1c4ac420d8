"""Training augmentation that prepares MNIST digits for crops cut from camera frames.

Each digit is deformed the ways handwriting on paper differs from MNIST (rotation, aspect,
shear, a gentle elastic wobble, thinner or thicker strokes), then re-fitted by
``edge.recognition.normalize.fit_to_mnist`` — the same code the daemon runs on every crop — so the
network is trained on exactly the kind of crop it will see. Re-fitting undoes any scale or
shift, so those are applied afterwards, small, standing in for the box and centre errors
of real crops (a speck of dirt in the box, a faint stroke end lost).

Optionally (``p_pen``, off by default) a share of digits is first redrawn along its skeleton with a pen of
uniform width, thin to thick (``converter.penredraw``): digits written with a pen keep one
stroke width throughout, MNIST's do not.

Stroke width changes by a fraction of a pixel: the digit is blended with its own dilation
(or erosion), so widths vary smoothly rather than in whole-pixel steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from converter.data import Images
from converter.penredraw import pen_redraw
from edge.recognition.normalize import fit_to_mnist

CANVAS = 36  # room for a rotated, sheared, widened 28x28 digit
_GY, _GX = np.mgrid[0:CANVAS, 0:CANVAS].astype(np.float32)
_K2 = np.ones((2, 2), np.uint8)


@dataclass(frozen=True)
class Augment:
    """Strengths of each deformation; ranges are half-widths of uniform draws."""

    rotate_deg: float = 12.0
    shear: float = 0.25
    aspect: float = 0.15  # width/height changes by up to ±15 %
    p_elastic: float = 0.5
    elastic_alpha: float = 1.0  # px of smooth random displacement (RMS)
    elastic_sigma: float = 3.0  # px smoothness of the displacement field
    p_thicker: float = 0.35  # strokes up to 1 px wider
    p_thinner: float = 0.25  # strokes up to 1 px thinner
    p_jitter: float = 0.5  # after the re-fit: scale and shift a little
    scale: float = 0.1  # the 20 px box becomes 18..22 px
    shift_px: int = 1  # whole pixels, as MNIST's own centring is
    p_identity: float = 0.1  # left exactly as MNIST has it
    p_pen: float = 0.0  # redrawn along the skeleton with a uniform round pen, first
    pen_min: float = 0.6  # pen width, px of the 28x28 digit (MNIST strokes: ~2-3 px)
    pen_max: float = 3.2  # (drawn log-uniform)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def augment_batch(x: Images, rng: np.random.Generator, aug: Augment) -> Images:
    """(N, 28, 28) uint8 MNIST digits → the same number of deformed, re-fitted digits."""
    out = np.empty_like(x)
    n = len(x)
    identity = rng.random(n) < aug.p_identity
    mats = _affine_mats(rng, n, aug)
    fields = _field_bank(rng, aug) if aug.p_elastic > 0 else None
    elastic = rng.random(n) < aug.p_elastic
    pick = rng.integers(0, _BANK, (n, 2))
    stroke_kind = rng.random(n)
    stroke_amount = rng.random(n)
    jitter = rng.random(n) < aug.p_jitter
    scale = rng.uniform(1 - aug.scale, 1 + aug.scale, n)
    shift = rng.integers(-aug.shift_px, aug.shift_px + 1, (n, 2))
    src = x.astype(np.float32) * (1 / 255)
    if aug.p_pen > 0:  # drawn last: the other deformations' draws stay as they were
        pen = (rng.random(n) < aug.p_pen) & ~identity
        widths = np.exp(rng.uniform(np.log(aug.pen_min), np.log(aug.pen_max), n))
        src[pen] = pen_redraw(src[pen], widths[pen])
    for i in range(n):
        if identity[i]:
            out[i] = x[i]
            continue
        big = cv2.warpAffine(src[i], mats[i], (CANVAS, CANVAS), flags=cv2.INTER_LINEAR)
        if fields is not None and elastic[i]:
            big = cv2.remap(big, _GX + fields[pick[i, 0], 0], _GY + fields[pick[i, 1], 1],
                            cv2.INTER_LINEAR)
        if stroke_kind[i] < aug.p_thicker:
            big = _blend(big, cv2.dilate(big, _K2), stroke_amount[i])
        elif stroke_kind[i] < aug.p_thicker + aug.p_thinner:
            big = _blend(big, cv2.erode(big, _K2), stroke_amount[i])
        fitted = fit_to_mnist(big)
        out[i] = _jitter(fitted, scale[i], shift[i]) if jitter[i] else fitted
    return _restore_contrast(out, ~identity)


def _affine_mats(rng: np.random.Generator, n: int, aug: Augment) -> np.ndarray:
    """(n, 2, 3) maps: rotate · shear · stretch about the digit's centre, onto the canvas."""
    rot = np.deg2rad(rng.uniform(-aug.rotate_deg, aug.rotate_deg, n))
    shear = rng.uniform(-aug.shear, aug.shear, n)
    aspect = np.sqrt(np.exp(rng.uniform(-aug.aspect, aug.aspect, n)))
    c, s = np.cos(rot), np.sin(rot)
    rotm = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], 1)
    shearm = np.zeros((n, 2, 2))
    shearm[:, 0, 0] = shearm[:, 1, 1] = 1.0
    shearm[:, 0, 1] = shear
    stretch = np.zeros((n, 2, 2))
    stretch[:, 0, 0], stretch[:, 1, 1] = aspect, 1 / aspect
    a = rotm @ shearm @ stretch
    offset = (CANVAS - 1) / 2 - a @ np.array([13.5, 13.5])
    return np.concatenate([a, offset[:, :, None]], axis=2).astype(np.float32)


_BANK = 256


def _field_bank(rng: np.random.Generator, aug: Augment) -> np.ndarray:
    """Smooth random displacement fields (Simard et al.'s elastic distortion), RMS ``alpha``
    px; drawn once per batch and mixed per digit (x from one field, y from another)."""
    raw = rng.uniform(-1, 1, (_BANK, 2, CANVAS, CANVAS)).astype(np.float32)
    k = int(4 * aug.elastic_sigma) | 1
    for f in raw.reshape(-1, CANVAS, CANVAS):
        cv2.GaussianBlur(f, (k, k), aug.elastic_sigma, dst=f)
    rms = np.sqrt((raw**2).mean(axis=(2, 3), keepdims=True) * 2)
    fields: np.ndarray = raw * (aug.elastic_alpha / np.maximum(rms, 1e-6))
    return fields


def _restore_contrast(x: Images, rows: np.ndarray) -> Images:
    """Undo the dimming of interpolation: MNIST's 20 brightest pixels average ~253."""
    flat = x[rows].reshape(-1, 784).astype(np.float32)
    top = np.partition(flat, -20, axis=1)[:, -20:].mean(axis=1, keepdims=True)
    x[rows] = np.clip(flat * (253.0 / np.maximum(top, 1.0)), 0, 255).reshape(-1, 28, 28)
    return x


def _blend(img: np.ndarray, other: np.ndarray, t: float) -> np.ndarray:
    """Part of the way from ``img`` to its dilation/erosion, at full ink strength."""
    mixed = img + (other - img) * t
    peak = float(mixed.max())
    return mixed / peak if peak > 0.2 else img


def _jitter(img: np.ndarray, scale: float, shift: np.ndarray) -> np.ndarray:
    """Scale a fitted crop about its centre, then shift it by whole pixels."""
    mat = np.array([[scale, 0, (1 - scale) * 14 + shift[0]],
                    [0, scale, (1 - scale) * 14 + shift[1]]], np.float32)
    out: np.ndarray = cv2.warpAffine(img, mat, (28, 28), flags=cv2.INTER_LINEAR, borderValue=0)
    return out
