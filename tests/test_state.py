"""The seq counter's promises with real processes and files: no reuse after damage, no gap after SIGKILL.

The daemon runs on ``dir:`` folders of demo frames (one new value per image, so one reading per
frame); the state database is truncated, overwritten with random bytes, or the daemon is
SIGKILLed at random moments while it publishes to a real Mosquitto.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from edge.bench.broker import Broker, Subscriber
from edge.sinks.spool import Spool
from edge.state import DB_NAME, HWM_BLOCK, HWM_NAME, SequenceCounter
from tests.daemon import DaemonProcess, write_config
from tests.test_mqtt_daemon import broker_config, demo_frames, seqs


def run_dir(config: Path, folder: Path, *args: str) -> tuple[list[int], str]:
    daemon = DaemonProcess(config, "--source", f"dir:{folder}", *args)
    try:
        code = daemon.wait(120)
    finally:
        daemon.kill()
    err = daemon.stderr()
    assert code == 0, err
    return [int(r["seq"]) for r in daemon.readings()], err  # type: ignore[call-overload]


def corrupt_files(state: Path) -> list[Path]:
    return sorted(p for p in state.iterdir() if p.name.startswith(f"{DB_NAME}.corrupt-"))


def test_a_state_db_truncated_to_0_bytes_does_not_restart_seq(tmp_path: Path) -> None:
    frames = demo_frames(tmp_path / "img", 3)
    state = tmp_path / "state"
    cfg = write_config(tmp_path / "c.yaml", state_dir=state)
    first, _ = run_dir(cfg, frames)
    assert first == [1, 2, 3]
    (state / DB_NAME).write_bytes(b"")  # what ext4 can leave after a power cut
    second, err = run_dir(cfg, frames)
    assert second == [HWM_BLOCK + 1, HWM_BLOCK + 2, HWM_BLOCK + 3], err  # above the mark: a gap, no reuse
    assert "ERROR" in err and "was damaged (0 bytes" in err and "moved aside as" in err
    assert f"seq goes on at {HWM_BLOCK + 1}" in err
    assert "check that the directory is writable" not in err
    [aside] = corrupt_files(state)
    assert aside.stat().st_size == 0
    third, err = run_dir(cfg, frames)
    assert third == [HWM_BLOCK + 4, HWM_BLOCK + 5, HWM_BLOCK + 6], err  # healthy again: no further gap
    assert "damaged" not in err


def test_random_bytes_in_the_middle_of_the_db_move_it_aside(tmp_path: Path) -> None:
    state = tmp_path / "state"
    counter = SequenceCounter(state)
    spool = Spool(state, 100_000, counter.db)
    payload = json.dumps({"pad": "x" * 400}).encode()
    for _ in range(2000):  # a spool of a few hundred pages, as after an outage
        counter.next(lambda seq: spool.put(seq, "p/reading", payload))
    spool.close()
    counter.close()
    db = state / DB_NAME
    size = db.stat().st_size
    assert size > 200_000
    with db.open("r+b") as f:
        f.seek(size // 2 // 4096 * 4096)
        f.write(random.Random(7).randbytes(16 * 4096))
    cfg = write_config(tmp_path / "c.yaml", state_dir=state)
    seq_list, err = run_dir(cfg, demo_frames(tmp_path / "img", 2))
    assert seq_list[0] > 2000 and seq_list == [seq_list[0], seq_list[0] + 1], err
    assert "was damaged" in err and len(corrupt_files(state)) == 1
    assert "Traceback" not in err


def test_a_lost_db_with_the_mark_left_goes_on_above_it(tmp_path: Path) -> None:
    frames = demo_frames(tmp_path / "img", 2)
    state = tmp_path / "state"
    cfg = write_config(tmp_path / "c.yaml", state_dir=state)
    assert run_dir(cfg, frames)[0] == [1, 2]
    (state / DB_NAME).unlink()
    again, err = run_dir(cfg, frames)
    assert again == [HWM_BLOCK + 1, HWM_BLOCK + 2] and "the database was missing" in err
    assert (state / HWM_NAME).read_text().split()[0] == str(2 * HWM_BLOCK)  # next block reserved ahead


def test_the_damage_is_said_on_mqtt_info(mqtt_broker: Broker, topic_prefix: str, tmp_path: Path) -> None:
    cfg = broker_config(tmp_path, mqtt_broker, topic_prefix)
    frames = demo_frames(tmp_path / "img", 1)
    run_dir(cfg, frames)
    (tmp_path / "state" / DB_NAME).write_bytes(b"")
    run_dir(cfg, frames)
    sub = Subscriber(mqtt_broker, [f"{topic_prefix}/dev/info"])  # retained
    try:
        assert sub.wait_for(lambda m: bool(m))
        info = json.loads(sub.messages[-1].payload)
    finally:
        sub.close()
    assert "was damaged (0 bytes" in info["state"] and "none is reused" in info["state"]


def test_sigkill_at_random_moments_leaves_no_gap_in_what_the_broker_gets(
    mqtt_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    """20 kills while readings are numbered and spooled; then every seq 1..last reaches the broker once+."""
    p = f"{topic_prefix}/dev"
    sub = Subscriber(mqtt_broker, [f"{p}/reading"], persistent=True)
    cfg = broker_config(tmp_path, mqtt_broker, topic_prefix)
    cfg.write_text(cfg.read_text().replace("fps: 20", "fps: 60"))
    frames = demo_frames(tmp_path / "img", 40)
    rng = random.Random(14)
    printed: list[int] = []
    try:
        for _ in range(20):
            daemon = DaemonProcess(cfg, "--source", f"dir:{frames}")
            try:
                daemon.wait_readings(1, timeout=60)
                time.sleep(rng.uniform(0.0, 0.4))
                os.kill(daemon.proc.pid, signal.SIGKILL)
                daemon.wait(15)
            finally:
                daemon.kill()
            printed += [int(r["seq"]) for r in daemon.readings()]  # type: ignore[call-overload]
        last_run, _ = run_dir(cfg, frames)  # a clean run at the end flushes the spool
        printed += last_run
        with sqlite3.connect(tmp_path / "state" / DB_NAME) as conn:
            last = int(conn.execute("SELECT value FROM meta WHERE key='seq'").fetchone()[0])
        assert last == max(printed)
        want = set(range(1, last + 1))
        assert sub.wait_for(lambda _: seqs(sub, f"{p}/reading") >= want, timeout=60), \
            sorted(want - seqs(sub, f"{p}/reading"))[:20]
        assert seqs(sub, f"{p}/reading") == want  # nothing above the counter either
        assert len(printed) == len(set(printed))  # no seq printed twice
    finally:
        sub.close()


def mount_tmpfs(where: Path, size: str) -> bool:
    """A small tmpfs at ``where`` (needs root); False if it cannot be mounted here."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0


