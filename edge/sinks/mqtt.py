"""The MQTT sink: readings to the broker, through a spool on disk, none lost.

``publish`` only writes the reading to the spool (SQLite, fsynced) and returns; it never
waits for the network. A publisher thread (publisher.py) sends spooled readings in ``seq`` order on
``P/reading`` (QoS 1) with a bounded window of unacknowledged messages, and deletes each
one only when the broker's PUBACK has arrived. paho's network loop runs in its own thread,
connects in the background (so the daemon starts while the broker is down), retries with
exponential backoff, and re-sends unacknowledged messages after a reconnect; on every
successful connect we publish ``online``, ``P/info`` and the Home Assistant discovery
configs, and the publisher drains the spool. The last will (``offline``, retained) covers
a crash; ``close`` publishes ``offline`` itself. What the broker has not acknowledged by
then stays in the spool and goes first after the next start (at least once: a subscriber
may see a ``seq`` twice, never a gap).
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import FieldConfig, MqttConfig
from edge.sinks.homeassistant import Topics, discovery_configs, node_id, status_topic
from edge.sinks.mqtt_setup import ProblemLog, build_client, describe_connect_error, describe_refusal
from edge.sinks.publisher import SpoolPublisher
from edge.sinks.spool import Spool, SpoolError
from edge.state import StateDb
from edge.types import Reading

log = logging.getLogger(__name__)

WINDOW = 64  # readings handed to paho and not yet acknowledged
MAX_QUEUED = 1000  # messages paho may hold at most
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
FLAP_S = 10.0  # a connection that drops sooner than this counts as flapping
KEEPALIVE_TIMEOUT = 141  # paho's reason code when the other side stays silent (no CONNACK)


class MqttSink:
    """A ``Sink`` that publishes readings, state, stats and snapshots to one broker."""

    def __init__(self, cfg: MqttConfig, state_dir: Path, info: dict[str, Any], db: StateDb | None = None,
                 fields: Sequence[FieldConfig] = (), configuration_url: str | None = None) -> None:
        self.cfg = cfg
        self.fields = tuple(fields)
        self.configuration_url = configuration_url
        self._field_states: dict[str, bytes] = {}  # retained P/field/<name>/state, sent again on connect
        self.device_id = cfg.device_id or socket.gethostname()
        self.topics = Topics(f"{cfg.topic_prefix}/{self.device_id}")
        self.client_id = cfg.client_id or f"digit-edge-{node_id(self.device_id)}"
        self.state = "connecting"  # for health pages: connecting / connected / disconnected: why
        self.reconnects = 0
        self._where = f"{cfg.host}:{cfg.port}"
        self._info = json.dumps(info, default=str)
        model = info.get("model")
        model_name = model.get("name") if isinstance(model, dict) else None
        self._ha_model = f"digit-edge ({model_name})" if model_name else "digit-edge"
        self._lock = threading.Lock()
        self._connected = False
        self._connects = 0
        self._refused = False
        self._connected_at = 0.0
        self._flaps = 0  # connections in a row that dropped within FLAP_S of connecting
        self._closing = False
        self._closed = False
        self._problems = ProblemLog()
        client = build_client(cfg, self.client_id)  # may raise MqttSetupError: before touching disk
        self.spool = Spool(state_dir, cfg.spool_max, db)
        self.unspooled = 0  # readings the spool could not store (a full disk): sent live only
        self._staged = 0  # the seq last offered to the spool inside the counter's transaction
        self._publisher = SpoolPublisher(client, self.spool, self.topics, WINDOW)
        client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.max_inflight_messages_set(WINDOW + 16)  # + online, info, state, discovery
        # A backstop for paho's own queue (QoS>0 past the in-flight ones): readings are bounded
        # by the window and on disk, state and snapshot one at a time; this catches the rest
        # (discovery bursts, live-only readings while the disk is full) on a slow link.
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_pre_connect = self._on_pre_connect
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client
        client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        client.loop_start()
        self._publisher.start()
        log.info("MQTT: publishing on %s/# to %s as client %s%s", self.topics.prefix, self._where,
                 self.client_id, " (TLS)" if cfg.tls.enabled else "")

    # -- the Sink protocol ------------------------------------------------------------------

    def stage(self, reading: Reading) -> None:
        """Spool the reading inside the seq counter's open transaction (it commits with the seq).

        Raises SpoolError if it cannot be written, which rolls the transaction back;
        ``publish`` then sends the reading live instead.
        """
        self._staged = reading.seq
        self.spool.put(reading.seq, self.topics.reading, self._payload(reading))

    def publish(self, reading: Reading, snapshot_jpeg: bytes | None = None) -> None:
        if self._closing:
            log.warning("MQTT sink is closing; reading %d not spooled", reading.seq)
            return
        payload = self._payload(reading)
        if self._staged == reading.seq:
            spooled = self.spool.last_committed >= reading.seq
        else:
            try:
                self.spool.put(reading.seq, self.topics.reading, payload)
                spooled = True
            except SpoolError as exc:
                log.error("%s; this reading is sent live only", exc)
                spooled = False
        if not spooled:
            # Not on disk (a full state_dir): hand it to paho now; lost if the broker is away.
            self.unspooled += 1
            if self._connected:
                self._client.publish(self.topics.reading, payload, qos=1)
        self._publisher.offer(payload, snapshot_jpeg if self.cfg.snapshot else None)

    def publish_field(self, name: str, payload: dict[str, Any], rejected: bool) -> None:
        """``P/field/<name>`` and its retained state, or ``…/rejected``; QoS 1, queued by paho
        while the broker is away (not spooled: the history in the state db keeps the values)."""
        if self._closing:
            return
        data = json.dumps(payload).encode()
        if rejected:
            self._client.publish(self.topics.field_rejected(name), data, qos=1)
            return
        with self._lock:
            self._field_states[name] = data
        self._client.publish(self.topics.field(name), data, qos=1)
        self._client.publish(self.topics.field_state(name), data, qos=1, retain=True)

    @staticmethod
    def _payload(reading: Reading) -> bytes:
        return json.dumps(reading.to_json()).encode()

    def publish_stats(self, stats: dict[str, Any]) -> None:
        if not self._connected or self._closing:
            return
        mine = self.stats()
        payload = {**stats, "spool_depth": mine["spool_depth"], "spool_dropped": mine["dropped"],
                   "spool_unstored": mine["unspooled"],
                   "mqtt_reconnects": mine["reconnects"], "mqtt_sent": mine["sent"]}
        self._client.publish(self.topics.stats, json.dumps(payload, default=str), qos=0)

    def close(self, timeout: float = 3.0) -> None:
        """Flush what the broker acknowledges within ``timeout``, say ``offline``, disconnect."""
        if self._closed:
            return
        self._closed = self._closing = True
        deadline = time.monotonic() + max(timeout, 0.0)
        reserve = min(1.0, timeout / 3)  # kept for `offline` and the disconnect
        while self._connected and time.monotonic() < deadline - reserve and self._publisher.pending():
            self._publisher.wake()
            time.sleep(0.02)
        self._publisher.stop(max(0.1, deadline - time.monotonic()))
        if self._connected:
            info = self._client.publish(self.topics.availability, "offline", qos=1, retain=True)
            # If the connection goes away meanwhile, the broker sends the will instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(max(0.1, deadline - time.monotonic()))
        self._client.disconnect()
        stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(max(0.2, deadline - time.monotonic()))
        left = self.spool.depth()
        log.info("MQTT closed: %d readings acknowledged this run, %d left in the spool for the next start",
                 self._publisher.sent, left)
        self.state = "closed"
        self.spool.close()

    # -- for health pages -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self._connected,
            "state": self.state,
            "spool_depth": self.spool.depth(),
            "reconnects": self.reconnects,
            "dropped": self.spool.dropped,
            "unspooled": self.unspooled,
            "sent": self._publisher.sent,
            "snapshots_skipped": self._publisher.snapshots_skipped,
            "failed_attempts": self._problems.attempts,  # since the last successful connect
        }

    # -- paho callbacks (network thread) ----------------------------------------------------

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._refused = False

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
                    reason_code: ReasonCode, properties: Properties | None) -> None:
        if reason_code.is_failure:
            self._refused = True
            kind, message = describe_refusal(reason_code, self.cfg.host, self.cfg.port)
            self.state = f"disconnected: {message}"
            self._problems.report(kind, message)
            return
        after = f" after {self._problems.attempts} failed attempts" if self._problems.attempts else ""
        if self._problems.attempts:
            # The broker was away in between (a restart), not taken by a twin with our client id,
            # which lets us straight back in: what dropped before this is not flapping.
            self._flaps = 0
        log.log(logging.INFO if self._flaps < 3 else logging.DEBUG,
                "MQTT connected to %s%s; %d readings waiting in the spool", self._where, after, self.spool.depth())
        self._connected_at = time.monotonic()
        self._problems.clear()
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        client.publish(self.topics.info, self._info, qos=1, retain=True)
        ha = self.cfg.homeassistant
        if ha.enabled:
            client.subscribe(status_topic(ha.discovery_prefix), qos=1)
            self._send_discovery(client)
        with self._lock:
            states = list(self._field_states.items())
        for name, data in states:  # a broker without persistence may have lost the retained ones
            client.publish(self.topics.field_state(name), data, qos=1, retain=True)
        with self._lock:
            self._connected = True
            self._connects += 1
            if self._connects > 1:
                self.reconnects += 1
        self.state = "connected"
        self._publisher.set_connected(True)  # only now: `online` goes before any reading

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho calls this from inside its `except OSError:` block: the exception is current.
        kind, message = describe_connect_error(
            sys.exception(), self.cfg.host, self.cfg.port, self.cfg.tls.enabled)
        self.state = f"disconnected: {message}"
        self._problems.report(kind, message)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
                       reason_code: ReasonCode, properties: Properties | None) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
        self._publisher.set_connected(False)
        if self._closing or self._refused:
            return
        if was_connected:
            self.state = f"disconnected: connection lost ({reason_code})"
            self._note_connection_lost(client, reason_code)
        elif reason_code.value == KEEPALIVE_TIMEOUT:  # we gave up: the other side said nothing
            message = (f"{self._where} accepted the connection but never answered the MQTT login "
                       f"(no CONNACK within {self.cfg.keepalive_s} s); is it an MQTT broker, and is "
                       "mqtt.port right (a TLS port needs mqtt.tls.enabled)?")
            self.state = f"disconnected: {message}"
            self._problems.report("no-connack", message)
        else:
            message = (f"MQTT broker {self._where} closed the connection before accepting it "
                       f"({reason_code}); a TLS port without mqtt.tls.enabled?")
            self.state = f"disconnected: {message}"
            self._problems.report(f"closed-{reason_code}", message)

    def _note_connection_lost(self, client: mqtt.Client, reason_code: ReasonCode) -> None:
        """Log a lost connection; if it keeps dropping right after connecting, back off and say so once."""
        lasted = time.monotonic() - self._connected_at
        self._flaps = self._flaps + 1 if lasted < FLAP_S else 0
        # paho forgets its backoff on every successful connect: keep it growing while we flap.
        backoff = RECONNECT_MIN_S * 2 ** max(0, self._flaps - 1)
        client.reconnect_delay_set(min(RECONNECT_MAX_S, backoff), RECONNECT_MAX_S)
        if self._flaps < 2:
            log.warning("MQTT connection to %s lost (%s); readings are spooled until it is back",
                        self._where, reason_code)
        elif self._flaps == 2:
            log.warning("MQTT connection to %s keeps dropping within seconds of connecting, and the broker "
                        "lets us straight back in each time (%s); is another client using client id %r? "
                        "(mqtt.client_id, or device_id, must be unique per device; or is the broker being "
                        "restarted over and over?); backing off", self._where, reason_code, self.client_id)
        else:
            log.debug("MQTT connection dropped again right after connecting (%d times)", self._flaps)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                    reason_code: ReasonCode, properties: Properties) -> None:
        self._publisher.wake()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        ha = self.cfg.homeassistant
        if (ha.enabled and message.topic == status_topic(ha.discovery_prefix)
                and message.payload.strip() == b"online"):
            log.info("Home Assistant is online: sending the discovery configs again")
            self._send_discovery(client)

    def _send_discovery(self, client: mqtt.Client) -> None:
        configs = discovery_configs(self.cfg.homeassistant.discovery_prefix, self.device_id,
                                    self.topics, self._ha_model, self.fields, self.configuration_url)
        for topic, payload in configs:
            client.publish(topic, payload, qos=1, retain=True)
