"""``demo``: scenes of handwritten digits on paper, rendered at start; needs no camera or files.

A sheet of off-white paper under uneven light shows a four-digit meter reading that counts up
(a new value every ``SECONDS_PER_VALUE`` seconds of frames) and a two-digit number below it
that changes more slowly. The digits are pen-drawn glyphs from HwD-1000 (MIT licence; see
edge/demo/README.md), scaled smoothly to 40-80 px and composited as ink. Everything is seeded,
so the same frame index always gives the same picture; only fine sensor-like grain changes
from frame to frame.
"""

from __future__ import annotations

import math
import random
import time
from importlib import resources
from statistics import NormalDist

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import Config
from edge.sources.base import Image, SourceError
from edge.sources.files import Pacer
from edge.types import Frame

SEED = 4107
SECONDS_PER_VALUE = 3.0
METER_START = 1207
CELL = 28
INK_BGR = np.array([62, 38, 34], np.float32)  # blue-black ballpoint
PAPER_BGR = np.array([226, 236, 243], np.float32)  # warm off-white
# One grain field: frame k adds it at one offset and subtracts it at another, eight offsets
# in all, so the four frames of a cycle share no pixels of it.
GRAIN_VIEWS = (((0, 0), (4, 4)), ((1, 3), (3, 0)), ((3, 1), (0, 4)), ((2, 2), (4, 1)))
# Noise comes from the stdlib's random (numpy.random would add 2.4 MB to the daemon's peak
# RSS for this alone): random bytes, mapped through a table to the levels wanted. The
# difference of two views of this half-Gaussian has σ 1.2 levels.
GRAIN_LEVELS = np.array([max(0, int(NormalDist(0.0, 1.7).inv_cdf((b + 0.5) / 256))) for b in range(256)],
                        np.uint8)

FloatImage = npt.NDArray[np.float32]


