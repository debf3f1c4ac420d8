"""scripts/install-pi.sh and uninstall-pi.sh: what they would run, and the files they lay down.

The parts that change the running system (apt, useradd, the venv, systemctl) are checked via
``--dry-run``; the files are installed for real into a ``DESTDIR``.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from edge.config import load_config
from tests.daemon import UNIT
from tests.imaging import REPO

INSTALL = REPO / "scripts" / "install-pi.sh"
UNINSTALL = REPO / "scripts" / "uninstall-pi.sh"


def run(script: Path, *args: str, destdir: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    if destdir is not None:
        env["DESTDIR"] = str(destdir)
    proc = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def commands(output: str) -> list[str]:
    return [line[2:] for line in output.splitlines() if line.startswith("+ ")]


def index_of(cmds: list[str], *parts: str) -> int:
    for i, cmd in enumerate(cmds):
        if all(p in cmd for p in parts):
            return i
    raise AssertionError(f"no command with {parts} in:\n" + "\n".join(cmds))


def test_dry_run_lists_every_step_in_order_and_changes_nothing() -> None:
    before = Path("/opt/digit-edge").exists(), Path("/etc/systemd/system/digit-edge.service").exists()
    proc = run(INSTALL, "--dry-run", "--source", "picamera")
    cmds = commands(proc.stdout)
    steps = [
        index_of(cmds, "apt-get install", "python3-venv"),
        index_of(cmds, "--groups video", "digit-edge"),
        index_of(cmds, "-m venv --system-site-packages /opt/digit-edge/venv"),
        index_of(cmds, "/opt/digit-edge/venv/bin/python -m pip install", str(REPO)),
        index_of(cmds, "ln -sfn /opt/digit-edge/venv/bin/digit-edge /usr/local/bin/digit-edge"),
        index_of(cmds, "install -m 0640 -o root -g digit-edge", "/etc/digit-edge/config.yaml"),
        index_of(cmds, "(edit) /etc/digit-edge/config.yaml: source: picamera"),
        index_of(cmds, "install -d -m 0700 -o digit-edge -g digit-edge /var/lib/digit-edge"),
        index_of(cmds, "install -D -m 0644", "/etc/systemd/system/digit-edge.service"),
        index_of(cmds, "systemctl daemon-reload"),
        index_of(cmds, "systemctl enable digit-edge.service"),
    ]
    assert steps == sorted(steps)
    if Path("/run/systemd/system").is_dir():
        assert "systemctl restart digit-edge.service" in cmds
    assert "(dry run: nothing was changed)" in proc.stdout
    after = Path("/opt/digit-edge").exists(), Path("/etc/systemd/system/digit-edge.service").exists()
    assert before == after


def test_install_into_destdir_lays_down_unit_config_and_state(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    proc = run(INSTALL, "--source", "usb:1", destdir=dest)
    assert "(skipped, DESTDIR set) systemctl enable digit-edge.service" in proc.stdout
    unit = dest / "etc/systemd/system/digit-edge.service"
    assert unit.read_bytes() == UNIT.read_bytes()
    config = dest / "etc/digit-edge/config.yaml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert load_config(config).source == "usb:1"  # still a valid config, with the camera set
    assert stat.S_IMODE((dest / "var/lib/digit-edge").stat().st_mode) == 0o700
    assert os.readlink(dest / "usr/local/bin/digit-edge") == "/opt/digit-edge/venv/bin/digit-edge"
    assert (dest / "opt/digit-edge/docs/pi-install.md").is_file()


def test_reinstall_never_overwrites_the_config(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    run(INSTALL, destdir=dest)
    config = dest / "etc/digit-edge/config.yaml"
    assert load_config(config).source == "demo"
    config.write_text("source: usb:0\nmqtt: {host: broker.lan}\n", encoding="utf-8")
    proc = run(INSTALL, "--source", "picamera", destdir=dest)
    assert "keeping the existing /etc/digit-edge/config.yaml" in proc.stdout
    assert config.read_text(encoding="utf-8") == "source: usb:0\nmqtt: {host: broker.lan}\n"


def test_uninstall_keeps_config_and_state_unless_purged(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    run(INSTALL, destdir=dest)
    (dest / "opt/digit-edge/venv/bin").mkdir(parents=True)  # what the skipped venv step would make
    (dest / "var/lib/digit-edge/digit-edge.db").write_bytes(b"state")

    proc = run(UNINSTALL, destdir=dest)
    assert "(skipped, DESTDIR set) systemctl disable --now digit-edge.service" in proc.stdout
    assert not (dest / "etc/systemd/system/digit-edge.service").exists()
    assert not (dest / "opt/digit-edge").exists()
    assert not os.path.lexists(dest / "usr/local/bin/digit-edge")
    assert (dest / "etc/digit-edge/config.yaml").is_file()
    assert (dest / "var/lib/digit-edge/digit-edge.db").read_bytes() == b"state"

    run(UNINSTALL, "--purge", destdir=dest)
    assert not (dest / "etc/digit-edge").exists()
    assert not (dest / "var/lib/digit-edge").exists()


def test_uninstall_dry_run_changes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    run(INSTALL, destdir=dest)
    proc = run(UNINSTALL, "--purge", "--dry-run", destdir=dest)
    assert f"rm -rf {dest}/etc/digit-edge {dest}/var/lib/digit-edge" in commands(proc.stdout)
    assert (dest / "etc/systemd/system/digit-edge.service").is_file()
    assert (dest / "etc/digit-edge/config.yaml").is_file()


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL], ids=["install", "uninstall"])
def test_unknown_option_is_named(script: Path) -> None:
    proc = run(script, "--frobnicate", check=False)
    assert proc.returncode == 2
    assert "unknown option --frobnicate" in proc.stderr


def test_a_regular_user_is_told_to_use_sudo() -> None:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        proc = run(INSTALL, check=False)
    else:
        proc = subprocess.run(
            [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(INSTALL)],
            capture_output=True, text=True, timeout=60, env={"PATH": os.environ["PATH"]},
        )
    assert proc.returncode == 1
    assert "run me as root: sudo" in proc.stderr
