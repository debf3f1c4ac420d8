"""Change gating through the real runner: real video files, real pipeline and model, real HTTP."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from edge.config import load_config
from edge.runner import Runner, RunOptions
from edge.stats import LoopStats
from tests.http_daemon import start_daemon, stop_daemon, wait_for, wait_listening
from tests.imaging import draw_number, paper

Canvas = npt.NDArray[np.float32]


def page(text: str, seed: int = 1) -> Canvas:
    canvas = paper(640, 480, seed=0)
    draw_number(canvas, text, 150, 190, 80, seed=seed)
    return canvas


def write_video(path: Path, frames: list[Canvas], seed: int = 7) -> Path:
    """An MJPG video; every frame gets its own sensor noise, as a camera's do."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10, (640, 480))
    assert writer.isOpened()
    for canvas in frames:
        noisy = canvas + rng.normal(0, 2.5, canvas.shape).astype(np.float32)
        writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    writer.release()
    return path


def run(tmp: Path, video: Path, gate: str, capsys: pytest.CaptureFixture[str],
        fps: int = 20) -> tuple[list[str | None], LoopStats, float]:
    """``digit-edge run`` in this process on ``video``: the values published, the loop's
    counts, and the seconds the run took."""
    cfg = tmp / f"c-{time.monotonic_ns()}.yaml"
    cfg.write_text(f"fps: {fps}\nstate_dir: {tmp / 'state'}\nmqtt: {{enabled: false}}\ngate: {gate}\n")
    runner = Runner(load_config(cfg), RunOptions(config_path=str(cfg), source=f"video:{video}", output="json"))
    capsys.readouterr()
    t0 = time.monotonic()
    assert runner.run() == 0
    elapsed = time.monotonic() - t0
    values = [json.loads(line)["value"] for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return values, runner.live.stats, elapsed


def test_a_still_scene_is_read_then_skipped_then_re_read_after_max_skip_s(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "still.avi", [page("4107")] * 60)
    values, stats, elapsed = run(tmp_path, video, "{enabled: true, max_skip_s: 0.5}", capsys)
    assert values == ["4107"]  # the skipped frames confirmed the one read
    assert stats.frames == 60 and stats.frames_read + stats.frames_skipped == 60
    assert stats.frames_read >= 2, "never re-read after max_skip_s"
    assert stats.frames_read <= 2 + elapsed / 0.5, f"read {stats.frames_read} frames in {elapsed:.1f} s"
    assert stats.frames_skipped >= 30 and stats.frames_moving == 0
    values, stats, _ = run(tmp_path, video, "{enabled: false}", capsys)
    assert values == ["4107"] and stats.frames_read == 60 and stats.frames_skipped == 0


def test_a_change_is_published(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = write_video(tmp_path / "change.avi", [page("4107")] * 20 + [page("4108", seed=2)] * 20)
    values, stats, _ = run(tmp_path, video, "{enabled: true, max_skip_s: 60}", capsys)
    assert values == ["4107", "4108"]
    assert stats.frames_skipped >= 25 and stats.frames_read <= 10


def dimmed(canvas: Canvas, gain: float) -> Canvas:
    return canvas * np.float32(gain)


def test_a_slow_brightness_ramp_does_not_freeze_the_reading(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Dusk: the light falls to 55 % while the last digit slowly turns from 7 into 8 (each frame
    differs little from the one before). A gate comparing neighbours would keep 4107 for ever."""
    old, new = page("4107"), page("4108", seed=1)
    frames = [old] * 15
    for i in range(60):
        gain = 1.0 - 0.45 * (i + 1) / 60
        mix = min(1.0, max(0.0, (i - 15) / 30))
        frames.append(dimmed((1 - mix) * old + mix * new, gain))
    frames += [dimmed(new, 0.55)] * 30
    values, stats, _ = run(tmp_path, write_video(tmp_path / "dusk.avi", frames), "{enabled: true, max_skip_s: 600}",
                           capsys)
    assert values and values[0] == "4107" and values[-1] == "4108", values
    assert stats.frames_skipped >= 30, "the gate read every frame of the ramp"


def hand(canvas: Canvas, x: int, y: int) -> Canvas:
    """A skin-coloured, shaded blob (a hand) with its right edge at ``x``."""
    out = canvas.copy()
    yy, xx = np.mgrid[0:480, 0:640]
    inside = ((xx - (x - 160)) / 190.0) ** 2 + ((yy - y) / 150.0) ** 2 <= 1.0
    shade = 0.75 + 0.25 * np.clip(1 - (xx - (x - 160)) / 380.0, 0, 1)
    skin = np.stack([120 * shade, 150 * shade, 200 * shade], axis=2).astype(np.float32)
    out[inside] = skin[inside]
    return out


def passing_hand_video(tmp: Path) -> Path:
    """4107, then a hand over its left half for a second (trembling by a few px), then 4107."""
    clean = page("4107")
    frames = [clean] * 20
    frames += [hand(clean, x, 230) for x in (60, 150, 240)]  # coming in
    frames += [hand(clean, 290 + (3 if i % 2 else -3) + i, 230 + (i % 3) * 2) for i in range(10)]
    frames += [hand(clean, x, 230) for x in (240, 150, 60)]  # leaving
    frames += [clean] * 25
    return write_video(tmp / "hand.avi", frames)


def test_a_passing_hand_publishes_nothing_partial(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = passing_hand_video(tmp_path)
    values, stats, _ = run(tmp_path, video, "{enabled: true, max_skip_s: 60}", capsys, fps=10)
    assert values == ["4107"], f"published {values}"
    assert stats.frames_moving >= 10  # the hand's frames: not read, confirming nothing
    assert stats.frames_skipped > stats.frames_moving  # and the still page around it was skipped


def metric(body: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", body, re.M)
    return float(found.group(1)) if found else -1.0


def test_the_counts_appear_in_metrics_and_status(tmp_path: Path) -> None:
    daemon = wait_listening(start_daemon(tmp_path, "{enabled: true, port: 0}"))
    try:
        def counts() -> dict[str, float]:
            body = daemon.request("/metrics")[2].decode()
            return {k: metric(body, f"digit_edge_{k}_total") for k in ("frames", "frames_read", "frames_skipped")}

        seen: Callable[[], bool] = lambda: (c := counts())["frames_skipped"] > 0 and c["frames_read"] > 0  # noqa: E731
        wait_for(seen, "frames read and skipped in /metrics", daemon)
        c = counts()
        assert c["frames_read"] + c["frames_skipped"] <= c["frames"] + 1  # a frame may land between the two
        status = json.loads(daemon.request("/api/status")[2])
        assert status["frames_read"] >= 1 and status["frames_skipped"] >= 1
    finally:
        stop_daemon(daemon)
