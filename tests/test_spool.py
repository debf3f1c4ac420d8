"""The MQTT spool on its own: order, durability across reopen, the bound and its drop count."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from edge.sinks.spool import Spool
from edge.state import DB_NAME, SequenceCounter


def test_peek_in_seq_order_and_delete_on_ack(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_items=100)
    for seq in (3, 1, 2):
        spool.put(seq, "p/reading", f"r{seq}".encode())
    assert [m.seq for m in spool.peek()] == [1, 2, 3]
    assert [m.payload for m in spool.peek(after=1, limit=1)] == [b"r2"]
    assert spool.delete([1, 3, 99]) == 2
    assert spool.depth() == 1
    assert [m.seq for m in spool.peek()] == [2]
    spool.close()


def test_contents_survive_reopen_and_share_the_state_db(tmp_path: Path) -> None:
    counter = SequenceCounter(tmp_path)
    spool = Spool(tmp_path, max_items=100)
    for _ in range(5):
        seq = counter.next()
        spool.put(seq, "p/reading", b"{}")
    spool.close()
    counter.close()
    reopened = Spool(tmp_path, max_items=100)
    assert reopened.depth() == 5
    assert [m.seq for m in reopened.peek()] == [1, 2, 3, 4, 5]
    assert reopened.newest() is not None and reopened.newest().seq == 5  # type: ignore[union-attr]
    reopened.close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:  # one file: the seq counter and the spool
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"meta", "spool"} <= tables


def test_bound_drops_the_oldest_counts_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edge.sinks.spool")
    spool = Spool(tmp_path, max_items=10)
    for seq in range(1, 26):
        spool.put(seq, "p/reading", b"x")
    assert spool.depth() == 10
    assert spool.dropped == 15
    assert [m.seq for m in spool.peek()] == list(range(16, 26))
    spool.close()  # logs what the rate limit held back
    lines = [r.getMessage() for r in caplog.records if "spool full" in r.getMessage()]
    assert lines, "dropping readings must be logged"
    assert len(lines) <= 2, lines  # the first drop, and the summary at close: not one line per reading
    assert "15 in total" in lines[-1]


def test_lowering_the_bound_trims_at_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_items=50)
    for seq in range(1, 31):
        spool.put(seq, "p/reading", b"x")
    spool.close()
    smaller = Spool(tmp_path, max_items=10)
    assert smaller.depth() == 10 and smaller.dropped == 20
    assert smaller.peek()[0].seq == 21
    smaller.close()


def test_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(Exception, match=str(blocker / "sub")):
        Spool(blocker / "sub", max_items=10)
