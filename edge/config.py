"""Configuration: a tree of strict, frozen pydantic models, loaded once at start.

Every key has a default and a description; an unknown key or a bad value stops the daemon
before it starts with a message that names the key path, the value and what is allowed.
"""

from __future__ import annotations

import os
import reprlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_SYSTEM_CONFIG = Path("/etc/digit-edge/config.yaml")
ENV_CONFIG = "DIGIT_EDGE_CONFIG"


class ConfigError(Exception):
    """A configuration file that cannot be used; the message is meant for people."""


MAX_CONFIG_BYTES = 1024 * 1024  # a real config is a few KB; bigger is a mistake (or an attack)
MAX_CONFIG_NODES = 100_000  # YAML values after expanding aliases (&anchor / *alias)
MAX_CONFIG_DEPTH = 64  # nesting of mappings and lists
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(Exception):
    """The YAML parses but is refused (duplicate key, too big once expanded); message for people."""


class _StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys (<<: *base) may be overridden: that is what they are for
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
                seen[key] = line
            except TypeError:  # an unhashable key: the constructor below says so
                continue
            if first is not None:
                raise _Refused(f"key {_short(key)} is given twice (lines {first} and {line}); keep one")
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _check_size(root: yaml.Node) -> None:
    """Refuse a document that is huge once aliases are expanded (a 'billion laughs'), or too deep.

    PyYAML shares aliased nodes, so the file loads small, but anything that walks the value
    (validation, an error message showing it) sees every copy. Counted per distinct node
    with memoisation, so this is cheap even for a bomb; iterative, so deep nesting cannot
    overflow the stack.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    active: set[int] = set()
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_CONFIG_DEPTH:
            raise _Refused(f"nested more than {MAX_CONFIG_DEPTH} levels deep")
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            active.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[id(node)] > MAX_CONFIG_NODES:
                raise _Refused(f"more than {MAX_CONFIG_NODES} values once aliases (*name) are expanded")
            continue
        if id(node) in sizes:
            continue
        if id(node) in active:
            raise _Refused("an alias refers to the value that contains it")
        active.add(id(node))
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)


_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxdict, _repr.maxlist, _repr.maxstring, _repr.maxother = 2, 4, 4, 60, 60


def _short(value: Any) -> str:
    """``repr`` bounded in size and time, for values quoted in error messages."""
    text = _repr.repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def _parse_yaml(found: Path) -> Any:
    """Read (at most MAX_CONFIG_BYTES), decode UTF-8, parse strictly; ConfigError for people."""
    try:
        with found.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{found}: config file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{found}: is a directory, not a config file") from None
    except OSError as exc:
        raise ConfigError(f"{found}: cannot read config file: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{found}: config file larger than the limit of {MAX_CONFIG_BYTES // 2**20} MB; "
                          "is this the right file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{found}: not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
                          "save the file as UTF-8") from None
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except _Refused as exc:
        raise ConfigError(f"{found}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{found}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    except RecursionError:
        raise ConfigError(f"{found}: nested too deeply") from None
    finally:
        loader.dispose()


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CameraConfig(Section):
    width: int = Field(640, ge=32, le=8192, description="requested frame width in pixels")
    height: int = Field(480, ge=32, le=8192, description="requested frame height in pixels")
    stall_timeout_s: float = Field(
        5.0, gt=0, le=600, description="no frame for this long = camera stalled: reopen it"
    )
    reopen_backoff_max_s: float = Field(
        30.0, gt=0, le=3600, description="longest wait between attempts to reopen a camera"
    )


class DetectConfig(Section):
    min_height_px: int = Field(14, ge=6, le=2000, description="smallest digit height to look for")
    max_height_frac: float = Field(
        0.9, gt=0, le=1, description="largest digit height as a fraction of the frame height"
    )
    min_contrast: float = Field(
        0.11, gt=0, lt=1, description="ink is at least this much darker than the paper around it (0..1)"
    )
    work_max_side: int = Field(
        1280, ge=64, le=16384, description="bigger frames are analysed at this size (longest side, px)"
    )
    stroke_frac: float = Field(
        0.06, gt=0, le=0.5, description="widest pen stroke, as a fraction of the frame's shorter side"
    )
    remove_lines: bool = Field(True, description="cut ruled/squared paper lines out of the ink")
    merge_broken: bool = Field(True, description="join the pieces of a digit drawn with broken strokes")
    split_touching: bool = Field(True, description="cut regions much wider than a digit into digits")
    turn_upright: bool = Field(
        True, description="read a sheet whose rows of digits run at 8-40 degrees turned upright"
    )
    split_aspect: float = Field(
        1.3, gt=0.5, le=10, description="a region wider than this x its height is split"
    )
    alt_aspect: float = Field(
        1.0, gt=0.3, le=10, description="a region wider than this x its height is also tried cut in parts"
    )
    split_prior: float = Field(
        0.25, ge=0, le=100, description="how strongly the aspect ratio, not the classifier, decides a split"
    )
    digit_aspect: float = Field(
        0.75, gt=0.1, le=2, description="typical digit width / height, to count digits in a split"
    )
    max_fill: float = Field(
        0.75, gt=0, le=1, description="a region whose box is inkier than this is a blob, not a digit"
    )
    polarity: Literal["auto", "dark_on_light", "light_on_dark"] = Field(
        "auto", description="ink darker than the paper (pen on paper), lighter (chalk on a board, "
        "a marker on a dark screen), or auto: decided per frame"
    )


class ClassifyConfig(Section):
    min_confidence: float = Field(
        0.5, ge=0, le=1, description="crops the model is less sure of are dropped as 'not a digit'"
    )
    threads: int = Field(1, ge=1, le=16, description="interpreter threads (1 suits a Pi)")
    model: Literal["both", "cnn", "mlp"] = Field(
        "both", description="which shipped model runs when the top-level `model:` path is null: "
        "both (the MLP and the CNN on the same crops, their probabilities averaged), "
        "cnn (11 outputs, the 11th 'not a digit') or mlp (the seed's 10-output MLP)"
    )


class ReadConfig(Section):
    stable_k: int = Field(3, ge=1, le=100, description="a value becomes stable once seen in k ...")
    stable_n: int = Field(5, ge=1, le=100, description="... of the last n frames")
    gap_factor: float = Field(
        0.6, gt=0, le=10, description="a gap wider than this x digit height starts a new number"
    )

    @model_validator(mode="after")
    def _k_within_n(self) -> ReadConfig:
        if self.stable_k > self.stable_n:
            raise ValueError(f"stable_k ({self.stable_k}) must not exceed stable_n ({self.stable_n})")
        return self


class GateConfig(Section):
    enabled: bool = Field(
        True, description="read a frame only when the picture changed since the last frame read (cameras, "
        "streams, video:, demo; file: and dir: images are read once anyway)"
    )
    threshold: float = Field(
        12.0, gt=0, le=255, description="grey levels (0-255) a spot of the downscaled picture must change by, "
        "after evening out the brightness, to count as a change"
    )
    max_skip_s: float = Field(10.0, gt=0, le=86_400, description="read a frame at least this often (seconds)")


class TlsConfig(Section):
    enabled: bool = False
    ca_file: Path | None = Field(None, description="CA certificate that signed the broker's")
    cert_file: Path | None = Field(None, description="client certificate (optional)")
    key_file: Path | None = Field(None, description="client key (with cert_file)")
    insecure: bool = Field(False, description="skip the host name check (testing only)")

    @model_validator(mode="after")
    def _cert_and_key(self) -> TlsConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file must be given together")
        return self


class HomeAssistantConfig(Section):
    enabled: bool = True
    discovery_prefix: str = Field("homeassistant", min_length=1)


class MqttConfig(Section):
    enabled: bool = True
    host: str = Field("localhost", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("digit-edge", min_length=1)
    device_id: str | None = Field(None, description="null = host name")
    client_id: str | None = Field(None, description="null = digit-edge-<device_id>")
    username: str | None = None
    password_file: Path | None = Field(
        None, description="file holding the password; else $DIGIT_EDGE_MQTT_PASSWORD"
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: TlsConfig = TlsConfig()
    homeassistant: HomeAssistantConfig = HomeAssistantConfig()
    spool_max: int = Field(100_000, ge=10, le=10_000_000, description="readings kept while offline")
    stats_interval_s: float = Field(60.0, ge=1, le=86_400)
    snapshot: bool = Field(True, description="retained annotated JPEG on P/snapshot")

    @model_validator(mode="after")
    def _no_slashes(self) -> MqttConfig:
        for name in ("topic_prefix", "device_id"):
            value = getattr(self, name)
            if value is not None and any(c in value for c in "#+"):
                raise ValueError(f"{name} must not contain MQTT wildcards '#' or '+': {value!r}")
        return self


class HttpConfig(Section):
    enabled: bool = False
    host: str = Field("127.0.0.1", min_length=1, description="127.0.0.1 = this machine only; 0.0.0.0 = the LAN")
    port: int = Field(8080, ge=0, le=65535, description="0 = any free port")
    password_file: Path | None = Field(None, description="basic-auth password (user 'admin')")
    stream_fps: float = Field(
        10.0, gt=0, le=60, description="most annotated frames per second sent to viewers (shared by all)"
    )


FIELD_NAME = r"^[a-z0-9][a-z0-9_]{0,31}$"
FIELD_FORMAT = r"^#{1,12}(\.#{1,6})?$"


class FieldConfig(Section):
    """One named number on the sheet (edge/fields.py reads and checks it)."""

    name: str = Field(pattern=FIELD_NAME, description="slug (a-z, 0-9, _): topic and entity id part")
    region: tuple[float, float, float, float] = Field(
        description="x, y, width, height as fractions (0..1) of the sheet, or of the frame when no sheet is found"
    )
    format: str | None = Field(None, pattern=FIELD_FORMAT,
                               description="digits expected, '#' each; '###.##' places a decimal point")
    min: float | None = Field(None, description="smallest plausible value")
    max: float | None = Field(None, description="largest plausible value")
    monotonic: Literal["increasing", "decreasing", "none"] = Field(
        "none", description="a meter only goes up: a value below the last accepted one is rejected")
    max_rate: float | None = Field(None, gt=0, description="largest change per hour (from the last accepted value)")
    unit_of_measurement: str | None = Field(None, min_length=1, description="for Home Assistant, e.g. m³")
    device_class: str | None = Field(None, min_length=1, description="for Home Assistant, e.g. water")
    state_class: Literal["measurement", "total", "total_increasing"] | None = Field(
        None, description="for Home Assistant; null = measurement")

    @model_validator(mode="after")
    def _check(self) -> FieldConfig:
        x, y, w, h = self.region
        if not (0 <= x < 1 and 0 <= y < 1 and w > 0 and h > 0 and x + w <= 1.0001 and y + h <= 1.0001):
            raise ValueError(f"region {list(self.region)} must be x, y, width, height with 0 <= x, y, "
                             "x + width <= 1, y + height <= 1 and width, height > 0")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class HistoryConfig(Section):
    days: float = Field(400, gt=0, le=36_500, description="accepted field values older than this are deleted")
    max_rows: int = Field(200_000, ge=100, le=100_000_000,
                          description="at most this many values kept (all fields); the oldest go first")


class Config(Section):
    source: str = Field("demo", min_length=1, description="demo, usb:N, picamera[:N], file:, dir:, video:, URL")
    fps: float = Field(10.0, gt=0, le=120)
    model: Path | None = Field(None, description="null = the shipped int8 model named by classify.model")
    state_dir: Path | None = Field(None, description="null = $STATE_DIRECTORY or ~/.local/state/digit-edge")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    camera: CameraConfig = CameraConfig()
    detect: DetectConfig = DetectConfig()
    classify: ClassifyConfig = ClassifyConfig()
    read: ReadConfig = ReadConfig()
    gate: GateConfig = GateConfig()
    mqtt: MqttConfig = MqttConfig()
    http: HttpConfig = HttpConfig()
    fields: tuple[FieldConfig, ...] = Field((), description="named numbers on the sheet; empty = none")
    history: HistoryConfig = HistoryConfig()

    @model_validator(mode="after")
    def _unique_fields(self) -> Config:
        names = [f.name for f in self.fields]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"fields: name {twice[0]!r} is used twice; names must be unique")
        return self

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        env = os.environ.get("STATE_DIRECTORY")
        if env:
            return Path(env.split(":")[0])
        return Path.home() / ".local" / "state" / "digit-edge"


def find_config_path(explicit: str | Path | None) -> Path | None:
    """``--config``, then ``$DIGIT_EDGE_CONFIG``, then /etc/digit-edge/config.yaml, else None."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    return DEFAULT_SYSTEM_CONFIG if DEFAULT_SYSTEM_CONFIG.exists() else None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Load and validate; raise ConfigError with a message for people on any problem."""
    found = find_config_path(path)
    data: dict[str, Any] = {}
    if found is not None:
        loaded = _parse_yaml(found)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{found}: the top level must be a mapping of keys, got {type(loaded).__name__}")
        data = loaded
    for key, value in (overrides or {}).items():
        if value is not None:
            data[key] = value
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, found)) from None


