"""Waiting for a condition (a process's first reading, a broker's ack): polled up to a
generous bound, never timed. The bench's parts and the tests share it."""

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
