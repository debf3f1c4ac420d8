"""One frame → what it says: detect → normalise → classify → read. No I/O.

Only this module knows the order of the stages; the stages do not know each other.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import Config
from edge.recognition.classify import Classifier
from edge.recognition.detect import find_regions, light_on_dark
from edge.recognition.normalize import normalize_region
from edge.recognition.orient import MIN_TURN, REDETECT_TURN, Upright, row_angle, turned_back
from edge.recognition.read import group_numbers
from edge.recognition.sheet import Sheet, find_sheet
from edge.recognition.split import pick_alternatives
from edge.types import Box, Digit, FrameResult, GrayImage, Number, Region


def to_gray(image: npt.NDArray[np.uint8]) -> GrayImage:
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)  # type: ignore[no-any-return]
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # type: ignore[no-any-return]
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    raise ValueError(f"unsupported image shape {image.shape}")


EDGE_PIECE = 0.35  # in a still, ink at the edge this much shorter than its tallest digit is no digit


class Pipeline:
    """Composes the pure stages around one classifier. Thread-confined: one per loop."""

    def __init__(self, classifier: Classifier, config: Config, still: bool = False) -> None:
        """``still``: the frames are photos somebody took (``predict``, ``file:``/``dir:``),
        so a digit touching the edge is a tight crop to read, not a cut-off one to drop."""
        self.classifier = classifier
        self.still = still
        self.detect_cfg = config.detect
        self.min_confidence = config.classify.min_confidence
        self.gap_factor = config.read.gap_factor
        self.find_sheet = bool(config.fields)  # regions follow the paper only where there are regions
        self.rectify = True  # read the found sheet upright (the bench compares without)

    def process(self, image: npt.NDArray[np.uint8]) -> FrameResult:
        t0 = time.perf_counter()
        gray = to_gray(image)
        if light_on_dark(gray, self.detect_cfg):
            gray = cv2.bitwise_not(gray)  # every stage below reads dark ink on light paper
        sheet = find_sheet(gray) if self.find_sheet else None
        size = (gray.shape[1], gray.shape[0])
        rectified = sheet is not None and self.rectify
        if sheet is not None and rectified:  # read the sheet upright: a turned sheet reads as a straight one
            gray = sheet.rectify(gray)
        t1 = time.perf_counter()
        regions = self._regions(gray)
        # Rows of digits at 12-45°: each digit is turned with them; read it turned back.
        angle = row_angle(regions) if self.detect_cfg.turn_upright else 0.0
        turn = angle if abs(angle) >= MIN_TURN else 0.0
        upright: Upright | None = None
        if abs(turn) >= REDETECT_TURN:  # so far that detection suffers too: detect upright
            upright = Upright.turn(gray, turn)
            gray, turn = upright.image, 0.0
            regions = self._regions(gray)
        t2 = time.perf_counter()
        crops = np.stack([normalize_region(gray, r, turn=turn) for r in regions]) if regions else np.zeros(
            (0, 28, 28), np.uint8
        )
        t3 = time.perf_counter()
        predictions = self.classifier.predict(crops)
        t4 = time.perf_counter()
        keep = pick_alternatives(regions, predictions, self.detect_cfg)  # touching digits: whole or cut
        picked = [i for i in keep if predictions[i].confidence >= self.min_confidence
                  and predictions[i].confidence > predictions[i].not_digit]
        clipped = 0
        if not self.still:  # a digit cut by the frame's edge is not read (a guess), only counted
            clipped = len({regions[i].group for i in keep if regions[i].clipped})
            picked = [i for i in picked if not regions[i].clipped]
        elif picked:  # a tight crop's corners: a speck or the edge of something else, not a digit
            tallest = max(regions[i].box.h for i in picked)
            picked = [i for i in picked if not regions[i].clipped or regions[i].box.h >= EDGE_PIECE * tallest]
        boxes = [r.box for r in regions] if upright is None else [upright.box_back(r) for r in regions]
        digits = [Digit(predictions[i].digit, predictions[i].confidence, boxes[i], regions[i].clipped)
                  for i in picked]
        # A turned sheet's rows and gaps are told as if it were upright.
        layout = None
        if upright is not None:
            layout = {id(d): regions[i].box for d, i in zip(digits, picked, strict=True)}
        elif turn:
            layout = {id(d): turned_back(d.box, turn, gray.shape) for d in digits}
        ordered, numbers = group_numbers(digits, self.gap_factor, layout, drop_marks=True)
        candidates = tuple(boxes[i] for i in keep)
        if sheet is not None and rectified:  # read on the upright sheet: boxes back to the frame's pixels
            ordered, numbers, candidates = _to_frame(sheet, ordered, numbers, candidates)
        t5 = time.perf_counter()
        stage_ms = {
            "gray": (t1 - t0) * 1e3,
            "detect": (t2 - t1) * 1e3,
            "normalize": (t3 - t2) * 1e3,
            "classify": (t4 - t3) * 1e3,
            "read": (t5 - t4) * 1e3,
        }
        return FrameResult(ordered, numbers, (t5 - t0) * 1e3, stage_ms, regions=len(keep),
                           candidates=candidates, clipped=clipped, sheet=sheet, size=size)

    def _regions(self, gray: GrayImage) -> list[Region]:
        return find_regions(gray, self.detect_cfg, alternatives=True, still=self.still, cut=not self.still)


def _to_frame(sheet: Sheet, digits: tuple[Digit, ...], numbers: tuple[Number, ...], candidates: tuple[Box, ...]
              ) -> tuple[tuple[Digit, ...], tuple[Number, ...], tuple[Box, ...]]:
    """Boxes read on the rectified sheet mapped back to the frame's pixels (the contract's
    boxes); each number also keeps its box on the sheet, for the fields."""
    mapped = {id(d): Digit(d.digit, d.confidence, sheet.rect_to_frame(d.box), d.clipped) for d in digits}
    out_numbers = tuple(
        Number(n.value, n.confidence, sheet.rect_to_frame(n.box), tuple(mapped[id(d)] for d in n.digits),
               sheet_box=sheet.rect_to_sheet(n.box))
        for n in numbers
    )
    return (tuple(mapped[id(d)] for d in digits), out_numbers,
            tuple(sheet.rect_to_frame(b) for b in candidates))
