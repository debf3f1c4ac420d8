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


def test_a_file_that_is_not_utf8_is_one_line_naming_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("fps: 5\nsource: \"caf\u00e9\"\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: not UTF-8 text (byte 0xe9 on line 2); save the file as UTF-8"


@pytest.mark.parametrize(("text", "key", "lines"), [
    ("fps: 5\nsource: demo\nfps: 100\n", "'fps'", (1, 3)),
    ("mqtt:\n  host: a\nhttp: {port: 1}\nmqtt:\n  port: 2\n", "'mqtt'", (1, 4)),
    ("mqtt:\n  host: a\n  port: 1\n  host: b\n", "'host'", (2, 4)),
])
def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path, text: str, key: str,
                                                      lines: tuple[int, int]) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert f"key {key} is given twice (lines {lines[0]} and {lines[1]})" in str(err.value)


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """``<<: *base`` then the same key is how YAML overrides a merged value: not a duplicate."""
    cfg = load_config(write(tmp_path, "camera:\n  <<: {width: 320, height: 240}\n  width: 800\n"))
    assert (cfg.camera.width, cfg.camera.height) == (800, 240)


def billion_laughs(key: str, levels: int = 9) -> str:
    """``levels`` lists of nine aliases to the list before: 9**levels strings once expanded."""
    text = "x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
    for i in range(1, levels + 1):
        name = key if i == levels else f"x{i}"
        text += f"{name}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n"
    return text


@pytest.mark.parametrize("key", ["fps", "source"])
def test_a_yaml_bomb_under_a_known_key_is_refused_without_expanding_it(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, billion_laughs(key)))
    msg = str(err.value)
    assert "values once aliases (*name) are expanded" in msg and len(msg) < 300


def test_a_smaller_bomb_is_validated_and_the_error_quotes_a_short_value(tmp_path: Path) -> None:
    """9**4 values pass the size check; pydantic refuses fps, and the message stays one short line."""
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, billion_laughs("fps", levels=4)))
    msg = str(err.value)
    assert "fps" in msg and len(msg) < 1000, msg[:2000]


def test_a_huge_file_is_refused_naming_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as f:
        f.write("fps: 5\n")
        for _ in range(50):
            f.write("#" * (1 << 20) + "\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: config file larger than the limit of 1 MB; is this the right file?"


def test_an_alias_to_its_own_container_and_deep_nesting_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an alias refers to the value that contains it"):
        load_config(write(tmp_path, "fps: &a [*a]\n"))
    with pytest.raises(ConfigError, match="nest"):
        load_config(write(tmp_path, "fps: " + "[" * 100_000 + "]" * 100_000 + "\n"))
