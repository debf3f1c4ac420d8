"""Home Assistant MQTT discovery: the entities appear in HA with no YAML.

Three sensors read the retained ``P/state`` reading: ``Number`` (numeric, for graphs and
automations), ``Value`` (the digits as text, leading zeros kept) and ``Confidence`` (%).
A reading with nothing read has ``number``/``value`` null; the templates then render
``None``, which HA's MQTT sensor takes as "unknown" for the numeric sensors. HA releases
before 2024.10 show a text sensor's ``None`` as the text "None", so ``Value`` renders the
state ``unknown`` itself, and ``Confidence`` is unknown too (not 100%) when nothing is read.
With ``fields:`` each field is one more sensor on ``P/field/<name>/state``, with the field's
unit and classes. The device links to the live view (``configuration_url``) when HTTP is on.
Every entity's availability follows ``P/availability`` (online / offline: last will).
Configs go to ``<discovery_prefix>/sensor/<node_id>/<object_id>/config``, retained, and are
sent again whenever HA announces ``online`` on ``<discovery_prefix>/status``.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edge import __version__
from edge.config import FieldConfig, HttpConfig

ORIGIN = {"name": "digit-edge", "sw_version": __version__}


@dataclass(frozen=True, slots=True)
class Topics:
    """The device's topics under ``P = <topic_prefix>/<device_id>`` (the DESIGN.md contract)."""

    prefix: str

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    @property
    def reading(self) -> str:
        return f"{self.prefix}/reading"

    @property
    def state(self) -> str:
        return f"{self.prefix}/state"

    @property
    def stats(self) -> str:
        return f"{self.prefix}/stats"

    @property
    def info(self) -> str:
        return f"{self.prefix}/info"

    @property
    def snapshot(self) -> str:
        return f"{self.prefix}/snapshot"

    def field(self, name: str) -> str:
        return f"{self.prefix}/field/{name}"

    def field_state(self, name: str) -> str:
        return f"{self.prefix}/field/{name}/state"

    def field_rejected(self, name: str) -> str:
        return f"{self.prefix}/field/{name}/rejected"


def live_url(http: HttpConfig) -> str | None:
    """The live view's address for HA's device page, or None (HTTP off, or on any free port)."""
    if not http.enabled or http.port == 0:
        return None
    host = socket.gethostname() if http.host in ("0.0.0.0", "::", "") else http.host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{http.port}/"


def node_id(device_id: str) -> str:
    """``device_id`` made safe for a discovery topic and a unique_id ([A-Za-z0-9_-] only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id) or "digit_edge"


def status_topic(discovery_prefix: str) -> str:
    return f"{discovery_prefix}/status"


def discovery_configs(
    discovery_prefix: str, device_id: str, topics: Topics, model: str = "digit-edge",
    fields: Sequence[FieldConfig] = (), configuration_url: str | None = None,
) -> list[tuple[str, str]]:
    """(topic, JSON payload) for every entity of this device, to publish retained."""
    node = node_id(device_id)
    device = {
        "identifiers": [f"digit_edge_{node}"],
        "name": f"digit-edge {device_id}",
        "manufacturer": "digit-edge",
        "model": model,
        "sw_version": __version__,
    }
    if configuration_url is not None:
        device["configuration_url"] = configuration_url
    common: dict[str, Any] = {
        "state_topic": topics.state,
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "device": device,
        "origin": ORIGIN,
    }
    entities: dict[str, dict[str, Any]] = {
        "number": {
            "name": "Number",
            "icon": "mdi:numeric",
            "state_class": "measurement",
            "value_template": "{{ value_json.number }}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": (
                "{{ {'seq': value_json.seq, 'ts': value_json.ts, 'value': value_json.value,"
                " 'model': value_json.model} | tojson }}"
            ),
        },
        "value": {
            "name": "Value",
            "icon": "mdi:form-textbox",
            "value_template": "{{ value_json.value if value_json.value is not none else 'unknown' }}",
        },
        "confidence": {
            "name": "Confidence",
            "icon": "mdi:percent",
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "entity_category": "diagnostic",
            "value_template": ("{{ ((value_json.confidence * 100) | round(1)) if value_json.value is not none"
                               " else None }}"),
        },
    }
    for f in fields:
        entities[f"field_{f.name}"] = field_entity(f, topics)
    out = []
    for object_id, entity in entities.items():
        config = {**common, **entity, "unique_id": f"digit_edge_{node}_{object_id}"}
        topic = f"{discovery_prefix}/sensor/{node}/{object_id}/config"
        out.append((topic, json.dumps(config, sort_keys=True)))
    return out


def field_entity(f: FieldConfig, topics: Topics) -> dict[str, Any]:
    """One field's sensor: its retained state, its number, its unit and classes."""
    entity: dict[str, Any] = {
        "name": f.name.replace("_", " ").capitalize(),
        "icon": "mdi:counter",
        "state_topic": topics.field_state(f.name),
        "state_class": f.state_class or "measurement",
        "value_template": "{{ value_json.number }}",
        "json_attributes_topic": topics.field_state(f.name),
        "json_attributes_template": ("{{ {'seq': value_json.seq, 'ts': value_json.ts, 'value': value_json.value,"
                                     " 'confidence': value_json.confidence, 'anchor': value_json.anchor} | tojson }}"),
    }
    if f.format is not None and "." in f.format:
        entity["suggested_display_precision"] = len(f.format) - f.format.index(".") - 1
    if f.unit_of_measurement is not None:
        entity["unit_of_measurement"] = f.unit_of_measurement
    if f.device_class is not None:
        entity["device_class"] = f.device_class
    return entity
