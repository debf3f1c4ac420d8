"""Every line on stderr of `run`, `predict` and `doctor` is one of our log lines.

The TFLite runtime prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." from its
C++ side when the model's tensors are first allocated; the commands run here as real
processes, and the line must not appear bare, but as our DEBUG record (seen with --debug),
in the terminal format and in the journal's (``$JOURNAL_STREAM`` naming stderr).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.daemon import DIGIT_EDGE, write_config
from tests.imaging import draw_number, paper, save

TERMINAL_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: \S")
JOURNAL_LINE = re.compile(r"^<[0-7]>[\w.]+: \S")
ROUTED = "edge.recognition.classify: TFLite runtime: Created TensorFlow Lite XNNPACK delegate for CPU."


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("photos")
    out = []
    for i, value in enumerate(("4107", "25")):
        canvas = paper(320, 240, seed=i)
        draw_number(canvas, value, 40, 80, 60, seed=i)
        out.append(save(folder / f"{i}.jpg", canvas))
    return out


def commands(tmp_path: Path, photos: list[Path]) -> dict[str, list[str]]:
    config = write_config(tmp_path / "config.yaml", state_dir=tmp_path / "state", source=f"dir:{photos[0].parent}")
    return {
        "run": ["run", "--config", str(config), "--max-frames", "2"],
        "predict": ["predict", "--config", str(config), *map(str, photos)],
        "doctor": ["doctor", "--config", str(config)],
    }


def stderr_of(argv: list[str], debug: bool, env: dict[str, str] | None = None,
              stderr_file: Path | None = None) -> tuple[int, list[str]]:
    cmd = [DIGIT_EDGE, *(["--debug"] if debug else []), *argv]
    base = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if stderr_file is None:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env={**base, **(env or {})})
        return proc.returncode, proc.stderr.splitlines()
    with stderr_file.open("w") as err:
        st = os.fstat(err.fileno())  # what systemd puts in $JOURNAL_STREAM: stderr's device and inode
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=err, timeout=120,
                              env={**base, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    return proc.returncode, stderr_file.read_text().splitlines()


@pytest.mark.parametrize("command", ["run", "predict", "doctor"])
def test_stderr_holds_only_our_log_lines(command: str, tmp_path: Path, photos: list[Path]) -> None:
    argv = commands(tmp_path, photos)[command]
    status, lines = stderr_of(argv, debug=False)
    assert status in (0, 1), lines  # doctor: 1 when a check fails (no broker here); never a crash
    strays = [line for line in lines if not TERMINAL_LINE.match(line)]
    assert not strays, lines
    assert not any("XNNPACK" in line for line in lines), lines  # DEBUG, so not shown at INFO

    status, lines = stderr_of(argv, debug=True)
    assert status in (0, 1), lines
    strays = [line for line in lines if not TERMINAL_LINE.match(line)]
    assert not strays, lines
    assert any(line.endswith(ROUTED) and " DEBUG " in line for line in lines), lines


def test_the_journal_gets_the_runtime_line_as_a_debug_record(tmp_path: Path, photos: list[Path]) -> None:
    argv = commands(tmp_path, photos)["run"]
    status, lines = stderr_of(argv, debug=True, stderr_file=tmp_path / "journal.txt")
    assert status == 0, lines
    assert lines and all(JOURNAL_LINE.match(line) for line in lines), lines
    assert f"<7>{ROUTED}" in lines, lines
