"""Config loading: defaults, the search order, and the errors people see."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import Config, ConfigError, load_config
from tests.imaging import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_documented_default_config_equals_built_in_defaults() -> None:
    assert load_config(REPO / "config.yaml") == Config()


def test_demo_config_is_valid() -> None:
    cfg = load_config(REPO / "examples" / "demo.yaml")
    assert cfg.source == "demo" and not cfg.mqtt.enabled


def test_unknown_key_names_the_path_and_the_allowed_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "mqtt:\n  hots: broker\n"))
    msg = str(err.value)
    assert "mqtt -> hots" in msg and "unknown key" in msg and "host" in msg and str(tmp_path) in msg


def test_bad_value_names_key_value_and_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "mqtt:\n  port: 70000\n"))
    msg = str(err.value)
    assert "mqtt -> port" in msg and "70000" in msg and "65535" in msg


def test_k_greater_than_n_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="stable_k"):
        load_config(write(tmp_path, "read: {stable_k: 6, stable_n: 5}\n"))


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not valid YAML \(line 2"):
        load_config(write(tmp_path, "fps: 5\nmqtt: {host: a: b}\n"))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_env_var_is_used_when_no_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIGIT_EDGE_CONFIG", str(write(tmp_path, "fps: 3\n")))
    assert load_config(None).fps == 3


def test_state_dir_prefers_systemd_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/digit-edge")
    assert Config().resolved_state_dir() == Path("/var/lib/digit-edge")
