"""Handwritten glyphs for the scenes: MNIST digits, redrawn with a pen of some width."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class Glyphs:
    """MNIST-style glyphs (white ink on black) by label; `pick` draws one at random."""

    def __init__(self, images: npt.NDArray[np.uint8], labels: npt.NDArray[np.integer]) -> None:
        self.by_label = [images[labels == d] for d in range(10)]

    def pick(self, rng: np.random.Generator, label: int) -> F32:
        pool = self.by_label[label]
        g = pool[int(rng.integers(len(pool)))].astype(np.float32) / 255.0
        rows, cols = np.flatnonzero(g.max(1) > 0.1), np.flatnonzero(g.max(0) > 0.1)
        out: F32 = g[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        return out


def mnist_glyphs(path: str, part: str) -> Glyphs:
    """MNIST test digits: `part` "tune" = the first 5000, "held" = the last 5000."""
    with np.load(path) as d:
        x, y = d["x_test"], d["y_test"]
    sl = slice(0, 5000) if part == "tune" else slice(5000, 10000)
    return Glyphs(x[sl], y[sl])


def glyph_alpha(rng: np.random.Generator, glyph: F32, height: int) -> F32:
    """Scale a glyph to ``height`` px and redraw it with a pen of some width.

    Upscaled MNIST strokes grow with the digit (a 150 px digit gets a 20 px stroke); a real
    pen does not. So most digits are redrawn along their skeleton with a round pen 2 px to
    ~15% of the height wide; the rest keep MNIST's proportional stroke.
    """
    gh, gw = glyph.shape
    width = max(1, round(gw * height / gh))
    a: F32 = cv2.resize(glyph, (width, height), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.35:
        plain: F32 = np.clip(a * 1.4 - 0.1, 0, 1).astype(np.float32)
        return plain
    skeleton = _thin((a > 0.5).astype(np.uint8))
    pen = float(np.exp(rng.uniform(np.log(2.0), np.log(max(2.5, 0.15 * height)))))
    pad = int(pen) + 2
    skeleton = cv2.copyMakeBorder(skeleton, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform((skeleton == 0).astype(np.uint8), cv2.DIST_L2, 5)
    out: F32 = np.clip(pen / 2 + 0.5 - dist, 0, 1).astype(np.float32)
    rows, cols = np.flatnonzero(out.max(1) > 0.1), np.flatnonzero(out.max(0) > 0.1)
    return out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if rows.size else out


def _thin(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Zhang-Suen thinning (vectorised): a one-pixel skeleton without morphology's spurs."""
    img = np.pad(img, 1)
    while True:
        changed = False
        for step in (0, 1):
            p = [np.roll(np.roll(img, -dy, 0), -dx, 1) for dy, dx in
                 ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))]
            b = sum(q.astype(np.int32) for q in p)
            a = sum(((p[i] == 0) & (p[(i + 1) % 8] == 1)).astype(np.int32) for i in range(8))
            if step == 0:
                c = (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
            else:
                c = (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
            kill = (img == 1) & (b >= 2) & (b <= 6) & (a == 1) & c
            if kill.any():
                img = img & ~kill.astype(np.uint8)
                changed = True
        if not changed:
            return img[1:-1, 1:-1]
