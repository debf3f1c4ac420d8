"""The MQTT sink's persistent outbox: readings wait here, on disk, until the broker has them.

A reading is written (and fsynced: WAL with synchronous=FULL) before ``put`` returns, so
it survives SIGTERM, SIGKILL and power loss; it is deleted only once the broker has
acknowledged it. The table lives in the same SQLite file as the ``seq`` counter, on the
same connection when the daemon passes its ``StateDb``: a ``put`` made inside the
counter's transaction joins it, so a reading's seq and its spooled copy commit together
(``SequenceCounter.next``). The spool
is bounded: past ``max_items`` the oldest readings are dropped, counted, and logged (at
most once a minute, with the number dropped since the last line), never silently.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge.state import StateDb

log = logging.getLogger(__name__)

DROP_LOG_INTERVAL_S = 60.0


class SpoolError(Exception):
    """The spool database could not be written; the message names the file."""


@dataclass(frozen=True, slots=True)
class SpooledMessage:
    seq: int
    topic: str
    payload: bytes
    created: float


class Spool:
    """A bounded FIFO of messages keyed by reading ``seq``; safe to use from several threads."""

    def __init__(self, state_dir: Path, max_items: int, db: StateDb | None = None) -> None:
        if max_items < 1:
            raise ValueError(f"spool max_items must be at least 1, got {max_items}")
        self.path = state_dir
        self.max_items = max_items
        self.dropped = 0
        self._dropped_unlogged = 0
        self._last_drop_log = float("-inf")
        self._own_db = db is None
        self._db = db if db is not None else StateDb(state_dir)
        self._lock = self._db.lock  # one connection, one lock: the counter's transaction includes put
        self._conn = self._db.conn
        self.last_committed = 0  # the newest seq known to be on disk (put committed)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS spool ("
            "seq INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL)"
        )
        self._depth = int(self._conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
        if self._depth:
            log.info("spool in %s holds %d readings from before; they will be sent first",
                     state_dir, self._depth)
        self._trim()  # max_items may have been lowered since the last run

    def depth(self) -> int:
        with self._lock:
            return self._depth

    def put(self, seq: int, topic: str, payload: bytes) -> None:
        """Store one message durably; drop the oldest if the spool is over its bound.

        Inside an open ``StateDb`` transaction (the seq counter's) the write joins it and
        counts once that commits; else it is a transaction of its own.
        """
        with self._lock:
            if self._db.in_transaction:
                added, dropped = self._insert_locked(seq, topic, payload)
                self._db.after(lambda ok: self._account(ok, seq, added, dropped))
                return
            try:
                with self._db.transaction():
                    added, dropped = self._insert_locked(seq, topic, payload)
            except sqlite3.Error as exc:
                raise SpoolError(f"spool in {self.path}: cannot store reading {seq}: {exc}") from None
            self._account(True, seq, added, dropped)

    def _insert_locked(self, seq: int, topic: str, payload: bytes) -> tuple[int, int]:
        try:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO spool(seq, topic, payload, created) VALUES(?, ?, ?, ?)",
                (seq, topic, payload, time.time()),
            )
            added = cur.rowcount
            return added, self._drop_oldest_locked(self._depth + added - self.max_items)
        except sqlite3.Error as exc:
            raise SpoolError(f"spool in {self.path}: cannot store reading {seq}: {exc}") from None

    def _account(self, committed: bool, seq: int, added: int, dropped: int) -> None:
        if not committed:
            return
        if added == 0:
            log.warning("reading seq %d is already in the spool; keeping the first copy", seq)
        self._depth += added - dropped
        self.last_committed = max(self.last_committed, seq)
        self._count_dropped(dropped)

    def peek(self, after: int = 0, limit: int = 100) -> list[SpooledMessage]:
        """The oldest messages with ``seq > after``, in ``seq`` order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, topic, payload, created FROM spool WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, limit),
            ).fetchall()
        return [SpooledMessage(int(r[0]), str(r[1]), bytes(r[2]), float(r[3])) for r in rows]

    def newest(self) -> SpooledMessage | None:
        """The most recent message still waiting (to re-publish as the retained state)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT seq, topic, payload, created FROM spool ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return SpooledMessage(int(row[0]), str(row[1]), bytes(row[2]), float(row[3])) if row else None

    def delete(self, seqs: Iterable[int]) -> int:
        """Forget acknowledged messages (one transaction); returns how many were still here."""
        batch = [(s,) for s in seqs]
        if not batch:
            return 0
        with self._lock:
            try:
                with self._db.transaction() as conn:
                    before = conn.total_changes
                    conn.executemany("DELETE FROM spool WHERE seq = ?", batch)
                    removed = conn.total_changes - before
            except sqlite3.Error as exc:
                raise SpoolError(f"spool in {self.path}: cannot delete sent readings: {exc}") from None
            self._depth -= removed
            return removed

    def close(self) -> None:
        with self._lock:
            self._flush_drop_log(force=True)
            if self._own_db:
                self._db.close()

    def _trim(self) -> None:
        with self._lock:
            if self._depth <= self.max_items:
                return
            with self._db.transaction():
                dropped = self._drop_oldest_locked(self._depth - self.max_items)
            self._depth -= dropped
            self._count_dropped(dropped)

    def _drop_oldest_locked(self, count: int) -> int:
        if count <= 0:
            return 0
        cur = self._conn.execute(
            "DELETE FROM spool WHERE seq IN (SELECT seq FROM spool ORDER BY seq LIMIT ?)", (count,)
        )
        return cur.rowcount

    def _count_dropped(self, count: int) -> None:
        if count <= 0:
            return
        self.dropped += count
        self._dropped_unlogged += count
        self._flush_drop_log(force=False)

    def _flush_drop_log(self, force: bool) -> None:
        now = time.monotonic()
        if self._dropped_unlogged and (force or now - self._last_drop_log >= DROP_LOG_INTERVAL_S):
            log.warning(
                "spool full (%d readings, mqtt.spool_max): dropped the %d oldest unsent readings "
                "(%d in total since start)", self.max_items, self._dropped_unlogged, self.dropped,
            )
            self._dropped_unlogged = 0
            self._last_drop_log = now
