"""`digit-edge run` as a service runs it: real processes, real signals, real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.daemon import DIGIT_EDGE, DaemonProcess, write_config
from tests.imaging import draw_number, paper, save

READING_KEYS = {"seq", "ts", "value", "number", "confidence", "numbers", "digits", "latency_ms", "model",
                "clipped"}


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DIGIT_EDGE, "run", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pages")
    for i, text in enumerate(["12", "12", "345", "60"]):
        canvas = paper(640, 480, seed=i)
        draw_number(canvas, text, 180, 180, 70, seed=10 + i)
        save(d / f"{i:02d}.jpg", canvas)
    return d


def test_dir_source_prints_contract_readings_and_seq_survives_restarts(pages: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state")
    first = run("--config", str(cfg), "--source", f"dir:{pages}", "--output", "json")
    assert first.returncode == 0, first.stderr
    readings = [json.loads(line) for line in first.stdout.splitlines()]
    assert [r["value"] for r in readings] == ["12", "345", "60"]  # unchanged 12 is not repeated
    assert [r["seq"] for r in readings] == [1, 2, 3]
    for r in readings:
        assert set(r) == READING_KEYS
        assert r["number"] == int(r["value"]) and r["ts"].endswith("Z") and r["model"]
    again = run("--config", str(cfg), "--source", f"dir:{pages}", "--output", "json", "--max-frames", "1")
    assert [json.loads(line)["seq"] for line in again.stdout.splitlines()] == [4]


@pytest.mark.parametrize(("model", "name"), [("cnn", "digits_cnn_int8"), ("mlp", "digits_mlp_int8"),
                                             ("both", "digits_mlp_int8+digits_cnn_int8")])
def test_classify_model_picks_the_shipped_model_it_names(pages: Path, tmp_path: Path, model: str,
                                                          name: str) -> None:
    cfg = write_config(tmp_path / "c.yaml", f"classify: {{model: {model}}}", state_dir=tmp_path / "state")
    proc = run("--config", str(cfg), "--source", f"dir:{pages}", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    readings = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["value"] for r in readings] == ["12", "345", "60"]
    assert {r["model"] for r in readings} == {name}


def test_text_output_is_one_line_per_reading(pages: Path, tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state")
    proc = run("--config", str(cfg), "--source", f"dir:{pages}")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and "  345  confidence " in lines[1]


def first_line(daemon: DaemonProcess) -> str:
    return daemon.wait_line(lambda _: True, timeout=60)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_exits_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    daemon = DaemonProcess(write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state"), "--source", "demo")
    try:
        json.loads(first_line(daemon))
        daemon.proc.send_signal(sig)
        code = daemon.wait(15)
    finally:
        daemon.kill()
    err = daemon.stderr()
    assert code == 0, err
    assert "stopped after" in err and "Traceback" not in err


def test_sighup_reloads_a_good_config_and_refuses_a_bad_one(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state")
    daemon = DaemonProcess(cfg, "--source", "demo")
    try:
        first_line(daemon)
        cfg.write_text(cfg.read_text() + "fps: [oops\n")
        daemon.proc.send_signal(signal.SIGHUP)
        time.sleep(1.5)
        write_config(cfg, fps=5, state_dir=tmp_path / "state")
        daemon.proc.send_signal(signal.SIGHUP)
        time.sleep(3)
        assert daemon.proc.poll() is None  # still running after both reloads
    finally:
        code = daemon.terminate(15)
    err = daemon.stderr()
    assert code == 0, err
    assert "reload refused, keeping the running configuration" in err and "not valid YAML" in err
    assert "configuration reloaded from" in err


def test_a_reloaded_config_that_cannot_start_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    """Valid YAML and keys, but its model file is gone: the daemon goes on reading with the old one."""
    cfg = write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state")
    daemon = DaemonProcess(cfg, "--source", "demo")
    try:
        first_line(daemon)
        write_config(cfg, f"model: {tmp_path / 'gone.tflite'}\n", state_dir=tmp_path / "state")
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_line(lambda line: line.startswith("{"), timeout=30)  # readings go on
        assert daemon.proc.poll() is None
    finally:
        code = daemon.terminate(15)
    err = daemon.stderr()
    assert code == 0, err
    assert "the reloaded configuration failed to start, going back to the previous one" in err
    assert "gone.tflite" in err


def test_bad_config_stops_before_start_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("classify:\n  min_confidence: 3\n")
    proc = run("--config", str(cfg))
    assert proc.returncode == 2
    assert "classify -> min_confidence" in proc.stderr and "less than or equal to 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unwritable_state_dir_is_named_with_the_fix(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cfg = write_config(tmp_path / "c.yaml", state_dir=blocker / "state")
    proc = run("--config", str(cfg), "--source", "demo", "--max-frames", "1")
    assert proc.returncode == 2, proc.stderr
    assert f"state directory {blocker / 'state'}: cannot create it" in proc.stderr
    assert "set state_dir" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_model_is_named(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", f"model: {tmp_path / 'gone.tflite'}\n", state_dir=tmp_path / "state")
    proc = run("--config", str(cfg), "--source", "demo")
    assert proc.returncode == 2
    assert f"{tmp_path / 'gone.tflite'}: model file not found" in proc.stderr


def test_a_model_path_that_is_a_folder_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "mine_int8.tflite").write_bytes(b"")
    cfg = write_config(tmp_path / "c.yaml", f"model: {folder}\n", state_dir=tmp_path / "state")
    proc = run("--config", str(cfg), "--source", "demo")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{folder}: is a folder, not a model file" in proc.stderr
    assert "mine_int8.tflite" in proc.stderr and "not found" not in proc.stderr


def test_help_explains_commands() -> None:
    out = subprocess.run([DIGIT_EDGE, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "predict", "capture", "doctor", "bench"):
        assert command in out
    run_help = subprocess.run([DIGIT_EDGE, "run", "--help"], capture_output=True, text=True, check=True).stdout
    assert "usb:N" in run_help and "--max-frames" in run_help


@pytest.mark.parametrize(("content", "expected"), [
    ("fps: 5\nsource: \"caf\u00e9\"\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 on line 2)"),
    (b"fps: 5\nsource: demo\nfps: 100\n", "key 'fps' is given twice (lines 1 and 3)"),
])
def test_an_unreadable_config_is_one_line_and_exit_2(tmp_path: Path, content: bytes, expected: str) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(content)
    proc = run("--config", str(cfg), "--source", "demo", "--max-frames", "1")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == f"digit-edge: error: {cfg}: {expected}; " + proc.stderr.split("; ", 1)[1]
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_sighup_with_a_non_utf8_or_bomb_config_keeps_the_running_one(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state")
    good = cfg.read_bytes()
    daemon = DaemonProcess(cfg, "--source", "demo")
    try:
        first_line(daemon)
        bomb = "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
            f"{'fps' if i == 9 else f'x{i}'}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n" for i in range(1, 10))
        for content in (good + "source: \"caf\u00e9\"\n".encode("latin-1"), bomb.encode()):
            cfg.write_bytes(content)
            daemon.proc.send_signal(signal.SIGHUP)
            time.sleep(1.5)
            assert daemon.proc.poll() is None
            count = len(daemon.readings())
            daemon.wait_readings(count + 1, timeout=30)  # the running configuration goes on reading
    finally:
        code = daemon.terminate(15)
    err = daemon.stderr()
    assert code == 0, err
    assert err.count("reload refused, keeping the running configuration") == 2, err
    assert "not UTF-8 text" in err and "values once aliases (*name) are expanded" in err
    assert "Traceback" not in err


def test_a_fifo_as_file_source_is_refused_naming_it(tmp_path: Path) -> None:
    fifo = tmp_path / "cam.png"
    os.mkfifo(fifo)  # never written: reading it would block the daemon for good
    cfg = write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state")
    proc = run("--config", str(cfg), "--source", f"file:{fifo}", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"file:{fifo}: is a FIFO (named pipe), not an image file" in proc.stderr


def test_a_fifo_in_a_dir_source_is_skipped_and_sigterm_stops_promptly(pages: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for image in sorted(pages.iterdir()):
        (folder / f"b{image.name}").write_bytes(image.read_bytes())
    os.mkfifo(folder / "a-fifo.jpg")  # sorted first
    daemon = DaemonProcess(write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state", fps=1),
                           "--source", f"dir:{folder}")
    try:
        first_line(daemon)
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.wait(15)
    finally:
        daemon.kill()
    err = daemon.stderr()
    assert code == 0, err
    assert f"skipping {folder / 'a-fifo.jpg'}: is a FIFO (named pipe), not an image file" in err