def load_glyphs() -> list[list[FloatImage]]:
    """The bundled sheet as ink masks (1.0 = ink), cropped to their ink: ``[digit][variant]``."""
    try:
        data = resources.files("edge").joinpath("demo", "glyphs.png").read_bytes()
    except OSError as exc:
        raise SourceError(
            f"demo: the bundled glyph sheet edge/demo/glyphs.png is missing ({exc}); reinstall digit-edge"
        ) from None
    sheet = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if sheet is None or sheet.shape[1] != 10 * CELL:
        raise SourceError("demo: edge/demo/glyphs.png is not the 10-column glyph sheet; reinstall digit-edge")
    glyphs: list[list[FloatImage]] = [[] for _ in range(10)]
    for row in range(sheet.shape[0] // CELL):
        for digit in range(10):
            cell = sheet[row * CELL : (row + 1) * CELL, digit * CELL : (digit + 1) * CELL]
            ink = (255.0 - cell.astype(np.float32)) / 255.0
            ys, xs = np.nonzero(ink > 0.1)
            glyphs[digit].append(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    return glyphs


def random_bytes(rng: random.Random, shape: tuple[int, ...]) -> npt.NDArray[np.uint8]:
    return np.frombuffer(rng.randbytes(math.prod(shape)), np.uint8).reshape(shape)


def render_paper(width: int, height: int, rng: random.Random) -> Image:
    """Off-white paper lit unevenly: a gradient from one corner and a soft vignette."""
    # The daemon's peak memory is a budget (≤ 90 MB on a Pi): this works in two full-frame
    # float32 buffers (1.2 MB each at 640x480) and writes the uint8 page channel by channel.
    angle = rng.uniform(0, 2 * math.pi)
    u = np.arange(width, dtype=np.float32) / width - 0.5
    v = np.arange(height, dtype=np.float32) / height - 0.5
    # light = 0.9 + 0.16 * ramp - 0.22 * radius²: both terms are a row plus a column
    row = 0.16 * math.cos(angle) * u - 0.22 * u * u
    col = 0.9 + 0.16 * math.sin(angle) * v - 0.22 * v * v
    light = col[:, None] + row[None, :]
    fibres = random_bytes(rng, (height, width)).astype(np.float32)
    fibres -= 127.5  # uniform noise of σ 1 once blurred: as smooth as blurred Gaussian noise
    cv2.GaussianBlur(fibres, (0, 0), 2.0, dst=fibres)
    fibres *= 0.012 / 73.9
    light += fibres
    paper: Image = np.empty((height, width, 3), np.uint8)
    for channel, level in enumerate(PAPER_BGR):
        np.multiply(light, level, out=fibres)
        np.clip(fibres, 0, 255, out=fibres)
        paper[:, :, channel] = fibres  # truncates, as astype(np.uint8) would
    return paper


def render_grain(width: int, height: int, rng: random.Random) -> Image:
    """Sensor-like grain: whole levels ≥ 0 to add (and, at another offset, subtract)."""
    grain: Image = GRAIN_LEVELS[random_bytes(rng, (height, width, 3))]
    return grain


def write_number(canvas: Image, text: str, x: int, y: int, height: int,
                 glyphs: list[list[FloatImage]], rng: random.Random) -> None:
    """Draw ``text`` with its top-left near (x, y), digits about ``height`` px tall, as ink."""
    for ch in text:
        ink = glyphs[int(ch)][rng.randrange(len(glyphs[int(ch)]))]
        h = max(8, int(height * rng.uniform(0.92, 1.06)))
        w = max(3, int(ink.shape[1] * h / ink.shape[0]))
        big = cv2.resize(ink, (w, h), interpolation=cv2.INTER_CUBIC)
        big = cv2.GaussianBlur(big, (0, 0), max(0.6, h / 90))
        pad = h // 4
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        turn = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), rng.uniform(-5, 5), 1.0)
        big = cv2.warpAffine(big, turn, (big.shape[1], big.shape[0]), flags=cv2.INTER_LINEAR)
        alpha = np.clip((big - 0.3) / 0.5, 0.0, 1.0) * rng.uniform(0.85, 0.97)  # crisp pen edges
        top = y - pad + rng.randrange(-height // 20 - 1, height // 20 + 2)
        left = x - pad
        y0, x0 = max(0, top), max(0, left)
        y1, x1 = min(canvas.shape[0], top + big.shape[0]), min(canvas.shape[1], left + big.shape[1])
        if y1 > y0 and x1 > x0:  # composite in float on this glyph's patch only
            a = alpha[y0 - top : y1 - top, x0 - left : x1 - left, None]
            region = canvas[y0:y1, x0:x1].astype(np.float32)
            canvas[y0:y1, x0:x1] = np.clip(region * (1 - a) + INK_BGR * a + 0.5, 0, 255).astype(np.uint8)
        x += w + int(height * rng.uniform(0.2, 0.3))


def scene_values(scene: int) -> tuple[str, str]:
    """The meter reading and the second number shown in scene ``scene``."""
    meter = (METER_START + sum(1 + (7 * k) % 5 for k in range(scene))) % 10000
    second = (42 + 13 * (scene // 4)) % 100
    return f"{meter:04d}", f"{second:02d}"


def render_scene(scene: int, width: int, height: int, paper: Image,
                 glyphs: list[list[FloatImage]]) -> Image:
    rng = random.Random((SEED << 32) + scene)
    canvas = paper.copy()  # uint8: glyphs are composited patch by patch, no float frame
    meter, second = scene_values(scene)
    big = int(np.clip(height * 0.14, 16, 80))
    small = int(np.clip(height * 0.10, 14, 60))
    write_number(canvas, meter, int(width * 0.22), int(height * 0.28), big, glyphs, rng)
    write_number(canvas, second, int(width * 0.55), int(height * 0.62), small, glyphs, rng)
    return canvas  # sensor noise is added per frame (the grain in DemoSource.frame_at)


class DemoSource:
    """Endless, paced at ``fps``; the value on the paper changes every few seconds of frames."""

    live = False
    reconnects = 0
    dropped = 0

    def __init__(self, config: Config) -> None:
        self.width, self.height = config.camera.width, config.camera.height
        self.fps = config.fps
        self.frames_per_value = max(1, round(config.fps * SECONDS_PER_VALUE))
        self._glyphs = load_glyphs()
        rng = random.Random(SEED)
        self._paper = render_paper(self.width, self.height, rng)
        self._grain = render_grain(self.width + 4, self.height + 4, rng)
        self._pacer = Pacer(config.fps)
        self._index = 0
        self._scene_no = -1
        self._scene: Image | None = None
        self.state = "ok"

    def frame_at(self, index: int) -> Image:
        """The picture of frame ``index`` (deterministic)."""
        scene_no = index // self.frames_per_value
        if scene_no != self._scene_no or self._scene is None:
            self._scene = render_scene(scene_no, self.width, self.height, self._paper, self._glyphs)
            self._scene_no = scene_no
        (ay, ax), (sy, sx) = GRAIN_VIEWS[index % len(GRAIN_VIEWS)]
        h, w = self.height, self.width
        image = np.asarray(cv2.add(self._scene, self._grain[ay : ay + h, ax : ax + w]), dtype=np.uint8)
        cv2.subtract(image, self._grain[sy : sy + h, sx : sx + w], dst=image)
        return image

    def value_at(self, index: int) -> tuple[str, str]:
        """What frame ``index`` shows: (meter reading, second number)."""
        return scene_values(index // self.frames_per_value)

    def read(self, timeout: float) -> Frame | None:
        if self.state != "ok" or not self._pacer.wait(timeout):
            return None
        frame = Frame(image=self.frame_at(self._index), index=self._index, ts=time.time())
        self._index += 1
        return frame

    def describe(self) -> str:
        return f"demo {self.width}x{self.height}@{self.fps:g} (handwritten digits on paper)"

    def close(self) -> None:
        self.state = "closed"
