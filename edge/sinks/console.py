"""Readings on stdout: one short human line, or the contract JSON, per reading."""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any, Literal, TextIO

from edge.types import Reading, utc_timestamp


class ConsoleSink:
    def __init__(self, output: Literal["text", "json"] = "text", stream: TextIO | None = None) -> None:
        self.output = output
        self.stream = stream or sys.stdout

    def publish(self, reading: Reading, snapshot_jpeg: bytes | None = None) -> None:
        if self.output == "json":
            line = json.dumps(reading.to_json(), separators=(",", ":"))
        else:
            value = reading.value if reading.value is not None else "(nothing read)"
            line = f"{utc_timestamp(reading.ts)}  {value}  confidence {reading.confidence:.2f}  #{reading.seq}"
        # The reader may have gone away (e.g. `| head`); the daemon carries on.
        with contextlib.suppress(BrokenPipeError):
            print(line, file=self.stream, flush=True)

    def publish_field(self, name: str, payload: dict[str, Any], rejected: bool) -> None:
        """Text output gets a line per field change; JSON output stays one reading per line."""
        if self.output != "text":
            return
        what = f"rejected {payload['value']}: {payload['reason']}" if rejected else str(payload["value"])
        with contextlib.suppress(BrokenPipeError):
            print(f"{payload['ts']}  field {name}: {what}", file=self.stream, flush=True)

    def publish_stats(self, stats: dict[str, Any]) -> None:
        """Stats go to the log, not stdout, so stdout stays one reading per line."""

    def close(self, timeout: float = 3.0) -> None:
        with contextlib.suppress(BrokenPipeError, ValueError):
            self.stream.flush()
