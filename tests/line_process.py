"""A subprocess whose stdout lines are collected by a thread, so tests can wait for a line."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path


class LineProcess:
    """A subprocess whose stdout lines are collected by a thread, for ``wait_line``."""

    def __init__(self, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 30.0) -> str:
        """The next stdout line for which ``predicate`` holds (earlier lines are kept in ``lines``)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.cmd[0]} printed no such line within {timeout}s; stdout: "
                                     f"{self.lines[-5:]}; stderr: {self.stderr()[-2000:]}") from None
            self.lines.append(line)
            if predicate(line):
                return line

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read() if self.proc.stderr else ""

    def terminate(self, timeout: float = 15.0) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout)

    def wait(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)  # the rest of stdout, up to EOF
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
