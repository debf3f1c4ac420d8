"""Redraw MNIST digits along their skeleton with a uniform round pen (training augmentation).

MNIST strokes vary in width along the digit; a digit written with a pen on paper and cut
from a camera frame has one width throughout, thin or thick relative to its size. This
module thins a batch of digits to one-pixel skeletons (Zhang-Suen, vectorised over the
batch) at twice MNIST's resolution, then draws a pen of a given width along each skeleton
(distance from the skeleton, with a one-pixel soft edge) and scales back to 28x28.
"""

from __future__ import annotations

import cv2
import numpy as np

UP = 2  # work at 56x56: a smoother skeleton and a sub-pixel pen at 28x28
_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def pen_redraw(x: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """(N, 28, 28) float32 digits in 0..1 → the same digits redrawn with a pen.

    ``widths`` are pen widths in 28x28 pixels (MNIST's own strokes are about 2-3 px wide
    inside its 20 px box). A digit whose skeleton vanishes is returned unchanged.
    """
    n = len(x)
    if n == 0:
        return x.copy()
    size = 28 * UP
    big = np.stack([cv2.resize(d, (size, size), interpolation=cv2.INTER_LINEAR) for d in x])
    skel = thin_batch((big > 0.5).astype(np.uint8))
    out = x.copy()
    for i in range(n):
        if not skel[i].any():
            continue
        dist = cv2.distanceTransform((skel[i] == 0).astype(np.uint8), cv2.DIST_L2, 5)
        pen = np.clip(widths[i] * UP / 2 + 0.5 - dist, 0, 1).astype(np.float32)
        out[i] = cv2.resize(pen, (28, 28), interpolation=cv2.INTER_AREA)
    peak = out.reshape(n, -1).max(axis=1).reshape(n, 1, 1)
    scaled: np.ndarray = np.where(peak > 0.2, out / np.maximum(peak, 1e-6), out)
    return scaled.astype(np.float32)


def thin_batch(img: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of a batch (N, H, W) of 0/1 uint8 images, all at once: each
    pixel's 8 neighbours packed into one byte, the deletion rule a 256-entry table."""
    img = np.pad(img, ((0, 0), (1, 1), (1, 1)))
    h, w = img.shape[1:]
    active = np.arange(len(img))  # images still losing pixels
    while active.size:
        sub = img[active]
        changed = np.zeros(len(active), bool)
        for table in _TABLES:
            code = np.zeros((len(sub), h - 2, w - 2), np.uint8)
            for bit, (dy, dx) in enumerate(_NEIGHBOURS):
                code |= sub[:, 1 + dy:h - 1 + dy, 1 + dx:w - 1 + dx] << bit
            kill = table[code] & sub[:, 1:-1, 1:-1]
            sub[:, 1:-1, 1:-1] &= 1 - kill
            changed |= kill.any(axis=(1, 2))
        img[active] = sub
        active = active[changed]
    out: np.ndarray = img[:, 1:-1, 1:-1]
    return out


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen's two sub-iteration rules as lookup tables over the neighbour byte."""
    out = []
    for step in (0, 1):
        t = np.zeros(256, np.uint8)
        for code in range(256):
            p = [(code >> i) & 1 for i in range(8)]
            b = sum(p)
            a = sum(p[i] == 0 and p[(i + 1) % 8] == 1 for i in range(8))
            if step == 0:
                c = p[0] * p[2] * p[4] == 0 and p[2] * p[4] * p[6] == 0
            else:
                c = p[0] * p[2] * p[6] == 0 and p[0] * p[4] * p[6] == 0
            t[code] = 2 <= b <= 6 and a == 1 and c
        out.append(t)
    return out[0], out[1]


_TABLES = _tables()
