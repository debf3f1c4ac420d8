"""The real daemon under the unit's sandbox, as far as it can be rebuilt without a systemd manager.

- ``MemoryDenyWriteExecute=yes``: the kernel's own version of it, ``prctl(PR_SET_MDWE)``
  (Linux ≥ 6.3; the same rule systemd ≥ 256 applies, inherited across exec), then the whole
  run: model, demo frames, MQTT, live view.
- ``SystemCallFilter=``: every system call outside the unit's filter fails with EPERM (as
  ``SystemCallErrorNumber=EPERM`` makes it), injected by ``strace``; the run must still work,
  only touch the state directory, and open only the socket families the unit allows.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from edge.bench.broker import Broker
from tests.daemon import DIGIT_EDGE, unit_values, write_config

PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
MDWE_EXEC = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    f"if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:\n"
    "    sys.exit('prctl(PR_SET_MDWE): ' + os.strerror(ctypes.get_errno()))\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)
# Denied calls the run may make and shrug off: OpenBLAS's NUMA hint for its buffers (mbind,
# in @resources); SQLite's fchown of its journal files, made only when running as root.
HARMLESS_DENIALS = {"mbind", "fchown"}


def mdwe_supported() -> bool:
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(66, 0, 0, 0, 0) >= 0)  # PR_GET_MDWE: EINVAL before Linux 6.3


def service_config(tmp_path: Path, broker: Broker) -> Path:
    """No state_dir: the daemon takes $STATE_DIRECTORY, as under the unit."""
    return write_config(tmp_path / "config.yaml", "http: {enabled: true, port: 0}", source="demo", state_dir=None,
                        mqtt=f"mqtt: {{host: {broker.host}, port: {broker.port}, topic_prefix: sandbox-test}}")


def service_env(state: Path) -> dict[str, str]:
    """The environment the unit gives the daemon (its Environment= lines and $STATE_DIRECTORY)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STATE_DIRECTORY": str(state)}
    for line in unit_values("Environment"):
        env.update(pair.split("=", 1) for pair in line.split())  # type: ignore[misc]
    return env


def test_daemon_runs_without_writable_executable_memory(tmp_path: Path, mqtt_broker: Broker) -> None:
    assert unit_values("MemoryDenyWriteExecute") == ["yes"]
    if not mdwe_supported():
        pytest.skip("this kernel has no PR_SET_MDWE (Linux < 6.3)")
    state = tmp_path / "state"
    cmd = [sys.executable, "-c", MDWE_EXEC, DIGIT_EDGE, "run", "--config", str(service_config(tmp_path, mqtt_broker)),
           "--max-frames", "30"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=service_env(state))
    assert proc.returncode == 0, proc.stderr
    assert "confidence" in proc.stdout  # a reading came out
    assert "live view on http://" in proc.stderr
    assert "MQTT connected" in proc.stderr


@cache
def syscall_group(name: str) -> frozenset[str]:
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True,
                         check=True).stdout
    calls: set[str] = set()
    for line in out.splitlines():
        item = line.strip()
        if not item or item.startswith("#") or item == name:
            continue
        calls |= syscall_group(item) if item.startswith("@") else {item}
    return frozenset(calls)


def allowed_syscalls() -> set[str]:
    """The unit's SystemCallFilter= lines: an allow-list, then ``~`` deny-lists taken out of it."""
    allowed: set[str] = set()
    for line in unit_values("SystemCallFilter"):
        deny = line.startswith("~")
        names: set[str] = set()
        for item in line.lstrip("~").split():
            names |= syscall_group(item) if item.startswith("@") else {item}
        allowed = allowed - names if deny else allowed | names
    return allowed


def test_daemon_needs_only_what_the_sandbox_allows(tmp_path: Path, mqtt_broker: Broker) -> None:
    strace = shutil.which("strace")
    if shutil.which("systemd-analyze") is None or strace is None:
        pytest.fail("needs systemd-analyze and strace: apt-get install systemd strace (scripts/dev.sh setup)")
    assert unit_values("SystemCallErrorNumber") == ["EPERM"]
    probe = subprocess.run([strace, "-qq", "-o", os.devnull, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"ptrace is not permitted here: {probe.stderr.strip()}")
    denied = "!" + ",".join(f"?{name}" for name in sorted(allowed_syscalls()))
    trace, state = tmp_path / "trace.txt", tmp_path / "state"
    cmd = [strace, "-f", "-qq", "-o", str(trace), "-e", "trace=all", "-e", f"inject={denied}:error=EPERM",
           DIGIT_EDGE, "run", "--config", str(service_config(tmp_path, mqtt_broker)), "--max-frames", "30"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=service_env(state))
    assert proc.returncode == 0, proc.stderr
    assert "confidence" in proc.stdout and "MQTT connected" in proc.stderr

    lines = trace.read_text(encoding="utf-8", errors="replace").splitlines()
    injected = {m.group(1) for line in lines if "(INJECTED)" in line
                and (m := re.match(r"\d+\s+([a-z0-9_]+)\(", line))}
    assert injected <= HARMLESS_DENIALS, f"denied by the unit's SystemCallFilter: {injected - HARMLESS_DENIALS}"
    families = {m.group(1) for line in lines if (m := re.search(r"\bsocket\((AF_[A-Z0-9]+)", line))}
    assert families <= set(unit_values("RestrictAddressFamilies")[0].split()), families
    assert not [line for line in lines if re.search(r"mprotect\(.*PROT_EXEC", line)]
    written = {m.group(1) for line in lines if "ENOENT" not in line
               and (m := re.search(r'open(?:at)?\(.*?"([^"]+)", [^)]*O_(?:WRONLY|RDWR|CREAT)', line))}
    outside = {p for p in written if not p.startswith((str(state), "/dev/null", "/dev/urandom"))}
    assert not outside, f"writes outside $STATE_DIRECTORY (ProtectSystem=strict forbids them): {outside}"
