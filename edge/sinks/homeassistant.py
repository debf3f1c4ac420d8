"""Home Assistant MQTT discovery: the entities appear in HA with no YAML.

Three sensors read the retained ``P/state`` reading: ``Number`` (numeric, for graphs and
automations), ``Value`` (the digits as text, leading zeros kept) and ``Confidence`` (%).
A reading with nothing read has ``number``/``value`` null; the templates then render
``None``, which HA's MQTT sensor takes as "unknown" instead of a non-numeric error.
Every entity's availability follows ``P/availability`` (online / offline: last will).
Configs go to ``<discovery_prefix>/sensor/<node_id>/<object_id>/config``, retained, and are
sent again whenever HA announces ``online`` on ``<discovery_prefix>/status``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from edge import __version__

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


def node_id(device_id: str) -> str:
    """``device_id`` made safe for a discovery topic and a unique_id ([A-Za-z0-9_-] only)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", device_id) or "digit_edge"


def status_topic(discovery_prefix: str) -> str:
    return f"{discovery_prefix}/status"


def discovery_configs(
    discovery_prefix: str, device_id: str, topics: Topics, model: str = "digit-edge"
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
            "value_template": "{{ value_json.value }}",
        },
        "confidence": {
            "name": "Confidence",
            "icon": "mdi:percent",
            "unit_of_measurement": "%",
            "state_class": "measurement",
            "suggested_display_precision": 1,
            "entity_category": "diagnostic",
            "value_template": "{{ (value_json.confidence * 100) | round(1) }}",
        },
    }
    out = []
    for object_id, entity in entities.items():
        config = {**entity, **common, "unique_id": f"digit_edge_{node}_{object_id}"}
        topic = f"{discovery_prefix}/sensor/{node}/{object_id}/config"
        out.append((topic, json.dumps(config, sort_keys=True)))
    return out
