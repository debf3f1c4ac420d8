"""Fields through `digit-edge run` → a real Mosquitto → a subscriber, across a restart;
Home Assistant discovery per field; the history export."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

from edge.bench.broker import Broker, Subscriber
from tests.daemon import DIGIT_EDGE, DaemonProcess, write_config
from tests.forms import fields_yaml, render_form

METER_RULES = "monotonic: increasing\nunit_of_measurement: m³\ndevice_class: water\nstate_class: total_increasing\n"


def form_dir(folder: Path, meters: list[str], first_seed: int) -> Path:
    """One picture per meter value, the sheet somewhere else and turned differently each time."""
    folder.mkdir(parents=True)
    placements = [(0.1, -0.05, 7.0), (-0.12, 0.1, -9.0), (0.05, 0.12, 4.0), (-0.15, 0.0, -5.0)]
    for i, meter in enumerate(meters):
        dx, dy, angle = placements[i % len(placements)]
        render_form(folder / f"{i:02d}.png", meter=meter, dx=dx, dy=dy, angle=angle, seed=first_seed + i)
    return folder


def payloads(sub: Subscriber, topic: str) -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in sub.on(topic)]


def test_fields_published_rejected_and_rules_survive_a_restart(
    mqtt_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    p, ha = f"{topic_prefix}/dev", f"{topic_prefix}-ha"
    config = write_config(
        tmp_path / "config.yaml", fields_yaml(METER_RULES), state_dir=tmp_path / "state",
        mqtt=f"mqtt:\n  host: {mqtt_broker.host}\n  port: {mqtt_broker.port}\n  topic_prefix: {topic_prefix}\n"
        f"  device_id: dev\n  keepalive_s: 5\n  homeassistant: {{discovery_prefix: {ha}}}\n",
    )
    sub = Subscriber(mqtt_broker, [f"{p}/field/#"])
    first = DaemonProcess(config, "--source", f"dir:{form_dir(tmp_path / 'a', ['04127', '04130', '04129'], 0)}")
    assert first.wait() == 0, first.stderr()
    assert sub.wait_for(lambda _: len(sub.on(f"{p}/field/meter/rejected")) >= 1), first.stderr()
    # The restart: the rules go on from the last accepted value (04130), not from nothing.
    second = DaemonProcess(config, "--source", f"dir:{form_dir(tmp_path / 'b', ['04128', '04135'], 10)}")
    assert second.wait() == 0, second.stderr()
    assert "the rules go on from the last accepted values" in second.stderr()
    assert sub.wait_for(lambda _: len(sub.on(f"{p}/field/meter/rejected")) >= 2
                        and len(sub.on(f"{p}/field/meter")) >= 3), second.stderr()

    meter = payloads(sub, f"{p}/field/meter")
    assert [m["value"] for m in meter] == ["04127", "04130", "04135"]
    assert [m["number"] for m in meter] == [4127, 4130, 4135]
    assert [m["seq"] for m in meter] == [1, 2, 5]  # each field numbers its messages, rejections too
    assert all(m["field"] == "meter" and m["status"] == "ok" and m["anchor"] == "sheet" for m in meter)
    assert {"ts", "confidence", "box", "digits", "model", "latency_ms"} <= set(meter[0])
    rejected = payloads(sub, f"{p}/field/meter/rejected")
    assert [(r["value"], r["status"], r["reason"]) for r in rejected] == [
        ("04129", "rejected", "decreased: 4129 is below the last accepted 4130"),
        ("04128", "rejected", "decreased: 4128 is below the last accepted 4130"),
    ]
    assert {m["value"] for m in payloads(sub, f"{p}/field/count")} == {"38"}
    assert {m["value"] for m in payloads(sub, f"{p}/field/id")} == {"5190264"}
    assert len(first.readings()) >= 1 and "fields" in first.readings()[-1]

    late = Subscriber(mqtt_broker, [f"{p}/field/+/state", f"{ha}/#"])
    assert late.wait_for(lambda m: {x.topic for x in m} >= {f"{p}/field/meter/state", f"{p}/field/id/state",
                                                             f"{ha}/sensor/dev/field_meter/config"})
    assert json.loads(late.on(f"{p}/field/meter/state")[-1].payload)["value"] == "04135"
    found = json.loads(late.on(f"{ha}/sensor/dev/field_meter/config")[-1].payload)
    assert found["state_topic"] == f"{p}/field/meter/state"
    assert (found["unit_of_measurement"], found["device_class"], found["state_class"]) == (
        "m³", "water", "total_increasing")
    assert found["unique_id"] == "digit_edge_dev_field_meter" and found["value_template"] == "{{ value_json.number }}"
    assert found["device"]["identifiers"] == ["digit_edge_dev"]  # the same device as the reading's sensors
    assert late.wait_for(lambda _: bool(late.on(f"{ha}/sensor/dev/field_count/config")))
    count = json.loads(late.on(f"{ha}/sensor/dev/field_count/config")[-1].payload)
    assert count["state_class"] == "measurement" and "unit_of_measurement" not in count
    sub.close()
    late.close()

    proc = subprocess.run([DIGIT_EDGE, "history", "--config", str(config), "--field", "meter", "--csv"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(r["field"], r["value"], r["number"]) for r in rows] == [
        ("meter", "04127", "4127"), ("meter", "04130", "4130"), ("meter", "04135", "4135")]
    assert rows[0]["ts"].endswith("Z")
    proc = subprocess.run([DIGIT_EDGE, "history", "--config", str(config), "--field", "meter", "--since", "2099-01-01"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    proc = subprocess.run([DIGIT_EDGE, "history", "--config", str(config), "--field", "gas"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "digit-edge: error: --field gas: no such field (configured: meter, count, id)"


def test_demo_field_history_api_metrics_and_live_page(tmp_path: Path) -> None:
    """The README's demo (examples/demo.yaml) with its meter field: what the page and the API show."""
    import re

    import yaml

    from tests.http_daemon import start_daemon, stop_daemon, wait_for, wait_listening
    from tests.imaging import REPO
    from tests.test_http import chromium

    demo = yaml.safe_load((REPO / "examples" / "demo.yaml").read_text(encoding="utf-8"))
    daemon = wait_listening(start_daemon(tmp_path, "{enabled: true, port: 0}", extra=yaml.safe_dump(
        {"fields": demo["fields"]})))
    try:
        def accepted() -> list[dict[str, object]]:
            status, _, body = daemon.request("/api/history?field=meter&since=1h")
            assert status == 200, body
            values: list[dict[str, object]] = json.loads(body)["values"]
            return values

        wait_for(lambda: len(accepted()) >= 2, "two accepted meter values", daemon)
        values = accepted()
        assert all(re.fullmatch(r"\d{4}", str(v["value"])) and v["number"] == int(str(v["value"])) for v in values)
        assert [v["number"] for v in values] == sorted(v["number"] for v in values)  # the demo meter counts up
        assert daemon.request("/api/history?field=gas")[0] == 400
        assert daemon.request("/api/history?field=meter&since=yesterday")[0] == 400
        status = json.loads(daemon.request("/api/status")[2])
        assert status["fields"]["meter"]["accepted"] >= 2 and status["fields"]["meter"]["format"] == "####"
        metrics = daemon.request("/metrics")[2].decode()
        assert re.search(r'digit_edge_field_accepted_total\{field="meter"\} [1-9]', metrics), metrics
        dom = chromium("--dump-dom", f"http://{daemon.host}:{daemon.port}/", tmp=tmp_path / "profile").stdout
        assert re.search(r'<td class="v"[^>]*>meter: \d{4}</td>', dom), dom[:3000]
        printed = daemon.readings()
        assert printed and "meter" in printed[-1]["fields"]  # type: ignore[operator]
    finally:
        stop_daemon(daemon)
