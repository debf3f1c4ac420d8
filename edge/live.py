"""The daemon's latest state, shared by the frame loop (its one writer) and the HTTP server.

It lives apart from ``edge.runner`` so the arrows run one way: the runner uses the server and
both use this state; the server never imports the runner.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.recognition.classify import Classifier
from edge.sources import FrameSource
from edge.stats import LoopStats
from edge.types import Frame, FrameResult, Reading


@dataclass
class LiveView:
    """The latest state, shared read-only with the HTTP server (one writer: the loop)."""

    reading: Reading | None = None
    recent: deque[Reading] = field(default_factory=lambda: deque(maxlen=20))  # newest last
    frame: Frame | None = None
    result: FrameResult | None = None
    stats: LoopStats = field(default_factory=LoopStats)
    source: FrameSource | None = None
    mqtt: Any = None
    fields: Any = None  # the FieldService while fields are configured
    config_path: Path | None = None  # the file the daemon was started with (None: built-in defaults)
    reload: Callable[[], None] | None = None  # asks the loop to re-read the config (as SIGHUP does)
    model: Classifier | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
