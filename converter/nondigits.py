"""Synthetic *not a digit* crops for the CNN's 11th class, each fitted by ``fit_to_mnist``.

The detector's own non-digit crops (``converter.detcrops``) are few and only as varied as
the rendered scenes; these add what paper also carries: letters and symbols (OpenCV's
Hershey fonts, the script ones too, with a random pen width and slant), dots, commas,
dashes, short lines, blobs, paper texture, and windows that straddle two digits side by
side (half or a third of each, as a wrong cut of touching digits gives).

Shapes a digit can honestly look like are left out — O, I, l, S, Z, B, g, q, b, G, /, |
!, brackets and lines steeper than 40°, which fitted to 28x28 are a 0, 1, 5, 2, 8, 9 or 6 — so the
class never contradicts the digits.
"""

from __future__ import annotations

import cv2
import numpy as np

from converter.data import Images, Labels
from edge.recognition.normalize import fit_to_mnist

LETTERS = "ACEFHKMNPRVWXYacefkmnprtuvwx+#%&@?*=<>~^"
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
         cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX_SMALL,
         cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_SCRIPT_COMPLEX)
# Shares of each kind, in the order they are drawn.
KINDS = (("letter", 0.40), ("straddle", 0.25), ("mark", 0.25), ("texture", 0.10))
_S = 64  # drawing canvas


def make_nondigits(n: int, x: Images, y: Labels, rng: np.random.Generator) -> tuple[Images, list[str]]:
    """``n`` crops (uint8, 28x28, white on black) and the kind of each; ``x``/``y`` are
    training digits for the straddling windows."""
    out = np.zeros((n, 28, 28), np.uint8)
    kinds: list[str] = []
    draw = {"letter": _letter, "mark": _mark, "texture": _texture}
    shares = np.array([s for _, s in KINDS])
    picks = rng.choice(len(KINDS), size=n, p=shares / shares.sum())
    for i, k in enumerate(picks):
        kind = KINDS[int(k)][0]
        for _ in range(10):  # a draw that leaves no ink is drawn again
            img = _straddle(rng, x, y) if kind == "straddle" else draw[kind](rng)
            if img.max() > 0.2:
                break
        out[i] = fit_to_mnist(img)
        kinds.append(kind)
    return out, kinds


def _slanted(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A random slant and a small turn about the centre, as handwriting has."""
    shear, angle = float(rng.uniform(-0.35, 0.35)), float(rng.uniform(-12, 12))
    m = cv2.getRotationMatrix2D((_S / 2, _S / 2), angle, 1.0)
    m[0, 1] += shear
    m[0, 2] -= shear * _S / 2
    out: np.ndarray = cv2.warpAffine(img, m, (_S, _S), flags=cv2.INTER_LINEAR)
    return out


def _letter(rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((_S, _S), np.uint8)  # putText draws on 8-bit images only
    ch = LETTERS[int(rng.integers(len(LETTERS)))]
    font = FONTS[int(rng.integers(len(FONTS)))] | (cv2.FONT_ITALIC if rng.random() < 0.3 else 0)
    thick = int(rng.integers(1, 6))
    scale = float(rng.uniform(1.2, 1.8))
    (tw, th), _ = cv2.getTextSize(ch, font, scale, thick)
    org = (max(0, (_S - tw) // 2), min(_S - 4, (_S + th) // 2))
    cv2.putText(img, ch, org, font, scale, 255, thick, cv2.LINE_AA)
    return _slanted(rng, img.astype(np.float32) / 255)


def _mark(rng: np.random.Generator) -> np.ndarray:
    """A dot, comma, dash, short shallow line or blob."""
    img = np.zeros((_S, _S), np.float32)
    c = (_S // 2, _S // 2)
    kind = int(rng.integers(5))
    if kind == 0:  # dot
        cv2.circle(img, c, int(rng.integers(2, 10)), 1.0, -1, cv2.LINE_AA)
    elif kind == 1:  # comma: a dot with a tail down and to the left
        r = int(rng.integers(3, 8))
        cv2.circle(img, c, r, 1.0, -1, cv2.LINE_AA)
        tail = (c[0] - int(rng.integers(1, r + 1)), c[1] + int(rng.integers(r, 2 * r + 1)))  # short: no 9
        cv2.line(img, (c[0] + r // 2, c[1]), tail, 1.0, max(1, r // 2), cv2.LINE_AA)
    elif kind in (2, 3):  # dash or short line, never steeper than 40°
        angle = np.deg2rad(rng.uniform(-40, 40))
        half = float(rng.uniform(6, 28))
        dx, dy = half * np.cos(angle), half * np.sin(angle)
        cv2.line(img, (round(c[0] - dx), round(c[1] - dy)), (round(c[0] + dx), round(c[1] + dy)),
                 1.0, int(rng.integers(1, 8)), cv2.LINE_AA)
    else:  # blob: a random filled polygon, smoothed
        pts = rng.integers(12, _S - 12, (int(rng.integers(4, 9)), 2)).astype(np.int32)
        cv2.fillPoly(img, [cv2.convexHull(pts)], 1.0)
        img = cv2.GaussianBlur(img, (0, 0), 2.0)
    return img


def _texture(rng: np.random.Generator) -> np.ndarray:
    """Paper texture the threshold caught: smooth noise, its darkest patches as ink."""
    noise = rng.normal(0, 1, (_S, _S)).astype(np.float32)
    noise = cv2.GaussianBlur(noise, (0, 0), float(rng.uniform(1.5, 5)))
    noise /= max(1e-6, float(noise.std()))
    ink: np.ndarray = np.clip(noise - float(rng.uniform(0.8, 2.0)), 0, 1)
    return ink


def _straddle(rng: np.random.Generator, x: Images, y: Labels) -> np.ndarray:
    """Two training digits side by side, cut where neither is whole: the right half (or
    third) of one and the left half (or third) of the other."""
    a, b = (x[int(i)].astype(np.float32) / 255 for i in rng.integers(len(x), size=2))
    a, b = _cols(a), _cols(b)
    gap = int(rng.integers(0, 4))
    pair = np.concatenate([a, np.zeros((28, gap), np.float32), b], axis=1)
    fa, fb = (0.5, 0.5) if rng.random() < 0.6 else tuple(rng.permutation([1 / 3, 2 / 3]))
    start = round(a.shape[1] * (1 - float(fa)))
    stop = a.shape[1] + gap + max(2, round(b.shape[1] * float(fb)))
    return pair[:, start:stop]


def _cols(img: np.ndarray) -> np.ndarray:
    cols = np.flatnonzero(img.max(axis=0) > 0.1)
    return img[:, cols[0] : cols[-1] + 1] if cols.size else img
