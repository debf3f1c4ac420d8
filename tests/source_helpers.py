"""Small helpers shared by the source tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge.config import Config
from tests.waiting import wait_until

DEADLINE_S = 20.0  # generous: conditions are waited for, never timed


def wait_for(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    if not wait_until(condition, deadline_s, poll_s=0.01):
        raise AssertionError(f"gave up waiting for: {what}")


def config(**camera: float) -> Config:
    return Config.model_validate({"fps": 50, "camera": {"width": 64, "height": 48, **camera}})


def card(value: int, size: tuple[int, int] = (64, 48)) -> np.ndarray:
    """A BGR picture whose pixels all equal ``value``, so a frame tells which one it is."""
    return np.full((size[1], size[0], 3), value, np.uint8)
