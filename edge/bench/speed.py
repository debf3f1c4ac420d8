"""Speed on one core: per-stage milliseconds, frames/s, start-up time and resident memory.

Per-frame figures decode each scene's JPEG (as a camera or file source would) and run it
through a reader; ``FrameResult.stage_ms`` gives the stages. Start-up and memory are
measured on fresh processes, exactly as a user starts them: the wall time from spawning
to the first line of output, and the peak RSS the kernel reports for that child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from edge.bench.accuracy import Reader, decode
from edge.bench.scenes import Scene

STAGES = ("decode", "gray", "detect", "normalize", "classify", "read")


@dataclass
class StageTimes:
    frames: int = 0
    ms: dict[str, float] = field(default_factory=dict)  # mean per frame

    @property
    def total(self) -> float:
        return sum(self.ms.values())

    @property
    def fps(self) -> float:
        return 1000.0 / self.total if self.total > 0 else 0.0

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {k: round(v, 3) for k, v in self.ms.items()}
        out.update(total_ms=round(self.total, 3), fps=round(self.fps, 1), frames=self.frames)
        return out


def time_frames(readers: dict[str, Reader], scenes: Sequence[Scene], repeat: int = 1) -> dict[str, StageTimes]:
    """Mean per-stage ms of each reader over ``scenes``; the best of ``repeat`` passes.

    The readers take turns frame by frame, so a busy machine slows them alike and their
    ratio stays fair. JPEG decoding is timed once per frame and counted for each reader.
    """
    cv2.setNumThreads(1)
    if scenes:
        for reader in readers.values():
            reader.process(decode(scenes[0].jpeg))  # warm-up: first-call allocations
    best: dict[str, StageTimes] = {}
    for _ in range(max(1, repeat)):
        sums = {name: dict.fromkeys(STAGES, 0.0) for name in readers}
        for scene in scenes:
            t0 = time.perf_counter()
            image = decode(scene.jpeg)
            decode_ms = (time.perf_counter() - t0) * 1e3
            for name, reader in readers.items():
                sums[name]["decode"] += decode_ms
                for stage, ms in reader.process(image).stage_ms.items():
                    sums[name][stage] = sums[name].get(stage, 0.0) + ms
        for name in readers:
            run = StageTimes(len(scenes), {k: v / max(1, len(scenes)) for k, v in sums[name].items()})
            if name not in best or run.total < best[name].total:
                best[name] = run
    return best


@dataclass
class ProcessFigures:
    first_output_s: float  # spawn → first line on stdout
    exit_s: float
    max_rss_mb: float
    returncode: int
    first_line: str
    stderr_tail: str
    cpu_s: float = 0.0  # user + system CPU seconds of the command


# A small launcher between the bench and the measured process: a child forked straight
# from the bench would start life with the bench's own (large) resident set counted in
# its peak RSS. The launcher is a bare interpreter, so the peak is the command's own.
_LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
"""


def run_process(argv: Sequence[str], cwd: Path | None = None, timeout: float = 120.0,
                env: dict[str, str] | None = None) -> ProcessFigures:
    """Spawn ``argv`` (through the launcher); time its first output line; its peak RSS."""
    with tempfile.TemporaryDirectory(prefix="digit-edge-rss-") as tmp:
        report = Path(tmp) / "rusage"
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-S", "-c", _LAUNCHER, str(report), *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                                env={**os.environ, **(env or {})}, text=True)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        t_first = time.perf_counter() - t0
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        t_exit = time.perf_counter() - t0
        code, rss_kib, cpu = report.read_text().split() if report.exists() else ("-1", "0", "0")
    return ProcessFigures(t_first, t_exit, int(rss_kib) / 1024.0, int(code), first.strip(),
                          "\n".join(err.strip().splitlines()[-3:]), float(cpu))


def digit_edge_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m edge.cli``."""
    script = Path(sys.executable).with_name("digit-edge")
    return [str(script)] if script.exists() else [sys.executable, "-m", "edge.cli"]


def write_frames(scenes: Sequence[Scene], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, scene in enumerate(scenes):
        path = folder / f"frame_{i:04d}.jpg"
        path.write_bytes(scene.jpeg)
        paths.append(path)
    return paths


def daemon_config(folder: Path, frames_dir: Path | None, model: str | None, *, fps: float = 100,
                  source: str | None = None, mqtt: str = "{enabled: false}", extra: Sequence[str] = ()) -> Path:
    """A config for `digit-edge run` on a folder of frames (or ``source``): own state dir,
    MQTT off unless ``mqtt`` gives its section, then ``extra`` YAML lines."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"source: {source or f'dir:{frames_dir}'}",
        f"fps: {fps:g}",
        f"state_dir: {folder / 'state'}",
        "log_level: WARNING",
        f"mqtt: {mqtt}",
        *extra,
    ]
    if model:
        lines.append(f"model: {model}")
    path = folder / "bench-config.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
