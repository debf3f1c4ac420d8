"""Persistent daemon state in ``state_dir``: the reading sequence number.

``seq`` must never repeat or go back across restarts, power loss included, so it lives
in SQLite (WAL, synchronous=FULL) and each increment is its own committed transaction.
The MQTT spool keeps its table in the same database file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DB_NAME = "digit-edge.db"


class StateError(Exception):
    """The state directory or database cannot be used; the message says how to fix it."""


def open_db(state_dir: Path) -> sqlite3.Connection:
    """Open (creating if needed) the state database; raise StateError naming the path."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(
            f"state directory {state_dir}: cannot create it ({exc.strerror}); "
            "set state_dir in the config to a writable directory"
        ) from None
    path = state_dir / DB_NAME
    try:
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    except sqlite3.Error as exc:
        raise StateError(
            f"state database {path}: {exc}; check that the directory is writable by this user"
        ) from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` if the body raises.

    The connections are opened in autocommit mode (``isolation_level=None``), so every
    multi-statement change that must be all-or-nothing on disk goes through here.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SequenceCounter:
    """Hands out 1, 2, 3, ... and remembers the last one on disk."""

    def __init__(self, state_dir: Path) -> None:
        self._conn = open_db(state_dir)
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock, transaction(self._conn) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            value = (row[0] if row else 0) + 1
            conn.execute(
                "INSERT INTO meta(key, value) VALUES('seq', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (value,),
            )
        return int(value)

    def last(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
            return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
