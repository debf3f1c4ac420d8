"""A second scene renderer, independent of edge/bench/scenes.py in how strokes, paper and light are made.

edge/bench/scenes.py scales MNIST bitmaps (or re-inks their skeleton at one width) onto flat
paper, turns the sheet in-plane, lights it with a linear ramp and a quadratic vignette and
blurs with a Gaussian. Here, instead:

- strokes: each glyph (MNIST, HwD-1000 or USPS *test* digits, never trained on) becomes a
  pen trajectory (its skeleton) drawn with varying pressure: width and darkness change
  smoothly along the stroke; chalk skips where the board's grain is low;
- paper: fibres, grain and blotches; coloured sheets; a chalkboard (light digits on dark);
- geometry: the sheet seen in perspective by a camera tilted up to 50° from its normal;
- light: a lamp's inverse-square falloff and the lens's cos⁴ vignette;
- optics and sensor: a defocus disc or a motion line, shot + read noise, a phone-like white
  balance error and sharpening, then JPEG at its own quality.

A :class:`Look` fixes every condition and :func:`render` draws one scene of it, so a sweep
varies one field of an easy look (edge/bench/sweeps.py), and :func:`indep_set` draws looks at
random for the independent held-out set that nothing is tuned on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.bench.pen import Glyphs, _thin, mnist_glyphs
from edge.bench.scenes import H, Scene, Truth, W, _place, encode, line_kernel
from edge.types import Box

F32 = npt.NDArray[np.float32]
FOCAL = 560.0  # px: a phone camera's ~60° horizontal field of view at 640x480
INKS = {"black": (30, 28, 26), "blue": (150, 60, 25), "red": (45, 40, 185), "green": (70, 120, 35),
        "purple": (125, 45, 95)}  # BGR
PAPERS = {"white": (226, 230, 233), "yellow": (140, 222, 240), "pink": (205, 190, 245), "blue": (235, 205, 168),
          "green": (185, 228, 190), "kraft": (125, 165, 195), "grey": (178, 180, 182)}
BOARD, CHALK = (48, 66, 44), (222, 226, 228)  # dark green board, white chalk
HARD_KINDS2 = ("small", "thin", "faint", "defocus", "motion", "tilt", "rotation", "noise", "chalk", "dim")


class GlyphSource(Protocol):
    def pick(self, rng: np.random.Generator, label: int) -> F32: ...


class GlyphMix:
    """Several glyph sets; each pick first chooses a set (by weight), then a glyph of it."""

    def __init__(self, sources: list[tuple[GlyphSource, float]]) -> None:
        self.sources = [s for s, _ in sources]
        w = np.array([w for _, w in sources], np.float64)
        self.weights = w / w.sum()

    def pick(self, rng: np.random.Generator, label: int) -> F32:
        return self.sources[int(rng.choice(len(self.sources), p=self.weights))].pick(rng, label)


def indep_glyphs(data: Path) -> GlyphMix:
    """Glyphs for the independent set: the held-out half of MNIST test, HwD-1000, USPS test."""
    from edge.bench.accuracy import load_hwd, load_usps

    hwd, hwd_labels = load_hwd(data / "hwd1000")
    usps, usps_labels = load_usps(data / "usps" / "zip.test.gz")
    return GlyphMix([(mnist_glyphs(str(data / "mnist.npz"), "held"), 0.5),
                     (Glyphs(np.stack(hwd), np.array(hwd_labels)), 0.25),
                     (Glyphs(np.stack(usps), np.array(usps_labels)), 0.25)])


@dataclass(frozen=True)
class Look:
    """Every condition of a scene. The defaults are an easy, ordinary photo."""

    height: float = 64.0  # digit height in px at the sheet's centre (before tilt foreshortens it)
    pen: float = 0.08  # pen width / digit height
    contrast: float | None = None  # paper minus ink, grey levels (None: what the ink gives)
    blur: float = 0.5  # defocus disc radius, px
    motion: int = 0  # motion blur length, px (0: none)
    rotation: float = 0.0  # in-plane turn of the sheet, degrees
    tilt: float = 0.0  # camera axis away from the sheet's normal, degrees
    noise: float = 2.0  # sensor noise σ at mid grey, grey levels
    chalk: float | None = None  # chalkboard: fraction of the stroke the chalk skips (None: paper)
    ink: str = "black"
    paper: str = "white"
    texture: float = 0.5  # fibres and grain, 0..1
    lamp: float = 0.2  # how much the light falls off across the frame, 0..1
    vignette: float = 0.3  # cos⁴ vignette strength, 0..1
    jpeg: int = 85
    numbers: tuple[int, int] = (1, 3)  # numbers per scene, min and max
    count: tuple[int, int] = (1, 4)  # digits per number, min and max
    spacing: float | None = None  # gap between a number's digits / height (None: 0.12-0.4; < 0: they overlap)


def _field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> F32:
    """A smooth random field in -1..1 with about ``cells`` bumps across its longer side."""
    h, w = shape
    gh, gw = max(2, round(cells * h / max(h, w)) + 1), max(2, round(cells * w / max(h, w)) + 1)
    f: F32 = cv2.resize(rng.standard_normal((gh, gw), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    return f / max(1e-6, float(np.abs(f).max()))


def trajectory_alpha(rng: np.random.Generator, glyph: F32, height: int, pen: float) -> F32:
    """The glyph's skeleton, scaled to ``height`` and drawn with a pen ``pen`` px wide whose
    pressure (width ±30%, darkness 0.7–1) varies smoothly along the stroke."""
    base = 48
    gh, gw = glyph.shape
    small = cv2.resize(glyph, (max(2, round(gw * base / gh)), base), interpolation=cv2.INTER_CUBIC)
    skel = _thin((small > 0.45).astype(np.uint8))
    ys, xs = np.nonzero(skel)
    scale = max(1.0, height - pen) / base
    pad = int(pen) + 3
    out_h, out_w = math.ceil(base * scale) + 2 * pad, math.ceil(small.shape[1] * scale) + 2 * pad
    line = np.zeros((out_h, out_w), np.uint8)
    segs = []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):  # 8-neighbour links of the skeleton
        ny, nx = ys + dy, xs + dx
        ok = (ny < skel.shape[0]) & (nx >= 0) & (nx < skel.shape[1])
        ok[ok] = skel[ny[ok], nx[ok]] > 0
        segs.append(np.stack([xs[ok], ys[ok], nx[ok], ny[ok]], axis=1))
    pts = np.round((np.concatenate(segs).astype(np.float32) * scale + pad) * 16).astype(np.int32)
    cv2.polylines(line, list(pts.reshape(-1, 2, 2)), False, 255, 1, cv2.LINE_8, shift=4)
    line[np.round(ys * scale + pad).astype(int), np.round(xs * scale + pad).astype(int)] = 255
    dist, labels = cv2.distanceTransformWithLabels((line == 0).astype(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    zy, zx = np.nonzero(line)  # the labels number the stroke pixels in this (raster) order
    pressure = _field(rng, line.shape, 3)[zy, zx]
    radius = np.concatenate([[0.0], pen / 2 * (1 + 0.3 * pressure)]).astype(np.float32)
    dark = np.concatenate([[0.0], 0.85 + 0.15 * pressure]).astype(np.float32)
    alpha: F32 = (np.clip(radius[labels] + 0.5 - dist, 0, 1) * dark[labels]).astype(np.float32)
    rows, cols = np.flatnonzero(alpha.max(1) > 0.1), np.flatnonzero(alpha.max(0) > 0.1)
    return alpha[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if rows.size else alpha


def homography(rotation: float, tilt: float, axis: float) -> npt.NDArray[np.float64]:
    """Sheet (origin at its centre, px) → frame: turned by ``rotation``° in its plane, seen
    by a pinhole camera whose axis is ``tilt``° off the normal about an in-plane ``axis``
    (radians); scale 1 at the centre, which lands in the frame's centre."""
    c, s = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    r_tilt, _ = cv2.Rodrigues(np.array([math.cos(axis), math.sin(axis), 0.0]) * math.radians(tilt))
    src = np.array([[-100, -100], [100, -100], [100, 100], [-100, 100]], np.float32)
    p = (r_tilt @ turn @ np.c_[src, np.zeros(4)].T).T
    z = p[:, 2] + FOCAL
    dst = np.stack([FOCAL * p[:, 0] / z + W / 2, FOCAL * p[:, 1] / z + H / 2], axis=1).astype(np.float32)
    return cv2.getPerspectiveTransform(src, dst)  # type: ignore[no-any-return]