def format_validation_error(exc: ValidationError, path: Path | None) -> str:
    where = str(path) if path else "built-in configuration"
    lines = [f"{where}: invalid configuration:"]
    for err in exc.errors():
        key = " -> ".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = Config
            for part in err["loc"][:-1]:
                if isinstance(part, int):
                    continue  # an index into a list of sections (fields -> 0 -> ...)
                field = parent.model_fields.get(str(part))
                ann = field.annotation if field else None
                if parent is Config and part == "fields":
                    ann = FieldConfig
                if isinstance(ann, type) and issubclass(ann, BaseModel):
                    parent = ann  # type: ignore[assignment]
            allowed = ", ".join(sorted(parent.model_fields))
            msg = f"unknown key (allowed here: {allowed})"
            lines.append(f"  {key}: {msg}")
            continue
        value = err.get("input")
        shown = "" if isinstance(value, dict) else f" (got {_short(value)})"
        lines.append(f"  {key}: {msg}{shown}")
    return "\n".join(lines)


def config_summary(config: Config) -> dict[str, Any]:
    """The non-secret parts worth publishing on P/info."""
    return {
        "source": config.source,
        "fps": config.fps,
        "min_confidence": config.classify.min_confidence,
        "stable": f"{config.read.stable_k}/{config.read.stable_n}",
        "mqtt_tls": config.mqtt.tls.enabled,
        "http": config.http.enabled,
        **({"fields": [f.name for f in config.fields]} if config.fields else {}),
    }
