"""Fresh augmented training epochs, made in worker processes while the network trains.

Each epoch's digits come from fixed chunks, each chunk from its own generator seeded by
(seed, epoch, chunk), so an epoch is the same whatever the number of workers or timing.
"""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np

from converter.augment import Augment, augment_batch
from converter.data import Images

log = logging.getLogger(__name__)

CHUNK = 4000
_worker_x: Images | None = None


def _init_worker(x: Images) -> None:
    global _worker_x
    _worker_x = x


def _augment_chunk(start: int, stop: int, seed: tuple[int, ...], aug: Augment) -> Images:
    assert _worker_x is not None
    return augment_batch(_worker_x[start:stop], np.random.default_rng(seed), aug)


class EpochFeeder:
    """``epoch(e)`` → the augmented training images of epoch ``e`` (uint8, same order as x)."""

    def __init__(self, x: Images, aug: Augment | None, seed: int, workers: int) -> None:
        self._x, self._aug, self._seed = x, aug, seed
        self._pool: ProcessPoolExecutor | None = None
        self._pending: dict[int, list[Future[Images]]] = {}
        if aug is not None and workers > 0:
            # spawn, not fork: the parent runs TensorFlow's thread pools.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                             initargs=(x,))

    def _chunks(self, epoch: int) -> list[tuple[int, int, tuple[int, ...]]]:
        n = len(self._x)
        return [(s, min(s + CHUNK, n), (self._seed, epoch, i))
                for i, s in enumerate(range(0, n, CHUNK))]

    def prefetch(self, epoch: int) -> None:
        if self._pool is None or self._aug is None or epoch in self._pending:
            return
        self._pending[epoch] = [self._pool.submit(_augment_chunk, a, b, s, self._aug)
                                for a, b, s in self._chunks(epoch)]

    def epoch(self, epoch: int) -> Images:
        if self._aug is None:
            return self._x
        if self._pool is None:
            return np.concatenate([augment_batch(self._x[a:b], np.random.default_rng(s), self._aug)
                                   for a, b, s in self._chunks(epoch)])
        self.prefetch(epoch)
        parts = [f.result() for f in self._pending.pop(epoch)]
        return np.concatenate(parts)

    def close(self) -> None:
        if self._pool is not None:
            for futures in self._pending.values():
                for f in futures:
                    f.cancel()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
