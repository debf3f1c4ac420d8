"""``digit-edge doctor``, run as a user runs it: one ✓/✗ line per check, a fix for every ✗.

The passing case uses the demo source and a real Mosquitto; each failure is produced for
real: a bad config, a missing and a corrupt model, a port nobody listens on, a wrong
password, an untrusted TLS certificate, a state directory under a regular file (mkdir fails
even for root), and a camera index with no device.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.bench.broker import Broker, TlsFiles, free_port
from edge.doctor import run_doctor
from tests import daemon

CHECKS = ["config", "model", "interpreter", "camera", "broker", "state directory", "video devices"]


@dataclass
class Line:
    ok: bool
    text: str
    fix: str


@dataclass
class Report:
    status: int
    checks: dict[str, Line]
    stdout: str


def doctor(config: Path) -> Report:
    env = {k: v for k, v in os.environ.items() if k not in ("STATE_DIRECTORY", "DIGIT_EDGE_MQTT_PASSWORD")}
    proc = subprocess.run([daemon.DIGIT_EDGE, "doctor", "--config", str(config)], capture_output=True,
                          text=True, timeout=180, env=env)
    return parse(proc.returncode, proc.stdout)


def parse(status: int, stdout: str) -> Report:
    checks: dict[str, Line] = {}
    last: Line | None = None
    for raw in stdout.splitlines():
        if raw[:2] in ("✓ ", "✗ "):
            name, _, text = raw[2:].partition(": ")
            last = checks[name] = Line(raw[0] == "✓", text, "")
        elif raw.startswith("    fix: ") and last is not None:
            last.fix = raw[len("    fix: "):]
    return Report(status, checks, stdout)


def write_config(tmp_path: Path, body: str = "", *, source: str = "demo", mqtt: str = "  enabled: false\n") -> Path:
    state = None if "state_dir:" in body else tmp_path / "state"
    return daemon.write_config(tmp_path / "config.yaml", body, source=source, fps=10, state_dir=state,
                               mqtt=f"mqtt:\n{mqtt}")


def broker_section(broker: Broker, extra: str = "") -> str:
    return f"  host: {broker.host}\n  port: {broker.port}\n  homeassistant: {{enabled: false}}\n{extra}"


def assert_only_failures(report: Report, *failing: str) -> None:
    assert list(report.checks) == CHECKS, report.stdout
    assert [n for n, line in report.checks.items() if not line.ok] == list(failing), report.stdout
    for name in failing:
        assert report.checks[name].fix, f"{name} failed without a fix:\n{report.stdout}"
    assert report.status == (1 if failing else 0)
    assert report.stdout.rstrip().endswith(f"{len(failing)} check(s) failed" if failing else "all checks passed")


def test_everything_passes_with_the_demo_source_and_a_real_broker(tmp_path: Path, mqtt_broker: Broker) -> None:
    report = doctor(write_config(tmp_path, mqtt=broker_section(mqtt_broker)))
    assert_only_failures(report)
    c = report.checks
    assert "reads 10/10 built-in test digits right" in c["model"].text or "9/10" in c["model"].text
    assert c["interpreter"].text.startswith(("ai_edge_litert", "tflite_runtime", "tensorflow.lite"))
    assert "delivers 640x480 frames" in c["camera"].text
    assert c["broker"].text == f"{mqtt_broker.host}:{mqtt_broker.port} accepted the connection without login"
    assert c["state directory"].text.startswith(f"{tmp_path / 'state'} is writable")
    assert c["video devices"].text == "not needed for source demo"


def test_login_with_a_password_file(tmp_path: Path, make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(users={"meter": "s3cret"})
    (tmp_path / "pw").write_text("s3cret\n", encoding="utf-8")
    extra = f"  username: meter\n  password_file: {tmp_path / 'pw'}\n"
    report = doctor(write_config(tmp_path, mqtt=broker_section(broker, extra)))
    assert_only_failures(report)
    assert report.checks["broker"].text.endswith("accepted the connection as meter")


def test_wrong_password_is_a_refused_login(tmp_path: Path, make_broker: Callable[..., Broker]) -> None:
    broker = make_broker(users={"meter": "s3cret"})
    (tmp_path / "pw").write_text("guess\n", encoding="utf-8")
    extra = f"  username: meter\n  password_file: {tmp_path / 'pw'}\n"
    report = doctor(write_config(tmp_path, mqtt=broker_section(broker, extra)))
    assert_only_failures(report, "broker")
    assert "refused the login" in report.checks["broker"].text
    assert "guess" not in report.stdout  # never the password itself
    assert "mqtt.username" in report.checks["broker"].fix


def test_unreachable_broker(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    report = doctor(write_config(tmp_path, mqtt=f"  host: 127.0.0.1\n  port: {port}\n"))
    assert_only_failures(report, "broker")
    assert report.checks["broker"].text == (
        f"MQTT broker 127.0.0.1:{port} refused the connection; is the broker running, and is mqtt.port right?"
    )


def test_tls_broker_with_an_unknown_ca(tmp_path: Path, make_broker: Callable[..., Broker], tls_files: TlsFiles) -> None:
    broker = make_broker(tls=tls_files)
    tls_section = f"  host: localhost\n  port: {broker.tls_port}\n"
    trusted = tls_section + f"  tls: {{enabled: true, ca_file: {tls_files.ca_cert}}}\n"
    report = doctor(write_config(tmp_path, mqtt=trusted))
    assert_only_failures(report)
    assert report.checks["broker"].text.endswith("over TLS")

    untrusted = tls_section + "  tls: {enabled: true}\n"  # the system CAs do not know the test CA
    report = doctor(write_config(tmp_path, mqtt=untrusted))
    assert_only_failures(report, "broker")
    assert "certificate" in report.checks["broker"].text


def test_bad_config_stops_before_the_other_checks(tmp_path: Path) -> None:
    config = write_config(tmp_path, "fsp: 10\n")
    report = doctor(config)
    assert report.status == 1
    assert list(report.checks) == ["config"]
    assert not report.checks["config"].ok
    assert report.checks["config"].text == f"{config}: invalid configuration:"
    assert "fsp: unknown key (allowed here:" in report.stdout


def test_missing_model(tmp_path: Path) -> None:
    gone = tmp_path / "gone.tflite"
    report = doctor(write_config(tmp_path, f"model: {gone}\n"))
    assert_only_failures(report, "model")
    assert report.checks["model"].text == f"{gone}: model file not found"


def test_corrupt_model(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(os.urandom(4096))
    report = doctor(write_config(tmp_path, f"model: {bad}\n"))
    assert_only_failures(report, "model")
    assert report.checks["model"].text.startswith(f"{bad}: not a usable TFLite model")
    assert report.checks["interpreter"].ok  # the runtime itself is fine


def test_state_dir_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory\n", encoding="utf-8")
    state = tmp_path / "a-file" / "state"
    report = doctor(write_config(tmp_path, f"state_dir: {state}\n"))
    assert_only_failures(report, "state directory")
    assert report.checks["state directory"].text == f"{state}: cannot write there (Not a directory)"


def test_missing_camera(tmp_path: Path) -> None:
    assert not Path("/dev/video9").exists()
    report = doctor(write_config(tmp_path, source="usb:9"))
    assert_only_failures(report, "camera", "video devices")
    assert "usb:9" in report.checks["camera"].text
    assert "/dev/video9" in report.checks["video devices"].text


def test_run_doctor_in_process_writes_to_the_given_stream(tmp_path: Path) -> None:
    out = io.StringIO()
    status = run_doctor(str(write_config(tmp_path, source=f"file:{tmp_path / 'none.png'}")), out=out)
    report = parse(status, out.getvalue())
    assert_only_failures(report, "camera")
    assert "none.png" in report.checks["camera"].text
    assert report.checks["video devices"].text == f"not needed for source file:{tmp_path / 'none.png'}"


def test_root_is_told_to_run_it_as_the_service_user(tmp_path: Path) -> None:
    report = doctor(write_config(tmp_path, "fsp: 1\n"))
    if os.geteuid() == 0:
        assert report.stdout.startswith("note: running as root")
        assert "sudo -u digit-edge STATE_DIRECTORY=/var/lib/digit-edge digit-edge doctor" in report.stdout
    else:
        assert "note: running as root" not in report.stdout
