"""The daemon's side of fields: each frame → the tracker → history and the sinks.

The runner calls ``update`` once per processed frame; a field whose stable value changed
is published on its own (``P/field/<name>``, ``…/state``; ``…/rejected`` with the reason
when it breaks a rule), and an accepted value goes into the history, which is also what
the rules start from after a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.config import Config
from edge.field_store import FieldStore
from edge.fields import FieldTracker, FieldValue
from edge.sinks.base import FanOut
from edge.state import StateDb
from edge.types import FrameResult, utc_timestamp

log = logging.getLogger(__name__)


class FieldService:
    def __init__(self, cfg: Config, db: StateDb, sinks: FanOut, k: int, n: int, model: str) -> None:
        self.store = FieldStore(db, cfg.history)
        last = self.store.last_accepted()
        if last:
            log.info("fields: the rules go on from the last accepted values: %s",
                     ", ".join(f"{k}={v.number:g}" for k, v in sorted(last.items())))
        self.tracker = FieldTracker(cfg.fields, k, n, last)
        self.sinks = sinks
        self.model = model

    def update(self, result: FrameResult, ts: float) -> None:
        for value in self.tracker.update(result, ts):
            if value.status == "missing":
                continue
            payload = self.payload(value, ts, result.latency_ms)
            if value.status == "ok" and value.number is not None and value.value is not None:
                try:
                    self.store.add(value.name, ts, value.value, float(value.number))
                except Exception:  # a full disk must not stop the readings
                    log.exception("field %s: could not keep %s in the history", value.name, value.value)
            else:
                log.info("field %s: %s rejected: %s", value.name, value.value, value.reason)
            self.sinks.publish_field(value.name, payload, rejected=value.status == "rejected")

    def payload(self, value: FieldValue, ts: float, latency_ms: float) -> dict[str, Any]:
        """The reading JSON of one field: its value, number, box and digits, plus ``field``."""
        return {
            "seq": self.store.next_seq(value.name),
            "ts": utc_timestamp(ts),
            "field": value.name,
            **value.to_json(),
            "digits": [d.to_json() for d in value.digits],
            "latency_ms": round(latency_ms, 2),
            "model": self.model,
        }

    def current(self) -> dict[str, dict[str, Any]]:
        """The latest stable value of each field (for the reading JSON and the live page)."""
        return {k: v.to_json() for k, v in self.tracker.current.items()}

    def counts(self) -> dict[str, dict[str, int]]:
        return {name: {"accepted": self.tracker.accepted[name], "rejected": self.tracker.rejected[name]}
                for name in self.tracker.accepted}
