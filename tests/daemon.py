"""The installed commands, and `digit-edge run` as the tests start it: config, process, systemd unit.

The daemon uses the shipped models (``classify.model``'s default): no config here names one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.imaging import REPO
from tests.line_process import LineProcess

UNIT = REPO / "systemd" / "digit-edge.service"


def installed(name: str) -> str:
    """A console script of this package, as ``pip install -e .`` put it: beside the running Python."""
    return str(Path(sys.executable).with_name(name))


DIGIT_EDGE = installed("digit-edge")


def write_config(path: Path, extra: str = "", *, state_dir: Path | None, source: str | None = None,
                 fps: int = 20, mqtt: str = "mqtt: {enabled: false}") -> Path:
    """A daemon config at ``path``: [source], fps, [state_dir], the ``mqtt`` section (off unless
    given), then ``extra`` (more YAML, e.g. ``http: {...}``), one key after another in that order."""
    parts = [f"source: {source}" if source else "", f"fps: {fps}", f"state_dir: {state_dir}" if state_dir else "",
             mqtt, extra]
    path.write_text("".join(part.rstrip("\n") + "\n" for part in parts if part), encoding="utf-8")
    return path


class DaemonProcess(LineProcess):
    """``digit-edge run --config CONFIG --output json ARGS...``: each stdout line is one reading."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__([DIGIT_EDGE, "run", "--config", str(config), "--output", "json", *args], env=env)

    def readings(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines if line.startswith("{")]

    def wait_readings(self, count: int, timeout: float = 60.0) -> None:
        while len(self.readings()) < count:
            self.wait_line(lambda line: line.startswith("{"), timeout)


def unit_settings(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, repeated keys included, in file order."""
    section, out = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def unit_values(key: str, section: str = "Service") -> list[str]:
    """Every value ``key=`` has in ``section`` of the shipped unit (systemd/digit-edge.service)."""
    return [v for s, k, v in unit_settings(UNIT.read_text(encoding="utf-8")) if s == section and k == key]
