"""Training crops cut by the daemon's own detector from rendered camera scenes.

The CNN's *not a digit* class has to learn what the detector really proposes besides
digits: specks, paper texture, ruling remnants, wrong cuts of touching digits, fragments of
a neighbour. So scenes are rendered with the checkout's ``bench/scenes.py`` (glyphs from
MNIST **train** only: the bench's scenes use MNIST test glyphs), every proposed region
(``find_regions(..., alternatives=True)``) is normalised exactly as the daemon does, and each
crop is labelled against the scene's true boxes:

- the true digit when its box matches one (IoU ≥ 0.5, the bench's rule);
- *not a digit* when it overlaps no true box by IoU ≥ 0.35, or covers two true digits
  (a wrong merge); crops in between (a digit cut a little off) are left out, since they
  are neither a clean digit nor clearly something else;
- tall thin non-digit crops (width < 0.3 x height) are left out too: fitted to 28x28 they
  are a "1", and teaching that a "1" is not a digit would cost real ones.

The harvest is seeded and cached as an npz under ``--cache`` (default ``out/cache``), keyed
by the training digits and the settings, so a rerun of ``digit-convert train`` is fast.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from converter import ConverterError
from converter.data import Images, Labels
from converter.model import NOT_DIGIT

log = logging.getLogger(__name__)

VERSION = 1  # bump when the harvest's rules change: the cache key includes it
SEED_BASE = 10_000_000  # scene seeds far from the bench's (0.., 100_000..)
DIGIT_IOU = 0.5
OTHER_IOU = 0.35
THIN = 0.3


@dataclass(frozen=True)
class Harvest:
    """Normalised 28x28 crops and labels 0..10 (10 = not a digit), with counts for the card."""

    x: Images
    y: Labels
    scenes: int
    seconds: float

    def counts(self) -> dict[str, int]:
        nd = int((self.y == NOT_DIGIT).sum())
        return {"scenes": self.scenes, "digits": len(self.y) - nd, "not_digits": nd}


def _bench() -> Any:
    """The scene renderer: ``edge.bench.scenes`` where the bench lives inside the package,
    else the checkout's ``bench.scenes`` (``digit-convert`` installed editable does not put
    the checkout on ``sys.path``, so it is added)."""
    try:
        return importlib.import_module("edge.bench.scenes")
    except ImportError:
        pass
    checkout = Path(__file__).resolve().parents[1]
    if importlib.util.find_spec("bench") is None and (checkout / "bench" / "scenes.py").is_file():
        sys.path.append(str(checkout))
    try:
        from bench import scenes
    except ImportError:
        raise ConverterError(
            "bench.scenes: not importable; --arch cnn renders training scenes with the source "
            "checkout's bench/ (run from the project's root)") from None
    return scenes


def harvest(x_train: Images, y_train: Labels, n_scenes: int, seed: int,
            cache: Path | None) -> Harvest:
    """Crops from ``n_scenes`` scenes (half ordinary, half hard) drawn with these digits."""
    key = hashlib.sha256(x_train.tobytes() + y_train.tobytes()
                         + f"{VERSION}/{n_scenes}/{seed}".encode()).hexdigest()[:16]
    path = cache / f"detcrops-{key}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path) as npz:
            got = Harvest(npz["x"], npz["y"].astype(np.int64), int(npz["scenes"]),
                          float(npz["seconds"]))
        log.info("detector crops from %s: %s", path, got.counts())
        return got
    scenes = _bench()
    from edge.config import Config
    from edge.recognition.detect import find_regions
    from edge.recognition.normalize import normalize_region

    cfg = Config().detect
    glyphs = scenes.Glyphs(x_train, y_train)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    started = time.perf_counter()
    for i in range(n_scenes):
        scene = scenes.make_scene(SEED_BASE + seed * 100_000 + i, glyphs, hard=i % 2 == 1)
        gray = cv2.imdecode(np.frombuffer(scene.jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        if gray is None:
            raise ConverterError(f"scene {scene.seed}: the rendered JPEG did not decode")
        regions = find_regions(gray, cfg, alternatives=True)
        truth = [t.box for t in scene.digits]
        for region in regions:
            label = label_for(region.box, truth, [t.label for t in scene.digits])
            if label is None:
                continue
            xs.append(normalize_region(gray, region))
            ys.append(label)
    seconds = time.perf_counter() - started
    got = Harvest(np.stack(xs).astype(np.uint8) if xs else np.zeros((0, 28, 28), np.uint8),
                  np.asarray(ys, np.int64), n_scenes, round(seconds, 1))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=got.x, y=got.y, scenes=got.scenes, seconds=got.seconds)
    log.info("detector crops from %d scenes in %.0f s: %s", n_scenes, seconds, got.counts())
    return got


def label_for(box: Any, truth: list[Any], labels: list[int]) -> int | None:
    """The true digit, ``NOT_DIGIT``, or None (ambiguous: left out). See the module notes."""
    if not truth:
        return None if box.w < THIN * box.h else NOT_DIGIT
    ious = [box.iou(t) for t in truth]
    best = int(np.argmax(ious))
    if ious[best] >= DIGIT_IOU:
        return int(labels[best])
    covered = sum(1 for t in truth if _inter(box, t) >= 0.5 * t.w * t.h)
    if ious[best] >= OTHER_IOU and covered < 2:
        return None
    if box.w < THIN * box.h:
        return None
    return NOT_DIGIT


def _inter(a: Any, b: Any) -> int:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return int(max(0, w) * max(0, h))
