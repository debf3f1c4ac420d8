"""Waiting for a condition in tests: polled up to a generous bound, never timed."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, poll_s: float = 0.05) -> bool:
    """Poll ``predicate`` every ``poll_s``: True once it holds, False if ``timeout`` passes first."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(poll_s)
    return True
