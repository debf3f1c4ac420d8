"""The converter's pen redraw: skeleton thinning and uniform-width strokes (no TensorFlow)."""

from __future__ import annotations

import cv2
import numpy as np

from converter.augment import Augment, augment_batch
from converter.penredraw import pen_redraw, thin_batch


def _ring_and_bar() -> np.ndarray:
    ring = np.zeros((28, 28), np.float32)
    cv2.circle(ring, (14, 14), 7, 1.0, 4)
    bar = np.zeros((28, 28), np.float32)
    bar[4:24, 12:17] = 1.0
    return np.stack([ring, bar])


def test_thinning_leaves_a_one_pixel_skeleton_that_keeps_the_shape() -> None:
    shapes = (_ring_and_bar() > 0.5).astype(np.uint8)
    skel = thin_batch(shapes.copy())
    assert ((skel == 1) <= (shapes == 1)).all()  # only removes ink
    ring, bar = skel
    assert cv2.connectedComponents(ring)[0] == 2  # still one closed ring (+ background)
    assert cv2.connectedComponents(1 - ring, connectivity=4)[0] == 3  # with its hole
    assert bar.sum(axis=1).max() == 1  # a bar becomes a line one pixel wide
    assert bar.sum() >= 14


def test_pen_width_sets_the_amount_of_ink() -> None:
    shapes = _ring_and_bar()
    thin, thick = pen_redraw(shapes, np.full(2, 0.8)), pen_redraw(shapes, np.full(2, 3.0))
    assert thin.dtype == np.float32 and thin.shape == shapes.shape
    assert np.allclose(thin.max(axis=(1, 2)), 1.0) and np.allclose(thick.max(axis=(1, 2)), 1.0)
    assert (thick.sum(axis=(1, 2)) > 2 * thin.sum(axis=(1, 2))).all()


def test_augmentation_with_pen_redraw_is_seeded_and_keeps_other_draws() -> None:
    rng = np.random.default_rng(0)
    x = (np.clip(_ring_and_bar()[rng.integers(0, 2, 64)], 0, 1) * 255).astype(np.uint8)
    a = augment_batch(x, np.random.default_rng(7), Augment(p_pen=0.5))
    b = augment_batch(x, np.random.default_rng(7), Augment(p_pen=0.5))
    assert (a == b).all() and a.shape == x.shape and a.dtype == np.uint8
    plain = augment_batch(x, np.random.default_rng(7), Augment(p_pen=0.0))
    assert (plain != a).any()
