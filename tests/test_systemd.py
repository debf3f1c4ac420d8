"""The systemd unit: systemd's own checks pass, the sandbox scores ≤ 2.5, the contract settings hold."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.daemon import DIGIT_EDGE, UNIT, unit_values

MAX_EXPOSURE = 2.5


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze not found: install the Debian package `systemd` (scripts/dev.sh setup does)")
    return path


def value(key: str, section: str = "Service") -> str:
    found = unit_values(key, section)
    assert len(found) == 1, f"{key}= set {len(found)} times in [{section}]"
    return found[0]


@pytest.fixture
def testable_unit(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this venv's digit-edge: verify checks that it exists."""
    exe = Path(DIGIT_EDGE)
    assert exe.exists(), f"{exe} missing: pip install -e . first"
    text = UNIT.read_text(encoding="utf-8")
    shipped = "ExecStart=/opt/digit-edge/venv/bin/digit-edge "
    assert text.count(shipped) == 1
    out = tmp_path / "digit-edge.service"
    out.write_text(text.replace(shipped, f"ExecStart={exe} "), encoding="utf-8")
    return out


def test_systemd_analyze_verify_passes(testable_unit: Path) -> None:
    proc = subprocess.run([systemd_analyze(), "verify", str(testable_unit)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr  # no warnings either (unknown keys, bad values)


def test_security_exposure_is_at_most_2_5(testable_unit: Path) -> None:
    proc = subprocess.run([systemd_analyze(), "security", "--offline=yes", str(testable_unit)],
                          capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for digit-edge\.service: (\d+\.\d+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, proc.stdout


def test_security_threshold_also_fails_a_weak_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit without hardening scores far above 2.5."""
    weak = tmp_path / "weak.service"
    weak.write_text("[Service]\nType=notify\nExecStart=/bin/true\n", encoding="utf-8")
    proc = subprocess.run([systemd_analyze(), "security", "--offline=yes", str(weak)],
                          capture_output=True, text=True, timeout=120)
    match = re.search(r"Overall exposure level for weak\.service: (\d+\.\d+)", proc.stdout)
    assert match and float(match.group(1)) > 5.0


def test_the_daemon_is_supervised_as_the_design_says() -> None:
    assert value("Type") == "notify"
    assert value("NotifyAccess") == "main"
    assert value("WatchdogSec") == "30"
    assert value("Restart") == "on-failure"
    assert int(value("StartLimitBurst", "Unit")) >= 3
    assert int(value("StartLimitIntervalSec", "Unit")) >= 60
    assert int(value("TimeoutStopSec")) <= 10  # SIGTERM: flush and exit within a few seconds
    assert value("ExecStart") == "/opt/digit-edge/venv/bin/digit-edge run --config /etc/digit-edge/config.yaml"
    assert value("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert value("StateDirectory") == "digit-edge"
    assert value("ConfigurationDirectory") == "digit-edge"
    assert value("User") == value("Group") == "digit-edge"
    assert value("SupplementaryGroups") == "video"
    assert value("WantedBy", "Install") == "multi-user.target"


def test_file_descriptors_are_bounded_above_the_live_views_connection_limit() -> None:
    from edge.http.server import MAX_CONNECTIONS

    assert int(value("LimitNOFILE")) >= MAX_CONNECTIONS + 256  # sockets, camera, broker, db, libraries


def test_hardening_keeps_the_cameras_and_the_network_reachable() -> None:
    for key in ("ProtectHome", "NoNewPrivileges", "PrivateTmp", "MemoryDenyWriteExecute"):
        assert value(key) == "yes", key
    assert value("ProtectSystem") == "strict"
    assert unit_values("PrivateDevices") == []  # it would hide /dev/video*
    assert value("DevicePolicy") == "closed"
    allowed = unit_values("DeviceAllow")
    for device in ("char-video4linux rw", "char-media rw", "char-dma_heap rw"):
        assert device in allowed
    families = value("RestrictAddressFamilies").split()
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)
    assert unit_values("IPAddressDeny") == []  # the broker may be anywhere
    assert unit_values("PrivateNetwork") == []
