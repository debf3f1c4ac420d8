"""Persistent daemon state in ``state_dir``: the reading sequence number, and the database it shares.

``seq`` must never repeat or go back across restarts, SIGKILL and power loss included, and
a reading must not leave a gap by being numbered and then lost. So:

* The counter lives in SQLite (``digit-edge.db``; WAL, synchronous=FULL), and the daemon
  takes the next ``seq`` and spools the reading for MQTT **in one transaction**
  (``SequenceCounter.next(store)``): a kill either keeps both or neither.
* A high-water mark outside the database (``seq.hwm``, fsynced, reserved in blocks of
  ``HWM_BLOCK`` before any of them is used) is at least every ``seq`` ever handed out. If
  the database is damaged (0 bytes after a power cut, not a database, failing
  ``PRAGMA quick_check``), it is moved aside as ``digit-edge.db.corrupt-<UTC time>``, a new
  one is made, the log says so at ERROR, and ``seq`` goes on above the mark: a gap, never
  a reuse. The same happens when the database is missing while the mark is not.
* When the database cannot be written (a full disk), a reading still gets its ``seq`` (from
  memory, covered by the mark) and is published live; the mark is flagged *dirty* so a
  restart before the database catches up goes on above the mark as well.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

DB_NAME = "digit-edge.db"
HWM_NAME = "seq.hwm"
HWM_BLOCK = 1000  # seqs reserved per fsync of the mark
_HWM_WIDTH = 32  # bytes; rewritten in place, so a full disk does not stop it

log = logging.getLogger(__name__)


class StateError(Exception):
    """The state directory or database cannot be used; the message says how to fix it."""


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` if the body or the commit raises.

    The connections are opened in autocommit mode (``isolation_level=None``), so every
    multi-statement change that must be all-or-nothing on disk goes through here. A
    ``COMMIT`` that fails (a full disk) may leave the transaction open: it is rolled back,
    so the connection is usable again once there is space.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise


def _utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class StateDb:
    """The one connection to ``digit-edge.db`` that the counter and the MQTT spool share.

    Sharing it is what lets a reading's ``seq`` and its spooled copy commit together. Opening
    checks the file; a damaged one is moved aside (see the module notes) and ``damage`` says
    what was found, for the log and ``P/info``.
    """

    def __init__(self, state_dir: Path) -> None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"state directory {state_dir}: cannot create it ({exc.strerror}); "
                "set state_dir in the config to a writable directory"
            ) from None
        self.dir = state_dir
        self.path = state_dir / DB_NAME
        self.lock = threading.RLock()
        self.damage: str | None = None  # what was wrong with the file found at start
        self.existed = self.path.exists()
        self._after: list[Callable[[bool], None]] = []
        self._txn_thread: int | None = None  # the thread whose transaction is open
        reason = self._check()
        if reason is not None:
            self.damage = f"{self.path} was damaged ({reason}); moved aside as {self._move_aside()}"
            log.error("state database %s", self.damage)
        self.conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "unable to open" in text or "readonly" in text:
                hint = "check that the directory is writable by this user"
            else:
                hint = "check the disk (is it full, or failing?)"
            raise StateError(f"state database {self.path}: {exc}; {hint}") from None
        return conn

    def _check(self) -> str | None:
        """Why the existing file cannot be trusted, or None (also for no file at all)."""
        if not self.existed:
            return None
        try:
            size = self.path.stat().st_size
        except OSError:
            return None  # _connect names the problem
        if size == 0:
            return "0 bytes: truncated, e.g. by a power cut"
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=rw", uri=True, timeout=10, isolation_level=None)
        except sqlite3.Error:
            return None
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            if rows != [("ok",)]:
                return f"quick_check: {'; '.join(str(r[0]) for r in rows[:3])}"
            return None
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "unable to open" in str(exc) or "readonly" in str(exc):
                return None  # not damage: _connect (or the next step) reports it
            return str(exc)
        except sqlite3.DatabaseError as exc:  # "file is not a database", "disk image is malformed"
            return str(exc)
        finally:
            conn.close()

    def _move_aside(self) -> Path:
        target = self.path.with_name(f"{DB_NAME}.corrupt-{_utc_stamp()}")
        for suffix in ("", "-wal", "-shm"):
            src = self.path.with_name(DB_NAME + suffix)
            if src.exists():
                try:
                    os.replace(src, target.with_name(target.name + suffix))
                except OSError as exc:
                    raise StateError(f"state database {self.path} is damaged and cannot be moved aside "
                                     f"({exc.strerror}); move or delete it by hand") from None
        return target

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction on the shared connection; ``after`` callbacks learn whether it committed."""
        with self.lock:
            self._txn_thread, self._after = threading.get_ident(), []
            committed = False
            try:
                with transaction(self.conn) as conn:
                    yield conn
                committed = True
            finally:
                self._txn_thread = None
                callbacks, self._after = self._after, []
                for callback in callbacks:
                    callback(committed)

    @property
    def in_transaction(self) -> bool:
        """Whether the calling thread may join an open transaction (it holds the lock)."""
        return self._txn_thread == threading.get_ident()

    def after(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(committed)`` when the open transaction ends."""
        self._after.append(callback)

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class HighWaterMark:
    """``seq.hwm``: at least every seq handed out, plus a *dirty* flag; one fixed-size line.

    Rewritten in place with ``pwrite`` + ``fsync`` (a full file system does not refuse
    that: no new blocks) and read back at start. A missing or unreadable mark counts as 0.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.value, self.dirty = 0, False
        self._fd: int | None = None
        try:
            with path.open("rb") as f:
                text = f.read(_HWM_WIDTH).decode("ascii").split()
            if text:  # empty: made, then killed before the first write
                self.value, self.dirty = int(text[0]), text[1:2] == ["dirty"]
        except FileNotFoundError:
            pass
        except (OSError, ValueError, IndexError, UnicodeDecodeError):
            log.warning("seq high-water mark %s is unreadable; going by the database alone", path)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            log.error("seq high-water mark %s cannot be opened (%s); going by the database alone",
                      path, exc.strerror)

    def write(self, value: int, dirty: bool) -> bool:
        line = f"{value} {'dirty' if dirty else 'clean'}".ljust(_HWM_WIDTH - 1) + "\n"
        if self._fd is None:
            return False
        try:
            os.pwrite(self._fd, line.encode("ascii"), 0)
            os.fsync(self._fd)
        except OSError as exc:
            log.error("seq high-water mark %s cannot be written (%s)", self.path, exc.strerror)
            return False
        self.value, self.dirty = value, dirty
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SequenceCounter:
    """Hands out 1, 2, 3, ...: never a seq twice, and no gap unless the state was damaged or lost."""

    def __init__(self, state_dir: Path) -> None:
        self.db = StateDb(state_dir)
        self.hwm = HighWaterMark(state_dir / HWM_NAME)
        self.unsaved = 0  # readings whose seq (and spooled copy) could not be written
        self.note: str | None = self.db.damage  # for the log and P/info: what happened to the state
        stored = self._stored()
        last = stored
        if self.db.damage is not None or (not self.db.existed and self.hwm.value > 0) or self.hwm.dirty:
            why = ("the database was damaged" if self.db.damage is not None
                   else "the database was missing" if not self.db.existed
                   else "the database was behind (it could not be written last time)")
            last = max(stored, self.hwm.value)
            if last > stored:
                message = (f"{why}: seq goes on at {last + 1}, above the high-water mark in {self.hwm.path} "
                           f"(the database said {stored}); seqs in between were never used or may have been "
                           "published: none is reused")
                log.error("state: %s", message)
                self.note = f"{self.note}; {message}" if self.note else message
        self._last = last
        self._reserved = max(self.hwm.value, last)
        self._dirty = self.hwm.dirty
        if last != stored or self.db.damage is not None:
            self._save_meta(last)

    def _stored(self) -> int:
        with self.db.lock:
            row = self.db.conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()
        return int(row[0]) if row else 0

    def _save_meta(self, value: int) -> None:
        try:
            with self.db.transaction() as conn:
                _set_seq(conn, value)
        except sqlite3.Error as exc:
            raise StateError(f"state database {self.db.path}: cannot write it ({exc}); "
                             "check the disk (is it full?)") from None

    def next(self, store: Callable[[int], None] | None = None) -> int:
        """The next seq, committed in one transaction with whatever ``store(seq)`` writes.

        If that transaction fails (a full disk) the seq is used anyway, not reused later:
        it is below the high-water mark, which is flagged dirty. ``last_saved`` says which.
        """
        with self.db.lock:
            seq = self._last + 1
            if seq > self._reserved:
                reserve = seq + HWM_BLOCK - 1
                self.hwm.write(reserve, self._dirty)  # ahead of use; a failure is logged
                self._reserved = reserve
            self._last = seq
            try:
                with self.db.transaction() as conn:
                    _set_seq(conn, seq)
                    if store is not None:
                        store(seq)
            except Exception as exc:
                self.last_saved = False
                self.unsaved += 1
                if not self._dirty:
                    self._dirty = True
                    self.hwm.write(self._reserved, True)
                log.error("state database %s cannot be written (%s): reading %d is published live only, "
                          "not kept for a later resend; %d so far", self.db.path, exc, seq, self.unsaved)
                return seq
            self.last_saved = True
            if self._dirty:
                self._dirty = not self.hwm.write(self._reserved, False)
                log.warning("state database %s is writable again (%d readings could not be stored)",
                            self.db.path, self.unsaved)
            return seq

    last_saved = True  # whether the most recent ``next`` committed

    def last(self) -> int:
        with self.db.lock:
            return self._last

    def close(self) -> None:
        with self.db.lock:
            self.hwm.close()
            self.db.close()


def _set_seq(conn: sqlite3.Connection, value: int) -> None:
    conn.execute(
        "INSERT INTO meta(key, value) VALUES('seq', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
        (value,),
    )
