"""Progress bars: shown on a terminal (a real pseudo-terminal as stderr), never in piped output
or in the journal; the results on stdout stay whole lines either way."""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import subprocess
import termios
from pathlib import Path

import pytest

from tests.converter_helpers import mnist_npz
from tests.daemon import DIGIT_EDGE, installed
from tests.imaging import REPO, draw_number, paper, save

MLP = REPO / "edge" / "models" / "digits_mlp_int8.tflite"
IMAGES = 6
BAR = re.compile(r"images: +\d+%\|.*\| *\d+/6 \[")  # tqdm: desc, percent, bar, count/total [time<left, rate]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Photos of numbers, with a truth.json in the layout `bench --real` reads."""
    folder = tmp_path_factory.mktemp("photos")
    out, truth = [], {}
    for i in range(IMAGES):
        value = f"{4107 + i}"
        canvas = paper(320, 240, seed=i)
        boxes = draw_number(canvas, value, 40, 80, 60, seed=i)
        out.append(save(folder / f"{i}.jpg", canvas))
        truth[f"{i}.jpg"] = [{"label": int(d), "box": list(b)} for d, b in zip(value, boxes, strict=True)]
    (folder / "truth.json").write_text(json.dumps(truth), encoding="utf-8")
    return out


def in_terminal(cmd: list[str], tmp_path: Path, *, stdout_too: bool = False, journal: bool = False,
                timeout: float = 300) -> tuple[int, str, str]:
    """Run ``cmd`` with stderr (and with ``stdout_too`` stdout) on a new pseudo-terminal of 100
    columns; return (status, what the terminal received, stdout when it went to a file)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    if journal:  # as if systemd had connected stderr to the journal and named it
        st = os.fstat(slave)
        env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    out_file = tmp_path / "stdout.txt"
    with out_file.open("wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave if stdout_too else out, stderr=slave,
                                env=env, cwd=tmp_path)
        os.close(slave)
        received = bytearray()
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every copy of the terminal's other end is closed
                break
            if not chunk:
                break
            received += chunk
        os.close(master)
        status = proc.wait(timeout=timeout)
    return status, received.decode(errors="replace"), out_file.read_text()


def piped(cmd: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"})


def predict_cmd(photos: list[Path]) -> list[str]:
    return [DIGIT_EDGE, "predict", *map(str, photos)]


def test_predict_shows_a_bar_on_a_terminal(photos: list[Path], tmp_path: Path) -> None:
    status, terminal, stdout = in_terminal(predict_cmd(photos), tmp_path)
    assert status == 0, terminal
    assert BAR.search(terminal), terminal
    assert "image/s" in terminal, terminal  # the rate, and the time left before it
    assert [line.split(":")[0] for line in stdout.splitlines()] == list(map(str, photos))


def test_predict_results_stay_whole_lines_above_the_bar(photos: list[Path], tmp_path: Path) -> None:
    status, terminal, _ = in_terminal(predict_cmd(photos), tmp_path, stdout_too=True)
    assert status == 0, terminal
    assert BAR.search(terminal), terminal
    # Each result line, once the bar is cleared before it (a carriage return), is the whole line.
    shown = [part.split("\r")[-1] for part in terminal.split("\r\n")]
    for i, path in enumerate(photos):
        assert any(line.startswith(f"{path}: {4107 + i}") for line in shown), terminal


def test_predict_piped_prints_no_bar(photos: list[Path], tmp_path: Path) -> None:
    proc = piped(predict_cmd(photos), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert len(proc.stdout.splitlines()) == IMAGES and "\r" not in proc.stdout


def test_predict_under_systemd_prints_no_bar(photos: list[Path], tmp_path: Path) -> None:
    status, terminal, stdout = in_terminal(predict_cmd(photos), tmp_path, journal=True)
    assert status == 0, terminal
    assert terminal == "", terminal
    assert len(stdout.splitlines()) == IMAGES


def test_one_image_shows_no_bar(photos: list[Path], tmp_path: Path) -> None:
    status, terminal, stdout = in_terminal(predict_cmd(photos[:1]), tmp_path)
    assert status == 0 and terminal == "", terminal
    assert stdout.startswith(f"{photos[0]}: 4107")


def test_evaluate_shows_a_bar_on_a_terminal_only(tmp_path: Path) -> None:
    cmd = [installed("digit-convert"), "evaluate", str(MLP), "--data", str(mnist_npz()), "--json"]
    status, terminal, stdout = in_terminal(cmd, tmp_path)
    assert status == 0, terminal
    assert re.search(r"evaluating: +\d+%\|.*\| *\d+/10000 \[", terminal), terminal
    assert json.loads(stdout)["samples"] == 10000
    proc = piped(cmd, tmp_path)
    assert proc.returncode == 0 and "evaluating" not in proc.stderr, proc.stderr


def test_bench_shows_a_bar_on_a_terminal_only(photos: list[Path], tmp_path: Path) -> None:
    cmd = [DIGIT_EDGE, "bench", "--real", str(photos[0].parent), "--model", str(MLP), "--json"]
    status, terminal, stdout = in_terminal(cmd, tmp_path)
    assert status == 0, terminal
    name = photos[0].parent.name
    assert re.search(rf"ours {name}: +\d+%\|.*\| *\d+/6 \[", terminal), terminal
    assert json.loads(stdout)["real"]["ours"][name]["images"] == IMAGES
    proc = piped(cmd, tmp_path)
    assert proc.returncode == 0 and name not in proc.stderr, proc.stderr
