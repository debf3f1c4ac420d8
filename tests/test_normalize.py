"""The MNIST-style crop: what the normaliser does to pen strokes of different widths."""

from __future__ import annotations

import cv2
import numpy as np

from edge.config import DetectConfig
from edge.recognition.classify import Classifier
from edge.recognition.detect import find_regions
from edge.recognition.normalize import MIN_STROKE, fit_to_mnist, normalize_region, stroke_width
from tests.imaging import paper


def test_stroke_width_of_drawn_lines() -> None:
    for pen in (1, 3, 6):
        ink = np.zeros((120, 120), np.float32)
        cv2.line(ink, (10, 20), (110, 20), 1.0, pen)
        cv2.line(ink, (20, 40), (20, 110), 1.0, pen)
        true_width = float(ink.sum()) / (101 + 71)  # OpenCV's line widths are not exactly `pen`
        assert abs(stroke_width(ink) - true_width) <= 0.15 * true_width, pen


def test_a_fine_pen_on_a_big_digit_is_widened_to_a_readable_stroke() -> None:
    """A 2 px pen on 150 px digits shrinks to a faint 0.3 px hairline at 20 px unless widened."""
    canvas = paper(400, 300, seed=2)
    ink = (40, 40, 40)
    cv2.ellipse(canvas, (120, 150), (45, 75), 0, 0, 360, ink, 2, cv2.LINE_AA)
    cv2.polylines(canvas, [np.array([(220, 80), (310, 80), (250, 225)], np.int32)], False, ink, 2, cv2.LINE_AA)
    gray = cv2.cvtColor(np.clip(canvas, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    regions = sorted(find_regions(gray, DetectConfig()), key=lambda r: r.box.x)
    assert [r.box.h > 140 for r in regions] == [True, True]
    crops = np.stack([normalize_region(gray, r) for r in regions])
    for crop in crops:
        assert crop.max() >= 230, "the strokes should reach full ink, like MNIST's"
        assert stroke_width(crop.astype(np.float32) / 255.0) >= 0.8 * MIN_STROKE
    predictions = Classifier().predict(crops)
    assert [p.digit for p in predictions] == [0, 7]
    assert min(p.confidence for p in predictions) >= 0.95


def test_ordinary_strokes_are_left_as_they_are() -> None:
    """An MNIST-width stroke is not widened: the crop keeps the ink's own proportions."""
    ink = np.zeros((100, 60), np.float32)
    cv2.ellipse(ink, (30, 50), (25, 45), 0, 0, 360, 1.0, 9)
    crop = fit_to_mnist(ink)
    rows = np.flatnonzero(crop.max(axis=1) > 12)
    assert rows[-1] - rows[0] + 1 == 20  # longest side 20 px, not grown by a dilation
    assert 2.0 <= stroke_width(crop.astype(np.float32) / 255.0) <= 3.5


def test_a_narrow_one_is_centred_by_its_centre_of_mass() -> None:
    """Shrunk to 2 x 20 px, a "1" is an N x 2 array: the centring must not take it for points."""
    ink = np.zeros((65, 7), np.float32)
    ink[:, 1:6] = 1.0
    crop = fit_to_mnist(ink).astype(np.float64)
    ys, xs = np.indices(crop.shape)
    assert abs((crop * ys).sum() / crop.sum() - 14) <= 0.5
    assert abs((crop * xs).sum() / crop.sum() - 14) <= 0.5
