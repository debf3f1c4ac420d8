"""The bare baseline: an OpenCV-sample digit reader, for scale.

What the usual tutorials do: blur, adaptive threshold, external contours filtered by size,
aspect and ink, the binary crop made MNIST-style, the same int8 MLP. No background model,
no line removal, no merging or splitting. Run as a script it reads one image and prints
its digits (that is what the start-up benchmark times):

    python -m edge.bench.baseline IMAGE [--model PATH]
"""

from __future__ import annotations

import argparse
import sys
import time

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import Config
from edge.recognition.classify import Classifier
from edge.recognition.normalize import fit_to_mnist
from edge.recognition.read import group_numbers
from edge.types import Box, Digit, FrameResult, GrayImage

BLOCK, C = 31, 10  # adaptive threshold window and offset
MIN_H, MAX_H_FRAC = 14, 0.9
ASPECT = (0.1, 1.2)  # width / height
INK = (0.08, 0.85)  # ink pixels / box area


class BarePipeline:
    def __init__(self, classifier: Classifier, min_confidence: float, gap_factor: float) -> None:
        self.classifier = classifier
        self.min_confidence = min_confidence
        self.gap_factor = gap_factor

    def _binary(self, gray: GrayImage) -> GrayImage:
        blur = cv2.GaussianBlur(gray, (5, 5), 0)
        return cv2.adaptiveThreshold(  # type: ignore[no-any-return]
            blur, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, BLOCK, C
        )

    def _boxes(self, binary: GrayImage) -> list[Box]:
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        fh = binary.shape[0]
        boxes = []
        for c in contours:
            x, y, w, h = cv2.boundingRect(c)
            if h < MIN_H or h > MAX_H_FRAC * fh or not ASPECT[0] <= w / h <= ASPECT[1]:
                continue
            fill = cv2.countNonZero(binary[y : y + h, x : x + w]) / float(w * h)
            if INK[0] <= fill <= INK[1]:
                boxes.append(Box(x, y, w, h))
        return boxes

    def process(self, image: npt.NDArray[np.uint8]) -> FrameResult:
        t0 = time.perf_counter()
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        t1 = time.perf_counter()
        binary = self._binary(gray)
        boxes = self._boxes(binary)
        t2 = time.perf_counter()
        crops = [fit_to_mnist(binary[b.y : b.y2, b.x : b.x2]) for b in boxes]
        stack = np.stack(crops) if crops else np.zeros((0, 28, 28), np.uint8)
        t3 = time.perf_counter()
        preds = self.classifier.predict(stack)
        t4 = time.perf_counter()
        digits = [Digit(p.digit, p.confidence, b) for p, b in zip(preds, boxes, strict=True)
                  if p.confidence >= self.min_confidence]
        ordered, numbers = group_numbers(digits, self.gap_factor)
        t5 = time.perf_counter()
        stage_ms = {"gray": (t1 - t0) * 1e3, "detect": (t2 - t1) * 1e3, "normalize": (t3 - t2) * 1e3,
                    "classify": (t4 - t3) * 1e3, "read": (t5 - t4) * 1e3}
        return FrameResult(ordered, numbers, (t5 - t0) * 1e3, stage_ms, regions=len(boxes),
                           candidates=tuple(boxes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.bench.baseline", description=__doc__.split("\n")[0])
    parser.add_argument("image")
    parser.add_argument("--model", help="TFLite model (default: the shipped one)")
    args = parser.parse_args(argv)
    image = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if image is None:
        print(f"{args.image}: not a readable image", file=sys.stderr)
        return 1
    cfg = Config()  # the daemon's defaults, so both readers drop and group alike
    result = BarePipeline(Classifier(args.model), cfg.classify.min_confidence, cfg.read.gap_factor).process(image)
    print(" ".join(n.value for n in result.numbers) or "-", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
