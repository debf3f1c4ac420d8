"""Change the ``fields:`` of a config file from the live page, keeping the user's comments.

ruamel.yaml's round-trip mode keeps comments, key order and the rest of the file as the
user wrote them; only the one field's entry is replaced (or appended). The new text is
validated like any config before it is written; a file that cannot be written (read-only
/etc, the sandboxed unit, no file at all) is not an error for the page: it shows the YAML
to paste instead.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from edge.config import Config, ConfigError, format_validation_error


class NotWritten(Exception):
    """The new config is valid but could not be saved; ``yaml`` is the text to paste."""

    def __init__(self, message: str, text: str) -> None:
        super().__init__(message)
        self.yaml = text


def _null(representer: Any, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def _round_trip() -> Any:
    from ruamel.yaml import YAML  # imported here: only the editor needs it, not the daemon's loop

    y = YAML()  # round-trip: comments and order kept
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)  # "  - name: …", as config.yaml writes lists
    y.representer.add_representer(type(None), _null)  # keep "key: null" as the user wrote it, not "key:"
    return y


def with_field(text: str, field: dict[str, Any]) -> str:
    """``text`` (a config file) with the field named ``field["name"]`` set to ``field``."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    y = _round_trip()
    doc = y.load(text) if text.strip() else None
    if doc is None:
        doc = CommentedMap()
    if not isinstance(doc, dict):
        raise ConfigError("the config's top level is not a mapping of keys")
    values: dict[str, Any] = {}
    for key, value in field.items():
        if key == "region":
            seq = CommentedSeq([round(float(v), 4) for v in value])
            seq.fa.set_flow_style()  # [x, y, w, h] on one line, as the docs write it
            values[key] = seq
        else:
            values[key] = value
    fields = doc.get("fields")
    if not isinstance(fields, list) or not fields:
        fields = CommentedSeq()
        doc["fields"] = fields
    for old in fields:
        if isinstance(old, dict) and old.get("name") == field["name"]:
            entry = old  # changed in place: its comments and the keys the page does not edit stay
            break
    else:
        entry = CommentedMap()
        fields.append(entry)
    for key, value in values.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    out = io.StringIO()
    y.dump(doc, out)
    return out.getvalue()


def validate_text(text: str, where: Path | None) -> Config:
    """The config ``text`` would give, or ConfigError naming the key."""
    try:
        data = yaml.safe_load(text) or {}
        return Config.model_validate(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"the new config is not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None


def save_field(path: Path | None, field: dict[str, Any]) -> Config:
    """Validate and write ``path`` with ``field`` set; NotWritten (with the YAML) when it cannot be."""
    try:
        old = path.read_text(encoding="utf-8") if path is not None else ""
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    text = with_field(old, field)
    config = validate_text(text, path)
    if path is None:
        raise NotWritten("the daemon runs on built-in defaults, with no config file to change: save this as "
                         "/etc/digit-edge/config.yaml (or pass --config) and restart", text)
    try:
        _write(path, text)
    except OSError as exc:
        raise NotWritten(f"cannot write {path} ({exc.strerror}); paste this into it and reload "
                         "(systemctl reload digit-edge)", text) from None
    return config


def _write(path: Path, text: str) -> None:
    """Replace the file in one step when the directory allows it, else rewrite it in place."""
    mode = path.stat().st_mode & 0o7777
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError:
        with path.open("r+", encoding="utf-8") as f:  # the file is writable but its directory is not
            f.write(text)
            f.truncate()
            f.flush()
            os.fsync(f.fileno())
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
