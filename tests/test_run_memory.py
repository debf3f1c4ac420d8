"""What `digit-edge run` leaves out to stay in its memory budget, and that nothing is lost by it.

The figure itself (peak RSS) is measured by `digit-edge bench` (startup part), not asserted
here: it depends on the machine. These tests pin the choices behind it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.bench.broker import Broker, Subscriber, TlsFiles
from tests.daemon import DaemonProcess, write_config


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/maps")
def test_daemon_publishes_over_tls_without_openssl_hash_module(
    make_broker: Callable[..., Broker], tls_files: TlsFiles, topic_prefix: str, tmp_path: Path
) -> None:
    broker = make_broker(tls=tls_files)
    topic = f"{topic_prefix}/dev/reading"
    sub = Subscriber(broker, [topic])
    mqtt = (f"mqtt:\n  host: {broker.host}\n  port: {broker.tls_port}\n  topic_prefix: {topic_prefix}\n"
            f"  device_id: dev\n  tls: {{enabled: true, ca_file: {tls_files.ca_cert}}}\n"
            "  homeassistant: {enabled: false}\n")
    daemon = DaemonProcess(write_config(tmp_path / "c.yaml", state_dir=tmp_path / "state", mqtt=mqtt),
                           "--source", "demo")
    try:
        daemon.wait_readings(1)
        assert sub.wait_for(lambda m: bool(m), timeout=30), daemon.stderr()
        maps = mapped_files(daemon.proc.pid)
    finally:
        code = daemon.terminate(15)
        sub.close()
    assert code == 0, daemon.stderr()
    assert json.loads(sub.on(topic)[0].payload)["value"], "a reading arrived over TLS"
    assert "_ssl" in maps  # TLS through OpenSSL, as before
    assert "_hashlib" not in maps  # but not OpenSSL's hash module (3.4 MB of peak RSS)
