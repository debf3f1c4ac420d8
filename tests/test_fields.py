"""Fields: config errors, the rules, and `digit-edge predict` reading a rendered form field by field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from edge.config import Config, ConfigError, FieldConfig, load_config
from edge.fields import Accepted, apply_format, check_rules
from tests.forms import fields_yaml, render_form, render_sheet
from tests.imaging import save
from tests.test_predict_cli import predict

TRUTH = {"meter": "04127", "count": "38", "id": "5190264"}
# (dx, dy, angle): the sheet moved by up to 15% of the frame and turned by up to ±10°
PLACEMENTS = [(0.0, 0.0, 0.0), (0.15, 0.0, 0.0), (-0.15, 0.1, 0.0), (0.0, 0.0, 10.0), (0.0, 0.0, -10.0),
              (0.1, -0.1, 8.0), (-0.12, 0.12, -9.0)]


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("fields:\n  - name: water\n    region: [0.1, 0.2, 0.5, 0.15]\n    formt: '#####'\n"
                    "  - name: Gas\n    region: [0.8, 0.2, 0.5, 0.1]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert "fields -> 0 -> formt: unknown key (allowed here: device_class, format," in text
    assert "fields -> 1 -> name: String should match pattern" in text and "'Gas'" in text
    path.write_text("fields:\n  - {name: a, region: [0.8, 0.2, 0.5, 0.1]}\n  - {name: a, region: [0, 0, 1, 1]}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fields -> 0: Value error, region \[0.8, 0.2, 0.5, 0.1\] must be"):
        load_config(path)
    path.write_text("fields:\n  - {name: a, region: [0, 0, 1, 1]}\n  - {name: a, region: [0, 0, 1, 1]}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="name 'a' is used twice"):
        load_config(path)
    assert Config().fields == ()


def test_format_and_rules() -> None:
    assert apply_format("04127", "#####") == ("04127", 4127)
    assert apply_format("12345", "###.##") == ("123.45", 123.45)
    assert apply_format("4127", "#####") == "format: 4 digits read (4127), '#####' expects 5"
    cfg = FieldConfig(name="water", region=(0, 0, 1, 1), min=10, max=5000, monotonic="increasing", max_rate=50)
    assert check_rules(cfg, 5, 0, None) == "min: 5 is below 10"
    assert check_rules(cfg, 6000, 0, None) == "max: 6000 is above 5000"
    assert check_rules(cfg, 4000, 0, None) is None
    last = Accepted(4127, 1000.0)
    assert check_rules(cfg, 4126, 2000.0, last) == "decreased: 4126 is below the last accepted 4127"
    assert check_rules(cfg, 4140, 1000.0 + 3600, last) is None
    assert check_rules(cfg, 4200, 1000.0 + 3600, last) == (
        "max_rate: changed by 73 in 3600 s (73 per hour, at most 50)")


def test_predict_reads_the_form_field_by_field(tmp_path: Path) -> None:
    """Three fields among other numbers and printed text, the sheet shifted and turned."""
    config = tmp_path / "fields.yaml"
    config.write_text(fields_yaml(), encoding="utf-8")
    images = [str(render_form(tmp_path / f"form{i}.jpg", dx=dx, dy=dy, angle=a, seed=i))
              for i, (dx, dy, a) in enumerate(PLACEMENTS)]
    proc = predict("--config", str(config), "--json", *images)
    assert proc.returncode == 0, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(objs) == len(PLACEMENTS)
    for obj, placement in zip(objs, PLACEMENTS, strict=True):
        fields = obj["fields"]
        assert set(fields) == set(TRUTH)
        for name, want in TRUTH.items():
            got = fields[name]
            assert set(got) == {"value", "number", "confidence", "box", "status", "reason", "anchor"}
            assert (got["value"], got["status"], got["anchor"]) == (want, "ok", "sheet"), (placement, name, got)
            assert got["number"] == int(want) and got["reason"] is None
        numbers = [n["value"] for n in obj["numbers"]]
        assert "806" in numbers and "31" in numbers  # the numbers that are no field are still read


def test_predict_frame_anchor_and_rejections(tmp_path: Path) -> None:
    """A photo of the sheet alone (no desk around it): regions are fractions of the frame."""
    config = tmp_path / "fields.yaml"
    config.write_text(fields_yaml("min: 5000\n"), encoding="utf-8")
    image = save(tmp_path / "sheet.png", render_sheet("04127", "38", "5190264"))
    short = save(tmp_path / "short.png", render_sheet("04127", "38", "519026"))
    proc = predict("--config", str(config), "--json", str(image), str(short))
    assert proc.returncode == 0, proc.stderr
    whole, cut = (json.loads(line)["fields"] for line in proc.stdout.splitlines())
    assert {k: (v["anchor"], v["value"]) for k, v in whole.items()} == {
        "meter": ("frame", "04127"), "count": ("frame", "38"), "id": ("frame", "5190264")}
    assert whole["meter"]["status"] == "rejected" and whole["meter"]["reason"] == "min: 4127 is below 5000"
    assert cut["id"]["status"] == "rejected"
    assert cut["id"]["reason"] == "format: 6 digits read (519026), '#######' expects 7"


def test_without_fields_predict_output_is_unchanged(tmp_path: Path) -> None:
    image = render_form(tmp_path / "form.png")
    proc = predict("--json", str(image))
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == {"image", "digits", "numbers", "latency_ms", "model"}
    assert yaml.safe_load(fields_yaml())["fields"][0]["name"] == "meter"


def test_discovery_unknown_when_nothing_read_and_link_to_the_live_view() -> None:
    """Issue 12 item 6: Value and Confidence are `unknown` when nothing is read (HA < 2024.10
    shows a text sensor's None as "None"); the device links to the live view when HTTP is on."""
    from edge.config import HttpConfig
    from edge.sinks.homeassistant import Topics, discovery_configs, live_url

    assert live_url(HttpConfig()) is None and live_url(HttpConfig(enabled=True, port=0)) is None
    url = live_url(HttpConfig(enabled=True, host="192.168.1.20", port=8081))
    assert url == "http://192.168.1.20:8081/"
    configs = {t.split("/")[-2]: json.loads(c) for t, c in
               discovery_configs("ha", "dev", Topics("de/dev"), configuration_url=url)}
    assert configs["value"]["value_template"] == (
        "{{ value_json.value if value_json.value is not none else 'unknown' }}")
    assert "if value_json.value is not none else None" in configs["confidence"]["value_template"]
    assert all(c["device"]["configuration_url"] == url for c in configs.values())
    plain = discovery_configs("ha", "dev", Topics("de/dev"))
    assert all("configuration_url" not in json.loads(c)["device"] for _, c in plain)


def test_bench_fields_figure_on_a_few_forms() -> None:
    """`digit-edge bench --fields` on 6 forms per set: the sheet reader gets the shifted forms
    right, fixed boxes do not (the figure can tell the two apart)."""
    from edge.bench.fields import field_lines, measure_fields
    from edge.recognition.classify import Classifier
    from tests.imaging import hwd_glyphs

    fig = measure_fields(Classifier(None), hwd_glyphs(), 6, 7000)
    assert fig["sheet"]["straight"]["fields_right"] >= 0.9 and fig["sheet"]["shifted"]["fields_right"] >= 0.9
    assert fig["fixed_boxes"]["shifted"]["fields_right"] < fig["sheet"]["shifted"]["fields_right"] - 0.3
    assert len(field_lines(fig)) == 5


def test_editor_rewrite_of_the_shipped_config_changes_only_its_fields() -> None:
    """The field editor's rewrite keeps every other line of config.yaml as written (nulls,
    comments, spacing), and an edited field keeps its comments and the keys the page does not set."""
    import difflib

    from edge.config_edit import validate_text, with_field
    from tests.imaging import REPO

    text = (REPO / "config.yaml").read_text(encoding="utf-8")
    out = with_field(text, {"name": "water", "region": [0.1, 0.2, 0.3, 0.4], "format": "#####"})
    changed = [line for line in difflib.unified_diff(text.splitlines(), out.splitlines(), n=0, lineterm="")
               if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-fields: []", "+fields:", "+  - name: water", "+    region: [0.1, 0.2, 0.3, 0.4]",
                       "+    format: '#####'"]
    assert validate_text(out, None).fields[0].format == "#####"
    again = with_field(out.replace("  - name: water\n", "  - name: water  # the cellar meter\n    min: 10\n"),
                       {"name": "water", "region": [0.2, 0.2, 0.3, 0.4], "format": None})
    assert "  - name: water  # the cellar meter\n    min: 10\n    region: [0.2, 0.2, 0.3, 0.4]\n" in again
    assert "format" not in again.split("fields:")[-1].split("#  - name")[0]
