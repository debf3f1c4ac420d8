"""``digit-edge capture OUT.jpg``: save one frame from a source, exactly as the pipeline sees it.

A live camera is given ``warmup_s`` to settle its exposure first (the first frames of many
webcams are dark); then its newest frame is saved. The file is written beside OUT and renamed
into place, so OUT is never left half-written.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from edge.config import Config
from edge.sources.base import SourceError, SourceExhausted
from edge.types import Frame

log = logging.getLogger(__name__)

WRITABLE = ".jpg, .png, .bmp, .tiff or .webp"


def check_output(out_path: Path) -> None:
    """SourceError unless OpenCV can write an image to ``out_path``."""
    if not out_path.suffix:
        raise SourceError(f"{out_path}: no file extension; name the image ending in {WRITABLE}")
    if not cv2.haveImageWriter(str(out_path)):
        raise SourceError(f"{out_path}: OpenCV cannot write '{out_path.suffix}' images; use {WRITABLE}")
    folder = out_path.parent
    if not folder.is_dir():
        raise SourceError(f"{out_path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise SourceError(f"{out_path}: no permission to write in {folder}")


def capture_frame(
    spec: str, config: Config, out_path: str | Path, timeout: float | None = None, warmup_s: float = 1.0
) -> Path:
    """Open ``spec``, save one frame to ``out_path`` and return that path; SourceError on any problem.

    ``timeout`` (default: twice the stall timeout plus the warm-up) bounds the wait for a frame.
    """
    from edge.sources import open_source  # the factory imports this module

    out = Path(out_path)
    check_output(out)
    wait_s = timeout if timeout is not None else 2 * config.camera.stall_timeout_s + warmup_s
    source = open_source(spec, config)
    try:
        try:
            frame = _first_frame(source.read, source.live, wait_s, warmup_s)
        except SourceExhausted:
            raise SourceError(f"{source.describe()}: ended without a readable frame") from None
        if frame is None:
            raise SourceError(f"{source.describe()}: no frame within {wait_s:.0f} s (state: {source.state})")
    finally:
        source.close()
    partial = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        ok = cv2.imwrite(str(partial), frame.image)
        if not ok:
            raise SourceError(f"{out}: OpenCV could not write the image")
        os.replace(partial, out)
    except OSError as exc:
        raise SourceError(f"{out}: cannot write: {exc.strerror}") from None
    finally:
        partial.unlink(missing_ok=True)
    log.debug("saved a %dx%d frame from %s to %s", frame.image.shape[1], frame.image.shape[0], source.describe(), out)
    return out


def _first_frame(read: Callable[[float], Frame | None], live: bool, wait_s: float, warmup_s: float) -> Frame | None:
    start = time.monotonic()
    deadline = start + wait_s
    frame: Frame | None = None
    while (remaining := deadline - time.monotonic()) > 0:
        frame = read(min(remaining, 0.5)) or frame
        settled = not live or time.monotonic() - start >= warmup_s
        if frame is not None and settled:
            return frame
    return frame