def _map(m: npt.NDArray[np.float64], pts: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return cv2.perspectiveTransform(pts.reshape(-1, 1, 2).astype(np.float32), m).reshape(-1, 2)  # type: ignore[no-any-return]


def _paper(rng: np.random.Generator, shape: tuple[int, int], look: Look) -> F32:
    """The sheet (or board) before ink: its colour times fibres, grain and blotches."""
    h, w = shape
    t = look.texture
    lum = rng.standard_normal((h, w), dtype=np.float32) * (2.5 * t)
    lum = cv2.GaussianBlur(lum, (0, 0), 0.7) + _field(rng, shape, max(2, w // 90)) * (5.0 * t)
    for sign in (-1.0, 1.0):  # fibres: short dark and light strands
        n = int(t * h * w / 3000)
        x0, y0 = rng.uniform(0, w, n), rng.uniform(0, h, n)
        ang, ln = rng.uniform(0, np.pi, n), rng.uniform(4, 20, n)
        seg = np.stack([x0, y0, x0 + ln * np.cos(ang), y0 + ln * np.sin(ang)], 1)
        fib = np.zeros((h, w), np.float32)
        cv2.polylines(fib, list(np.round(seg * 16).astype(np.int32).reshape(-1, 2, 2)), False, 1.0, 1,
                      cv2.LINE_AA, shift=4)
        lum += sign * (6.0 * t) * cv2.GaussianBlur(fib, (0, 0), 0.5)
    if look.chalk is not None:  # chalk dust smeared over the board
        lum += np.clip(_field(rng, shape, 6), 0, 1) * 14.0
    colour = np.array(BOARD if look.chalk is not None else PAPERS[look.paper], np.float32)
    out: F32 = colour * (1.0 + lum[..., None] / 200.0)
    return out


def _ink_colour(look: Look, paper: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The ink at full cover; with ``contrast`` its grey lies that many levels from the paper's."""
    ink = np.array(CHALK if look.chalk is not None else INKS[look.ink], np.float32)
    if look.contrast is None:
        return ink
    grey = np.array([0.114, 0.587, 0.299], np.float32)  # BGR weights of cv2's grey
    span = float(abs(grey @ (paper - ink)))
    return paper + (ink - paper) * (look.contrast / max(1.0, span))


def _light(rng: np.random.Generator, look: Look) -> F32:
    """Lamp falloff (a point light above the sheet, inverse square × cosine) and cos⁴ vignette."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    r2 = (xx - W / 2) ** 2 + (yy - H / 2) ** 2
    vig = (FOCAL**2 / (FOCAL**2 + r2)) ** 2
    light = 1.0 - look.vignette * (1.0 - vig / vig.max())
    ang, dist, hz = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 1.5) * W, rng.uniform(250, 700)
    lx, ly = W / 2 + dist * math.cos(ang), H / 2 + dist * math.sin(ang)
    e = hz / ((xx - lx) ** 2 + (yy - ly) ** 2 + hz**2) ** 1.5
    out: F32 = (light * (1.0 - look.lamp * (1.0 - e / e.max()))).astype(np.float32)
    return out


def _disc(radius: float) -> F32:
    """Defocus: an anti-aliased disc of ``radius`` px, summing to 1."""
    n = 2 * math.ceil(radius) + 1
    big = np.zeros((n * 8, n * 8), np.float32)
    cv2.circle(big, (n * 4, n * 4), round(radius * 8), 1.0, -1, cv2.LINE_AA)
    k: F32 = cv2.resize(big, (n, n), interpolation=cv2.INTER_AREA)
    out: F32 = k / k.sum()
    return out


def _camera(rng: np.random.Generator, frame: F32, look: Look) -> npt.NDArray[np.uint8]:
    """Light, optics, sensor and the phone's processing, in that order."""
    frame = frame * _light(rng, look)[..., None] * float(rng.uniform(0.92, 1.05))
    if look.blur >= 0.5:
        frame = cv2.filter2D(frame, -1, _disc(look.blur))
    if look.motion >= 2:
        frame = cv2.filter2D(frame, -1, line_kernel(look.motion, float(rng.uniform(0, np.pi))))
    sigma = look.noise * np.sqrt(0.25 + 0.75 * np.clip(frame, 0, 255) / 128.0)  # shot + read noise
    frame = frame + (sigma * rng.standard_normal(frame.shape, dtype=np.float32)).astype(np.float32)  # numpy 2.5: f64
    frame = frame * rng.uniform(0.94, 1.06, 3).astype(np.float32)  # white balance error
    amount = float(rng.uniform(0.2, 0.6))  # the phone's sharpening
    frame = frame * (1 + amount) - cv2.GaussianBlur(frame, (0, 0), 1.2) * amount
    return np.clip(frame, 0, 255).astype(np.uint8)


def render(seed: int, glyphs: GlyphSource, look: Look, kinds: tuple[str, ...] = ()) -> Scene:
    """One 640x480 JPEG scene of ``look``; truth boxes are each digit's ink as the camera sees it."""
    rng = np.random.default_rng(seed)
    m = homography(look.rotation, look.tilt, float(rng.uniform(0, np.pi)))
    corners = np.array([[0, 0], [W, 0], [W, H], [0, H]], np.float32)
    pre = np.clip(_map(np.linalg.inv(m).astype(np.float64), corners), -1600, 1600)  # the frame, seen on the sheet
    x0, y0 = np.floor(pre.min(axis=0)) - 4
    cw, ch = int(np.ceil(pre[:, 0].max() - x0)) + 4, int(np.ceil(pre[:, 1].max() - y0)) + 4
    to_frame: npt.NDArray[np.float64] = m @ np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]])  # canvas px → frame px

    def inside(rect: tuple[int, int, int, int]) -> bool:
        a, b, a2, b2 = rect
        p = _map(to_frame, np.array([[a, b], [a2, b], [a2, b2], [a, b2]], np.float32))
        return bool((p[:, 0] > 10).all() and (p[:, 0] < W - 10).all() and (p[:, 1] > 10).all()
                    and (p[:, 1] < H - 10).all())

    darkness = np.zeros((ch, cw), np.float32)
    gaps = None if look.chalk is None else cv2.GaussianBlur(
        rng.standard_normal((ch, cw), dtype=np.float32), (0, 0), 0.8)
    truths: list[Truth] = []
    values: list[str] = []
    taken: list[tuple[int, int, int, int]] = []
    n_numbers = int(rng.integers(look.numbers[0], look.numbers[1] + 1))
    for _ in range(n_numbers):
        count = int(rng.integers(look.count[0], look.count[1] + 1))
        labels = [int(v) for v in rng.integers(0, 10, size=count)]
        row_h = min(int(look.height * 1.2) + 2, H - 22)  # a frame-high digit still fits inside()
        alphas = []
        for d in labels:
            h = min(row_h - 2, max(8, round(look.height * rng.uniform(0.92, 1.08))))
            alphas.append(trajectory_alpha(rng, glyphs.pick(rng, d), h, max(1.0, look.pen * h)))
        spaces = [look.height * rng.uniform(0.12, 0.4) for _ in labels]
        if look.spacing is not None:  # drawn anyway, so the rest of the scene stays as it was
            spaces = [look.height * look.spacing for _ in labels]
        spot = None
        while alphas and spot is None:  # drop digits until the number fits the frame
            total_w = int(sum(a.shape[1] for a in alphas) + sum(spaces[1 : len(alphas)]) + 2)
            spot = _place(rng, taken, total_w, row_h, (0, 0, cw, ch), margin=int(look.height * 0.8) + 4, ok=inside)
            if spot is None:
                alphas, labels = alphas[:-1], labels[:-1]
        if spot is None:
            continue
        x = float(spot[0])
        for i, (label, a) in enumerate(zip(labels, alphas, strict=True)):
            x += spaces[i] if i else 0.0
            ah, aw = a.shape
            y, xi = spot[1] + int(rng.integers(0, max(1, row_h - ah))), round(x)
            if gaps is not None and look.chalk is not None:  # chalk skips the board's low spots
                cut = float(np.quantile(gaps[y : y + ah, xi : xi + aw], look.chalk)) if look.chalk > 0 else -1e9
                a = a * (gaps[y : y + ah, xi : xi + aw] > cut)
            region = darkness[y : y + ah, xi : xi + aw]
            np.maximum(region, a, out=region)
            ys, xs = np.nonzero(a > 0.35)
            if xs.size:
                p = _map(to_frame, np.stack([xs + xi, ys + y], axis=1).astype(np.float32))
                (bx, by), (bx2, by2) = p.min(axis=0), p.max(axis=0)
                box = Box(int(bx), int(by), math.ceil(bx2 - bx) + 1, math.ceil(by2 - by) + 1)
                truths.append(Truth(label, box, len(values)))
            x += aw
        values.append("".join(str(v) for v in labels))

    paper = _paper(rng, (ch, cw), look)
    ink = _ink_colour(look, paper.reshape(-1, 3).mean(axis=0))
    a = darkness[..., None]
    canvas = paper * (1.0 - a) + ink * a
    frame = cv2.warpPerspective(canvas, to_frame, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Scene(seed, encode(_camera(rng, frame, look), look.jpeg), tuple(truths), tuple(values), kinds)


def random_look(rng: np.random.Generator, hard: bool) -> tuple[Look, tuple[str, ...]]:
    """An ordinary photo's conditions drawn at random; a hard one pushes one or two to the far end."""
    u = rng.uniform
    paper, chalk = "white", None
    r = rng.random()
    if r < 0.06:
        chalk = float(u(0.0, 0.25))
    elif r < 0.22:
        paper = str(rng.choice(["yellow", "pink", "blue", "green", "kraft", "grey"]))
    look = Look(height=float(np.exp(u(np.log(24), np.log(150)))), pen=float(np.exp(u(np.log(0.04), np.log(0.15)))),
                blur=float(u(0, 1.3)), rotation=float(u(-15, 15)), tilt=float(u(0, 25)), noise=float(u(1, 5)),
                chalk=chalk, ink=str(rng.choice(list(INKS), p=[0.45, 0.35, 0.1, 0.05, 0.05])), paper=paper,
                texture=float(u(0.2, 1.0)), lamp=float(u(0, 0.4)), vignette=float(u(0, 0.5)),
                jpeg=int(rng.integers(40, 93)))
    if look.height > 110:
        look = replace(look, numbers=(1, 2))
    if not hard:
        return look, ()
    kinds = tuple(str(k) for k in rng.choice(HARD_KINDS2, size=1 + int(rng.random() < 0.35), replace=False))
    push = {"small": {"height": float(u(16, 26)), "numbers": (1, 3)}, "thin": {"pen": float(u(0.02, 0.04))},
            "faint": {"contrast": float(u(30, 70))}, "defocus": {"blur": float(u(1.5, 3.0))},
            "motion": {"motion": int(rng.integers(5, 12))}, "tilt": {"tilt": float(u(30, 50))},
            "rotation": {"rotation": float(rng.choice([-1, 1]) * u(15, 30))}, "noise": {"noise": float(u(8, 16))},
            "chalk": {"chalk": float(u(0.1, 0.4))}, "dim": {"lamp": float(u(0.6, 0.85)), "vignette": 0.8}}
    for k in kinds:
        look = replace(look, **push[k])  # type: ignore[arg-type]
    return look, kinds


def indep_set(glyphs: GlyphSource, seeds: range, hard: bool) -> list[Scene]:
    """The independent held-out scenes: a random look per seed, rendered by this module."""
    out = []
    for s in seeds:
        look, kinds = random_look(np.random.default_rng((s, 1)), hard)
        out.append(render(s, glyphs, look, kinds))
    return out
