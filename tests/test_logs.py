"""Logging: one line per event, the config's level, journal priorities, repeated errors rate-limited."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.logs import RateLimitFilter, set_level, setup_logging


class Clock:
    """A hand-wound clock, so the rate limiter is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_logger(clock: Clock, interval: float = 60.0) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RateLimitFilter(interval, clock=clock))
    logger = logging.getLogger(f"test.logs.{id(out)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return logger, out


def test_repeated_error_is_logged_once_per_interval_with_a_count() -> None:
    clock = Clock()
    log, out = make_logger(clock, interval=60.0)
    for i in range(50):
        log.error("camera %s stalled (attempt %d)", "usb:0", i)
        clock.now += 1.0  # 50 errors over 50 s: all inside the first interval
    assert out.getvalue().splitlines() == ["ERROR camera usb:0 stalled (attempt 0)"]
    clock.now += 20.0  # 70 s after the first: the next one gets through, with the count
    log.error("camera %s stalled (attempt %d)", "usb:0", 50)
    assert out.getvalue().splitlines()[1] == "ERROR camera usb:0 stalled (attempt 50) (49 similar suppressed)"
    clock.now += 61.0
    log.error("camera %s stalled (attempt %d)", "usb:0", 51)
    assert out.getvalue().splitlines()[2] == "ERROR camera usb:0 stalled (attempt 51)"


def test_different_messages_and_info_lines_are_not_limited() -> None:
    clock = Clock()
    log, out = make_logger(clock)
    for _ in range(3):
        log.error("camera stalled")
        log.warning("broker unreachable")
        log.info("reading %s", "42")
    lines = out.getvalue().splitlines()
    assert lines.count("ERROR camera stalled") == 1
    assert lines.count("WARNING broker unreachable") == 1
    assert lines.count("INFO reading 42") == 3


def test_the_limiter_forgets_the_oldest_kind_when_full() -> None:
    clock = Clock()
    limiter = RateLimitFilter(60.0, clock=clock, max_kinds=3)
    records = [logging.LogRecord("x", logging.ERROR, __file__, 1, f"problem {i}", None, None) for i in range(5)]
    for i, record in enumerate(records):
        clock.now += 1.0
        assert limiter.filter(record), i
    again = logging.LogRecord("x", logging.ERROR, __file__, 1, "problem 4", None, None)
    assert not limiter.filter(again)  # still remembered
    first = logging.LogRecord("x", logging.ERROR, __file__, 1, "problem 0", None, None)
    assert limiter.filter(first)  # forgotten, so it passes


@pytest.mark.usefixtures("root_logging")
def test_setup_logging_uses_the_config_level_and_debug_overrides_it() -> None:
    out = io.StringIO()
    setup_logging("WARNING", stream=out)
    logging.getLogger("edge.test").info("hidden")
    logging.getLogger("edge.test").warning("shown %d", 1)
    assert "hidden" not in out.getvalue()
    line = out.getvalue().strip()
    assert line.endswith("WARNING edge.test: shown 1")
    assert len(out.getvalue().splitlines()) == 1

    out2 = io.StringIO()
    setup_logging("WARNING", debug=True, stream=out2)  # replaces the first handler
    logging.getLogger("edge.test").debug("details")
    assert "details" in out2.getvalue()
    assert "details" not in out.getvalue()


@pytest.mark.usefixtures("root_logging")
def test_bad_level_is_named() -> None:
    with pytest.raises(ValueError, match="log level 'LOUD'"):
        setup_logging("LOUD", stream=io.StringIO())


@pytest.mark.usefixtures("root_logging")
def test_journal_lines_carry_the_priority_and_no_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # systemd sets JOURNAL_STREAM to the device:inode of the stderr it connected to the journal;
    # a real file's device:inode stands in for that stream here.
    with open(tmp_path / "journal", "w+", encoding="utf-8") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        setup_logging("INFO", stream=stream)
        log = logging.getLogger("edge.sources")
        log.info("camera usb:0 open")
        log.warning("camera usb:0 stalled")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            log.exception("frame failed")
        stream.seek(0)
        lines = stream.read().splitlines()
    assert lines[0] == "<6>edge.sources: camera usb:0 open"
    assert lines[1] == "<4>edge.sources: camera usb:0 stalled"
    assert lines[2] == "<3>edge.sources: frame failed"
    assert all(line.startswith("<3>    ") for line in lines[3:])
    assert lines[-1] == "<3>    RuntimeError: boom"


def test_a_process_logging_the_same_error_a_thousand_times_writes_one_line() -> None:
    code = (
        "import logging; from edge.logs import setup_logging\n"
        "setup_logging('INFO')\n"
        "log = logging.getLogger('edge.runner')\n"
        "log.info('started')\n"
        "for i in range(1000):\n"
        "    log.error('broker %s unreachable', 'localhost:1883')\n"
        "log.info('stopped')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    lines = proc.stderr.splitlines()
    assert proc.stdout == ""
    assert len(lines) == 3, lines
    assert lines[1].endswith("ERROR   edge.runner: broker localhost:1883 unreachable")


@pytest.mark.usefixtures("root_logging")
def test_a_reloaded_level_applies_unless_debug_was_asked_for() -> None:
    out = io.StringIO()
    setup_logging("INFO", stream=out)
    set_level("ERROR")  # a SIGHUP reload with log_level: ERROR
    logging.getLogger("edge.test").warning("hidden")
    set_level("DEBUG")
    logging.getLogger("edge.test").debug("now shown")
    assert "hidden" not in out.getvalue() and "now shown" in out.getvalue()

    setup_logging("INFO", debug=True, stream=out)
    set_level("ERROR")  # --debug on the command line wins over the config
    logging.getLogger("edge.test").debug("still shown")
    assert "still shown" in out.getvalue()
