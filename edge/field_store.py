"""Accepted field values in the state database: the rules' memory across restarts, and history.

Every accepted value is a row of ``field_history``; the newest row of a field is the last
accepted value the rules compare with after a restart. Each field also has its own message
counter (``field_seq``), so its messages on ``P/field/<name>`` can be ordered and
de-duplicated without taking numbers from the readings' ``seq``. The history is bounded by
age and by row count (``history:`` in the config), trimmed as values are added.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.config import HistoryConfig
from edge.fields import Accepted
from edge.state import StateDb, StateError

TRIM_EVERY = 100  # rows added between two trims
_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_since(text: str, now: float | None = None) -> float:
    """``since`` as epoch seconds: an ISO 8601 date or time (UTC unless it says), epoch
    seconds, or an age such as ``90m``, ``24h``, ``7d``. ValueError says what is accepted."""
    text = text.strip()
    ago = _AGO.match(text)
    if ago:
        return (time.time() if now is None else now) - float(ago.group(1)) * _UNIT_S[ago.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"since {text!r}: give an ISO 8601 date or time (2026-11-25, 2026-11-25T09:00Z), "
                         "epoch seconds, or an age (90m, 24h, 7d)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def to_csv(rows: list[HistoryRow]) -> str:
    """``ts,field,value,number`` with a header; ``ts`` in ISO 8601 UTC, as in the readings."""
    from edge.types import utc_timestamp

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["ts", "field", "value", "number"])
    for r in rows:
        writer.writerow([utc_timestamp(r.ts), r.field, r.value, f"{r.number:g}"])
    return out.getvalue()


@dataclass(frozen=True, slots=True)
class HistoryRow:
    field: str
    ts: float
    value: str
    number: float


class FieldStore:
    """The two field tables on the shared state database connection."""

    def __init__(self, db: StateDb, history: HistoryConfig | None = None) -> None:
        self.db = db
        self.history = history or HistoryConfig()
        self._added = 0
        try:
            with db.lock:
                db.conn.execute("CREATE TABLE IF NOT EXISTS field_history (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                                "field TEXT NOT NULL, ts REAL NOT NULL, value TEXT NOT NULL, number REAL NOT NULL)")
                db.conn.execute("CREATE INDEX IF NOT EXISTS field_history_by_field ON field_history (field, ts)")
                db.conn.execute("CREATE TABLE IF NOT EXISTS field_seq (field TEXT PRIMARY KEY, seq INTEGER NOT NULL)")
        except sqlite3.Error as exc:
            raise StateError(f"state database {db.path}: cannot create the field tables: {exc}") from None

    def last_accepted(self) -> dict[str, Accepted]:
        """The newest accepted value of each field (where the rules go on after a restart)."""
        with self.db.lock:
            rows = self.db.conn.execute(
                "SELECT field, number, ts FROM field_history WHERE id IN "
                "(SELECT MAX(id) FROM field_history GROUP BY field)").fetchall()
        return {str(f): Accepted(float(n), float(ts)) for f, n, ts in rows}

    def next_seq(self, field: str) -> int:
        """The next message number of ``field`` (1, 2, ...; kept across restarts)."""
        with self.db.lock:
            self.db.conn.execute("INSERT INTO field_seq (field, seq) VALUES (?, 1) "
                                 "ON CONFLICT(field) DO UPDATE SET seq = seq + 1", (field,))
            row = self.db.conn.execute("SELECT seq FROM field_seq WHERE field = ?", (field,)).fetchone()
        return int(row[0])

    def add(self, field: str, ts: float, value: str, number: float) -> None:
        """Keep an accepted value; now and then delete what is past the configured bounds."""
        with self.db.lock:
            self.db.conn.execute("INSERT INTO field_history (field, ts, value, number) VALUES (?, ?, ?, ?)",
                                 (field, ts, value, number))
        self._added += 1
        if self._added % TRIM_EVERY == 1:
            self.trim(ts)

    def trim(self, now: float) -> None:
        cutoff = now - self.history.days * 86_400
        with self.db.lock:
            self.db.conn.execute("DELETE FROM field_history WHERE ts < ?", (cutoff,))
            self.db.conn.execute("DELETE FROM field_history WHERE id <= (SELECT MAX(id) FROM field_history) - ?",
                                 (self.history.max_rows,))

    def rows(self, field: str, since: float | None = None, limit: int = 100_000) -> list[HistoryRow]:
        """Accepted values of ``field`` from ``since`` (epoch seconds) on, oldest first."""
        with self.db.lock:
            found = self.db.conn.execute(
                "SELECT field, ts, value, number FROM field_history WHERE field = ? AND ts >= ? "
                "ORDER BY id LIMIT ?", (field, since if since is not None else float("-inf"), limit)).fetchall()
        return [HistoryRow(str(f), float(t), str(v), float(n)) for f, t, v, n in found]
