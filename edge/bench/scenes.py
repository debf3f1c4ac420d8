"""Camera-like scenes of handwritten digits with known boxes and labels (seeded).

Each scene is a 640x480 JPEG of paper seen by a cheap camera: a tilted sheet (±15°) with
uneven light and a colour cast, one to three numbers of 1–4 digits (MNIST test digits as
glyphs), specks, a stray line, sometimes the paper's edge or a dark blob, then blur,
noise and JPEG. A *hard* scene adds one or two of: squared or ruled paper whose lines
cross the digits, a cast shadow, touching digits, faint pencil, digits only 18–30 px
tall, camera shake. Ground-truth boxes are the tight box of each digit's ink after tilt.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from edge.bench.pen import Glyphs, glyph_alpha, mnist_glyphs
from edge.types import Box

W, H = 640, 480
HARD_KINDS = ("grid", "ruled", "shadow", "touching", "pencil", "small", "shake")
__all__ = ["HARD_KINDS", "Glyphs", "Scene", "Truth", "make_scene", "mnist_glyphs", "scene_set"]
F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Truth:
    label: int
    box: Box
    number: int  # which number of the scene it belongs to


@dataclass(frozen=True)
class Scene:
    seed: int
    jpeg: bytes
    digits: tuple[Truth, ...]
    values: tuple[str, ...]  # each number's digits, in the order they were placed
    hard: tuple[str, ...]  # the hard factors of this scene (empty = ordinary)


def _paper_lines(rng: np.random.Generator, size: tuple[int, int], kind: str) -> F32:
    """Darkness (0..1) of ruled or squared paper lines on the canvas."""
    ch, cw = size
    out = np.zeros((ch, cw), np.float32)
    step = int(rng.integers(22, 42)) if kind == "grid" else int(rng.integers(26, 48))
    thick = int(rng.integers(1, 3))
    dark = float(rng.uniform(0.2, 0.45))
    off = int(rng.integers(step))
    for y in range(off, ch, step):
        out[y : y + thick, :] = dark
    if kind == "grid":
        for x in range(int(rng.integers(step)), cw, step):
            out[:, x : x + thick] = dark
    blurred: F32 = cv2.GaussianBlur(out, (3, 3), 0.6)
    return blurred


def _free(taken: list[tuple[int, int, int, int]], rect: tuple[int, int, int, int]) -> bool:
    x, y, x2, y2 = rect
    return all(x2 < a or a2 < x or y2 < b or b2 < y for a, b, a2, b2 in taken)


def _place(rng: np.random.Generator, taken: list[tuple[int, int, int, int]], w: int, h: int,
           area: tuple[int, int, int, int], margin: int | None = None,
           ok: Callable[[tuple[int, int, int, int]], bool] | None = None) -> tuple[int, int] | None:
    """A free spot for a w x h rectangle in ``area``, ``margin`` px (default h/3) from the
    ``taken`` ones and accepted by ``ok``; it is added to ``taken``."""
    x0, y0, x1, y1 = area
    for _ in range(40):
        if x1 - x0 - w < 1 or y1 - y0 - h < 1:
            return None
        x, y = int(rng.integers(x0, x1 - w)), int(rng.integers(y0, y1 - h))
        m = max(8, h // 3) if margin is None else margin
        if all(x + w + m < a or a2 + m < x or y + h + m < b or b2 + m < y for a, b, a2, b2 in taken) and (
                ok is None or ok((x, y, x + w, y + h))):
            taken.append((x, y, x + w, y + h))
            return x, y
    return None


def make_scene(seed: int, glyphs: Glyphs, hard: bool) -> Scene:
    rng = np.random.default_rng(seed)
    kinds: tuple[str, ...] = ()
    if hard:
        n = 1 + int(rng.random() < 0.35)
        kinds = tuple(str(k) for k in rng.choice(HARD_KINDS, size=n, replace=False))
        if "grid" in kinds and "ruled" in kinds:
            kinds = tuple(k for k in kinds if k != "ruled")
    angle = float(rng.uniform(-15, 15))
    cw, ch = 780, 660  # canvas that still covers the frame after a 15° turn
    rot = cv2.getRotationMatrix2D((cw / 2, ch / 2), angle, 1.0)
    rot[:, 2] += (W / 2 - cw / 2, H / 2 - ch / 2)

    darkness = np.zeros((ch, cw), np.float32)  # ink + lines, 0 = paper
    ink_colour = np.array([rng.uniform(0, 60), rng.uniform(0, 40), rng.uniform(0, 40)], np.float32)
    strength = float(rng.uniform(0.3, 0.5)) if "pencil" in kinds else float(rng.uniform(0.8, 1.0))
    if "pencil" in kinds:
        ink_colour[:] = rng.uniform(60, 90)
    truths: list[Truth] = []
    values: list[str] = []
    taken: list[tuple[int, int, int, int]] = []
    area = (cw // 2 - 250, ch // 2 - 175, cw // 2 + 250, ch // 2 + 175)
    n_numbers = int(rng.integers(1, 4))
    for _num in range(n_numbers):
        count = int(rng.integers(1, 5)) if not hard else int(rng.integers(2, 5))
        if "small" in kinds:
            height = int(rng.integers(18, 31))
        else:
            height = int(np.exp(rng.uniform(np.log(24), np.log(150 if n_numbers == 1 else 110))))
            height = min(height, int(420 / max(1, n_numbers)))
        labels = [int(v) for v in rng.integers(0, 10, size=count)]
        alphas = [glyph_alpha(rng, glyphs.pick(rng, d), max(8, round(height * rng.uniform(0.9, 1.1))))
                  for d in labels]
        gaps = [height * (rng.uniform(-0.08, 0.0) if "touching" in kinds else rng.uniform(0.12, 0.45))
                for _ in labels]
        total_w = int(sum(a.shape[1] for a in alphas) + sum(gaps[1:]) + 2)
        spot = _place(rng, taken, total_w, int(height * 1.25) + 2, area)
        if spot is None:
            continue
        x = float(spot[0])
        for i, (label, a) in enumerate(zip(labels, alphas, strict=True)):
            if i:
                x += gaps[i]
            ah, aw = a.shape
            y = spot[1] + int(rng.integers(0, max(1, int(height * 1.25) - ah)))
            xi = round(x)
            region = darkness[y : y + ah, xi : xi + aw]
            np.maximum(region, a * strength, out=region)
            ys, xs = np.nonzero(a > 0.35)
            pts = np.stack([xs + xi, ys + y, np.ones_like(xs)], axis=1).astype(np.float32) @ rot.T
            bx, by = pts.min(axis=0)
            bx2, by2 = pts.max(axis=0)
            box = Box(int(bx), int(by), math.ceil(bx2 - bx) + 1, math.ceil(by2 - by) + 1)
            truths.append(Truth(label, box, len(values)))
            x += aw
        values.append("".join(str(v) for v in labels))

    # Paper: off-white with a colour cast, lines, and ordinary clutter.
    paper = np.array([rng.uniform(170, 245)] * 3, np.float32) * rng.uniform(0.88, 1.0, 3)
    lines = np.zeros_like(darkness)
    for kind in ("grid", "ruled"):
        if kind in kinds:
            lines = _paper_lines(rng, (ch, cw), kind)
    line_colour = np.array([rng.uniform(120, 200), rng.uniform(60, 160), rng.uniform(40, 140)], np.float32)
    for _ in range(int(rng.integers(0, 6))):  # specks
        cx, cy = int(rng.integers(0, cw)), int(rng.integers(0, ch))
        cv2.circle(darkness, (cx, cy), int(rng.integers(1, 4)), float(rng.uniform(0.4, 0.9)), -1)
    if rng.random() < 0.3:  # a stray pen line (underline, margin) that misses the digits
        y = int(rng.integers(area[1], area[3]))
        x0 = int(rng.integers(0, cw // 3))
        x1, y1 = x0 + int(rng.integers(250, 500)), y + int(rng.integers(-20, 20))
        if _free(taken, (x0, min(y, y1) - 6, x1, max(y, y1) + 6)):
            cv2.line(darkness, (x0, y), (x1, y1), float(rng.uniform(0.5, 0.9)), int(rng.integers(1, 4)))
    img = np.empty((ch, cw, 3), np.float32)
    img[:] = paper
    img *= 1.0 - lines[..., None] * (1.0 - line_colour / 255.0)
    a = darkness[..., None]
    img = img * (1.0 - a) + ink_colour * a
    for _ in range(int(rng.random() < 0.25)):  # a dark blob (thumb, stain)
        centre = (int(rng.integers(0, cw)), int(rng.integers(0, ch)))
        axes = (int(rng.integers(40, 110)), int(rng.integers(30, 90)))
        blob = np.zeros((ch, cw), np.float32)
        cv2.ellipse(blob, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        r = max(axes) + 10
        if _free(taken, (centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r)):
            img *= 1.0 - cv2.GaussianBlur(blob, (0, 0), 3)[..., None] * rng.uniform(0.4, 0.8)
    if rng.random() < 0.3:  # the paper's edge: a desk beyond one side
        desk = np.array(rng.uniform(20, 120, 3), np.float32)
        side = int(rng.integers(4))
        edge = np.zeros((ch, cw), np.float32)
        d = (cw - W) // 2 if side < 2 else (ch - H) // 2
        d += int(rng.integers(15, 60))
        sl = [np.s_[:, : d], np.s_[:, cw - d :], np.s_[: d, :], np.s_[ch - d :, :]][side]
        edge[sl] = 1.0
        e = cv2.GaussianBlur(edge, (0, 0), 1.0)[..., None]
        img = img * (1 - e) + desk * e

    frame = cv2.warpAffine(img, rot, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    frame = _camera(rng, frame, kinds)
    return Scene(seed, encode(frame, int(rng.integers(40, 92))), tuple(truths), tuple(values), kinds)


def _camera(rng: np.random.Generator, frame: F32, kinds: tuple[str, ...]) -> npt.NDArray[np.uint8]:
    """Light (gradient, vignette, shadow), optics (blur, shake) and sensor noise."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    t = float(rng.uniform(0, 2 * np.pi))
    ramp = ((xx - W / 2) * np.cos(t) + (yy - H / 2) * np.sin(t)) / (W / 2)
    light = 1.0 + float(rng.uniform(0.05, 0.3)) * ramp
    light *= 1.0 - float(rng.uniform(0, 0.35)) * ((xx - W / 2) ** 2 + (yy - H / 2) ** 2) / (W / 2) ** 2
    if "shadow" in kinds:
        shade = np.zeros((H, W), np.float32)
        xa, xb = float(rng.uniform(0.2, 0.8)) * W, float(rng.uniform(0.2, 0.8)) * W
        side = 0 if rng.random() < 0.5 else W
        poly = np.array([(xa, 0), (xb, H), (side, H), (side, 0)], np.int32)
        cv2.fillPoly(shade, [poly], 1.0)
        shade = cv2.GaussianBlur(shade, (0, 0), float(rng.uniform(2, 8)))
        light *= 1.0 - float(rng.uniform(0.35, 0.6)) * shade
    frame = frame * light[..., None]
    if "shake" in kinds:
        n = int(rng.integers(5, 12))
        frame = cv2.filter2D(frame, -1, line_kernel(n, float(rng.uniform(0, np.pi))))
    sigma = float(rng.uniform(0, 1.2))
    if sigma > 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    frame = frame + rng.normal(0, rng.uniform(1.5, 5.0), frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def line_kernel(n: int, angle: float) -> F32:
    """Motion blur: a one-pixel line n px long at ``angle`` (radians), summing to 1."""
    k = np.zeros((n, n), np.float32)
    c = (n - 1) / 2
    cv2.line(k, (round(c - c * np.cos(angle)), round(c - c * np.sin(angle))),
             (round(c + c * np.cos(angle)), round(c + c * np.sin(angle))), 1.0, 1)
    out: F32 = k / k.sum()
    return out


def encode(frame: npt.NDArray[np.uint8], quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def scene_set(glyphs: Glyphs, seeds: range, hard: bool) -> list[Scene]:
    return [make_scene(s, glyphs, hard) for s in seeds]
