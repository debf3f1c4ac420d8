"""Accuracy: the whole crop path on HwD-1000 and USPS, and recall / end-to-end on scenes.

A *reader* is anything with ``process(image) -> FrameResult`` (what it read, and in
``candidates`` the regions its detector proposed): the real pipeline and the bare
baseline are scored by the same code on the same images.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from edge.bench.scenes import Scene
from edge.types import Box, FrameResult

Image = npt.NDArray[np.uint8]
IOU = 0.5  # a found box matches a true one when their IoU is at least this


class Reader(Protocol):
    """``process`` returns what was read; ``FrameResult.candidates`` what was proposed."""

    def process(self, image: Image) -> FrameResult: ...


@dataclass
class SceneScore:
    digits: int = 0
    found: int = 0  # true digits matched by a proposed region
    read: int = 0  # true digits matched by an output digit with the right label
    extra: int = 0  # output digits matching no true digit
    scenes: int = 0
    scenes_exact: int = 0  # every digit read right and nothing extra
    numbers: int = 0  # true numbers
    numbers_exact: int = 0  # true numbers matched by an output number with the same value at its place

    @property
    def recall(self) -> float:
        return self.found / max(1, self.digits)

    @property
    def e2e(self) -> float:
        return self.read / max(1, self.digits)

    def add(self, other: SceneScore) -> None:
        """Sum another score into this one (for means over several sets)."""
        for name in ("digits", "found", "read", "extra", "scenes", "scenes_exact", "numbers", "numbers_exact"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def tally(self, result: FrameResult, truth: list[tuple[int, Box]], numbers: list[tuple[str, Box]],
              min_iou: float) -> bool:
        """Count one image: ``truth`` its (label, box) digits, ``numbers`` its (value, box)
        numbers. True when the image was read exactly (every digit right, nothing extra)."""
        boxes = [b for _, b in truth]
        found = _match(boxes, list(result.candidates), min_iou)
        read = _match(boxes, [d.box for d in result.digits], min_iou)
        ok = sum(1 for i, j in read.items() if result.digits[j].digit == truth[i][0])
        extra = len(result.digits) - len(read)
        self.digits += len(truth)
        self.found += len(found)
        self.read += ok
        self.extra += extra
        self.numbers += len(numbers)
        self.numbers_exact += sum(
            any(n.value == value and n.box.iou(box) >= min_iou for n in result.numbers) for value, box in numbers
        )
        self.scenes += 1
        exact = ok == len(truth) and extra == 0
        self.scenes_exact += exact
        return exact

    def as_dict(self) -> dict[str, float | int]:
        return {"digits": self.digits, "recall": round(self.recall, 4), "e2e": round(self.e2e, 4),
                "extra_per_scene": round(self.extra / max(1, self.scenes), 3),
                "scenes_exact": round(self.scenes_exact / max(1, self.scenes), 4),
                "numbers": self.numbers, "numbers_exact": round(self.numbers_exact / max(1, self.numbers), 4)}


def _match(truth: list[Box], found: list[Box], min_iou: float = IOU) -> dict[int, int]:
    """Greedy one-to-one matching by IoU: true index → found index."""
    pairs = sorted(((t.iou(f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    used_t: set[int] = set()
    used_f: set[int] = set()
    out: dict[int, int] = {}
    for iou, i, j in pairs:
        if iou < min_iou:
            break
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            out[i] = j
    return out


def decode(jpeg: bytes) -> Image:
    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("scene JPEG did not decode")
    return img  # type: ignore[no-any-return]


def scene_numbers(scene: Scene) -> list[tuple[str, Box]]:
    """The scene's true numbers: each placed number's value and the union of its digits' boxes."""
    out = []
    for i, value in enumerate(scene.values):
        boxes = [t.box for t in scene.digits if t.number == i]
        if boxes:
            out.append((value, Box.union_all(boxes)))
    return out


def score_scenes(reader: Reader, scenes: Iterable[Scene], failures: list[int] | None = None) -> SceneScore:
    score = SceneScore()
    for scene in scenes:
        result = reader.process(decode(scene.jpeg))
        exact = score.tally(result, [(t.label, t.box) for t in scene.digits], scene_numbers(scene), IOU)
        if failures is not None and not exact:
            failures.append(scene.seed)
    return score


# --- single digits drawn on paper -------------------------------------------------------