def fill(folder: Path) -> Path:
    """Write zeros to ``folder/fill`` until the file system says ENOSPC."""
    path = folder / "fill"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with contextlib.suppress(OSError):
            for _ in range(100_000):  # bounded: 100_000 x 4 KB is far more than the tmpfs
                os.write(fd, b"\0" * 4096)
        with contextlib.suppress(OSError):
            for _ in range(4096):  # and the last partial page
                os.write(fd, b"\0")
    finally:
        os.close(fd)
    return path


def test_a_full_state_dir_never_stops_recognition_and_recovers(
    mqtt_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    if not mount_tmpfs(state, "2m"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount(8)): no full disk to test with")
    p = f"{topic_prefix}/dev"
    sub = Subscriber(mqtt_broker, [f"{p}/reading"])
    cfg = broker_config(tmp_path, mqtt_broker, topic_prefix)
    cfg.write_text(cfg.read_text().replace("fps: 20", "fps: 15"))
    daemon = DaemonProcess(cfg, "--source", f"dir:{demo_frames(tmp_path / 'img', 400)}")
    try:
        daemon.wait_readings(5)
        blocker = fill(state)
        full_from = len(daemon.readings())
        daemon.wait_readings(full_from + 40)  # recognition goes on with the disk full
        blocker.unlink()
        freed_at = len(daemon.readings())
        daemon.wait_readings(freed_at + 30)
        assert daemon.terminate(30) == 0
    finally:
        daemon.kill()
        subprocess.run(["umount", "-l", str(state)], check=False)
    err = daemon.stderr()
    printed = [int(r["seq"]) for r in daemon.readings()]  # type: ignore[call-overload]
    assert printed == list(range(1, len(printed) + 1)), err  # every reading numbered, in order, none twice
    assert "cannot be written" in err and "is published live only" in err, err
    assert "is writable again" in err, err
    assert err.count("cannot be written") < 10, err  # rate-limited, not one line per reading
    assert "Traceback" not in err, err
    try:  # what could be published live, and everything spooled, reached the broker
        assert sub.wait_for(lambda _: seqs(sub, f"{p}/reading") >= set(printed), timeout=60), \
            sorted(set(printed) - seqs(sub, f"{p}/reading"))[:20]
    finally:
        sub.close()
