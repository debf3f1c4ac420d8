"""Test images rendered from the evaluation glyphs in ../shared/data (never committed).

HwD-1000 glyphs (MIT, N. Henning 2024) are 28x28 black pen on white; here they are
scaled up smoothly and multiplied onto a paper-like background, so each test image is a
real picture file with digits whose labels and boxes we know.

``REPO`` (the checkout) and ``DATA_DIR`` (the shared data sets) are defined here once; the other
test modules import them from here.
"""

from __future__ import annotations

import csv
import os
from functools import cache
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("DIGIT_EDGE_DATA", REPO.parent / "shared" / "data"))
Image = npt.NDArray[np.uint8]


@cache
def hwd_glyphs() -> dict[int, list[Image]]:
    root = DATA_DIR / "hwd1000"
    out: dict[int, list[Image]] = {d: [] for d in range(10)}
    with (root / "dataset.csv").open() as f:
        for row in csv.DictReader(f):
            img = cv2.imread(str(root / row["image"]), cv2.IMREAD_GRAYSCALE)
            out[int(row["label"])].append(img)
    return out


def paper(width: int, height: int, seed: int = 0, gradient: float = 40.0) -> npt.NDArray[np.float32]:
    """Off-white paper, lit from one side, with a little sensor noise (BGR float 0..255)."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    light = 225.0 - gradient * xs + np.zeros((height, 1), np.float32)
    img = np.stack([light * 0.97, light, light * 1.02], axis=2)
    img += rng.normal(0, 2.0, img.shape).astype(np.float32)
    return img


def draw_number(
    canvas: npt.NDArray[np.float32], text: str, x: int, y: int, height: int, seed: int = 0, spacing: float = 0.25
) -> list[tuple[int, int, int, int]]:
    """Write ``text`` with HwD glyphs at (x, y); return each digit's ink box (x, y, w, h)."""
    rng = np.random.default_rng(seed)
    boxes = []
    for ch in text:
        glyphs = hwd_glyphs()[int(ch)]
        g = glyphs[int(rng.integers(len(glyphs)))]
        big = cv2.resize(g, (height, height), interpolation=cv2.INTER_CUBIC)
        ink = 1.0 - big.astype(np.float32) / 255.0
        ink = np.clip(ink, 0.0, 1.0)
        ys, xs = np.nonzero(ink > 0.3)
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        ink = ink[y0:y1, x0:x1]
        h, w = ink.shape
        region = canvas[y : y + h, x : x + w]
        region *= (1.0 - 0.85 * ink)[:, :, None]
        boxes.append((x, y, w, h))
        x += w + int(spacing * height)
    return boxes


def save(path: Path, canvas: npt.NDArray[np.float32], quality: int = 90) -> Path:
    img = np.clip(canvas, 0, 255).astype(np.uint8)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), img, params):
        raise OSError(f"could not write {path}")
    return path


def pen_glyph(label: int, height: int, pen: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """One HwD glyph ``height`` px tall, redrawn along its skeleton with a round pen ``pen``
    px wide (a hairline to a chisel marker): ink strength 0..1, tight box."""
    from edge.bench.pen import _thin

    rng = np.random.default_rng(seed)
    glyphs = hwd_glyphs()[label]
    g = 255 - glyphs[int(rng.integers(len(glyphs)))]
    ys, xs = np.nonzero(g > 60)
    g = g[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    width = max(2, round(g.shape[1] * height / g.shape[0]))
    big = cv2.resize(g, (width, height), interpolation=cv2.INTER_LINEAR)
    solid = cv2.morphologyEx((big > 60).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    skeleton = _thin(solid)
    pad = int(pen) + 2
    skeleton = cv2.copyMakeBorder(skeleton, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    dist = cv2.distanceTransform((skeleton == 0).astype(np.uint8), cv2.DIST_L2, 5)
    ink = np.clip(pen / 2 + 0.5 - dist, 0, 1).astype(np.float32)
    ys, xs = np.nonzero(ink > 0.1)
    return ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def ink_on_paper(ink: npt.NDArray[np.float32], margin: int, paper_level: float = 215.0,
                 contrast: float = 180.0, seed: int = 0) -> npt.NDArray[np.float32]:
    """``ink`` laid on grey paper with ``margin`` px around it (0: cropped tight), BGR
    float; ``contrast`` grey levels between paper and full-strength ink."""
    h, w = ink.shape
    rng = np.random.default_rng(seed)
    canvas = np.full((h + 2 * margin, w + 2 * margin), paper_level, np.float32)
    canvas[margin : margin + h, margin : margin + w] -= contrast * ink
    canvas += rng.normal(0, 1.5, canvas.shape).astype(np.float32)
    return np.repeat(canvas[:, :, None], 3, axis=2)