def load_hwd(root: Path) -> tuple[list[Image], list[int]]:
    """HwD-1000 glyphs as ink (white on black, 0..255) and their labels."""
    images, labels = [], []
    with open(root / "dataset.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            img = cv2.imread(str(root / row["image"]), cv2.IMREAD_GRAYSCALE)
            if img is None:
                raise FileNotFoundError(f"{root / row['image']}: not a readable image")
            images.append(255 - img)
            labels.append(int(row["label"]))
    return images, labels


def load_usps(path: Path) -> tuple[list[Image], list[int]]:
    """USPS digits (16x16, values -1..1) as ink 0..255 and their labels."""
    images, labels = [], []
    with gzip.open(path, "rt", encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) != 257:
                continue
            vals = np.array(parts[1:], np.float32).reshape(16, 16)
            images.append(np.clip((vals + 1.0) * 127.5, 0, 255).astype(np.uint8))
            labels.append(int(float(parts[0])))
    return images, labels


def on_paper(ink: Image, seed: int) -> Image:
    """Draw one glyph 60–100 px tall, dark pen on off-white paper, as a small BGR photo."""
    rng = np.random.default_rng(seed)
    height = int(rng.integers(60, 101))
    rows = np.flatnonzero(ink.max(axis=1) > 25)
    cols = np.flatnonzero(ink.max(axis=0) > 25)
    if rows.size:
        ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    gh, gw = ink.shape
    width = max(2, round(gw * height / gh))
    glyph = cv2.resize(ink, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    canvas_h, canvas_w = height * 2 + 40, max(width * 2 + 40, height * 2)
    paper = np.array(rng.uniform(200, 240, 3), np.float32)
    img = np.empty((canvas_h, canvas_w, 3), np.float32)
    img[:] = paper
    y0, x0 = (canvas_h - height) // 2, (canvas_w - width) // 2
    a = np.clip(glyph, 0, 1)[..., None]
    pen = np.array(rng.uniform(10, 50, 3), np.float32)
    img[y0 : y0 + height, x0 : x0 + width] = img[y0 : y0 + height, x0 : x0 + width] * (1 - a) + pen * a
    img += np.asarray(rng.normal(0, 2.0, size=img.shape), np.float32)
    out: Image = np.clip(img, 0, 255).astype(np.uint8)
    return out


@dataclass
class CropScore:
    total: int = 0
    right: int = 0
    none: int = 0  # nothing read (not found, or below the confidence threshold)
    several: int = 0  # read as more than one digit

    @property
    def accuracy(self) -> float:
        return self.right / max(1, self.total)

    def as_dict(self) -> dict[str, float | int]:
        return {"n": self.total, "accuracy": round(self.accuracy, 4), "none": self.none, "several": self.several}


def score_crops(reader: Reader, glyphs: Iterable[tuple[Image, int]], seed: int = 0) -> CropScore:
    """Right = the image reads as exactly the one true digit."""
    score = CropScore()
    for i, (ink, label) in enumerate(glyphs):
        result = reader.process(on_paper(ink, seed + i))
        score.total += 1
        value = "".join(str(d.digit) for d in result.digits)
        score.right += value == str(label)
        score.none += not value
        score.several += len(value) > 1
    return score


def iter_pairs(images: list[Image], labels: list[int], limit: int | None = None) -> Iterator[tuple[Image, int]]:
    n = len(images) if limit is None else min(limit, len(images))
    step = max(1, len(images) // n)
    for i in range(0, len(images), step)[:n]:
        yield images[i], labels[i]


# --- real photographs and scans (the ../shared/data/real layout) -----------------------

REAL_IOU = 0.4  # real truth boxes are hand- or script-drawn around the ink: a looser match


@dataclass
class RealScore(SceneScore):
    """A scene score whose numbers are the truth's digits grouped as the reader groups them."""

    def as_dict(self) -> dict[str, float | int]:
        return {**super().as_dict(), "images": self.scenes,
                "extra_per_image": round(self.extra / max(1, self.scenes), 3)}


@dataclass(frozen=True)
class RealImage:
    path: Path
    digits: tuple[tuple[int, Box], ...]  # (label, box) per true digit


def load_real_set(folder: Path) -> list[RealImage]:
    """One set in the ``real/`` layout: images beside ``truth.json`` (file → [{label, box}])."""
    import json

    truth_path = folder / "truth.json"
    try:
        truth = json.loads(truth_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{truth_path}: cannot read the truth file ({exc})") from None
    out = []
    for name in sorted(truth):
        digits = tuple((int(d["label"]), Box(*(int(v) for v in d["box"]))) for d in truth[name])
        out.append(RealImage(folder / name, digits))
    return out


def real_sets(root: Path) -> dict[str, list[RealImage]]:
    """Every set under ``root`` (each a folder with a ``truth.json``), or ``root`` itself."""
    if (root / "truth.json").exists():
        return {root.name: load_real_set(root)}
    return {p.name: load_real_set(p) for p in sorted(root.iterdir()) if (p / "truth.json").exists()}


def score_real(reader: Reader, images: Iterable[RealImage], failures: list[str] | None = None,
               gap_factor: float = 0.6) -> RealScore:
    """Digits found / read right, extra digits, numbers and images read exactly. The true
    digits are grouped into numbers by the reader's own rule (``gap_factor``)."""
    from edge.recognition.read import group_numbers
    from edge.types import Digit

    score = RealScore()
    for item in images:
        image = cv2.imread(str(item.path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{item.path}: not a readable image")
        _, true_numbers = group_numbers([Digit(lab, 1.0, b) for lab, b in item.digits], gap_factor)
        exact = score.tally(reader.process(image), list(item.digits), [(n.value, n.box) for n in true_numbers],
                            REAL_IOU)
        if failures is not None and not exact:
            failures.append(item.path.name)
    return score
