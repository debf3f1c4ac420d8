"""Progress on long work (``predict`` over many files, ``bench``, ``convert``, ``evaluate``).

A tqdm bar (count, rate, time left) on stderr when stderr is a terminal; nothing at all
when it is piped, a file, or the journal (under systemd), so
logs and scripts see only their own lines. While a bar is shown, log records and printed
results are written above it (through tqdm) instead of through the middle of it. tqdm is
imported only when a bar is shown, so piped and service runs do not pay its start-up.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from typing import Protocol, TextIO, TypeVar, cast

from edge.logs import stream_is_journal

T = TypeVar("T")
_open_bars = 0  # bars being shown; echo() goes through tqdm only while there are some


class Counter(Protocol):
    def update(self, n: float | None = 1) -> bool | None: ...


class _Quiet:
    """The counter where no bar is shown: counts nothing, prints nothing."""

    def update(self, n: float | None = 1) -> bool | None:
        return None


def shown(stream: TextIO | None = None) -> bool:
    """True when a bar on ``stream`` (default stderr) would reach a person at a terminal."""
    out = stream if stream is not None else sys.stderr
    try:
        tty = bool(out.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False
    # Under systemd stderr is the journal ($JOURNAL_STREAM names it). The variable alone is not
    # enough: it leaks into terminals started from a systemd user session, so compare the fd.
    return tty and not stream_is_journal(out)


@contextmanager
def counter(total: int | None, desc: str, unit: str = "it") -> Iterator[Counter]:
    """A bar to ``update(n)`` by hand (work done in chunks); disabled where not ``shown()``, and
    for a single item (a bar that flashes for one image tells nobody anything)."""
    show = shown() and (total is None or total > 1)
    if not show:
        yield _Quiet()
        return
    global _open_bars
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
    _open_bars += 1
    try:
        with _logs_above_bars():
            yield bar
    finally:
        _open_bars -= 1
        bar.close()


def track(items: Iterable[T], desc: str, unit: str = "it", total: int | None = None) -> Iterator[T]:
    """Yield ``items`` and count each one the caller has finished with."""
    if total is None and isinstance(items, Sized):
        total = len(items)  # a total gives the bar its time left
    with counter(total, desc, unit) as bar:
        for item in items:
            yield item
            bar.update(1)


def echo(text: str, file: TextIO | None = None) -> None:
    """Print one line (a result on stdout) above any bar, and flush it at once."""
    out = file if file is not None else sys.stdout
    if _open_bars:
        from tqdm import tqdm

        tqdm.write(text, file=out)
    else:
        out.write(text + "\n")
    out.flush()


class _AboveBars:
    """A stream for logging handlers that writes through ``tqdm.write``: the bar is cleared,
    the record written, and the bar drawn again below it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        tqdm.write(text, file=self.stream, end="")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def _logs_above_bars() -> Iterator[None]:
    """Point the root logger's stderr handlers at an ``_AboveBars`` for the bar's lifetime."""
    swapped: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            old = handler.setStream(cast(TextIO, _AboveBars(handler.stream)))
            if old is not None:
                swapped.append((handler, old))
    try:
        yield
    finally:
        for handler, old in swapped:
            handler.setStream(old)
