"""The thread that moves readings from the spool to the broker, in order, deleting on PUBACK.

While connected it hands paho up to ``window`` spooled readings (QoS 1) that the broker has
not acknowledged yet, oldest ``seq`` first, and deletes each from the spool once its
PUBACK has arrived (paho marks the message info published). While disconnected it sends
nothing new: paho keeps what was in flight and re-sends it after the reconnect, and the
rest waits on disk. It also publishes the retained latest state and snapshot, coalesced:
after an outage one ``P/state`` goes out, not one per reading missed; and on a slow link
one snapshot and state at a time: the next pair goes only once the broker has
acknowledged the state sent after the last snapshot, so a newer one replaces the waiting
one (stale snapshots are dropped, not piled up in paho or in the socket buffer, ahead of
the readings). Readings are bounded by the window, and are on disk anyway.
"""

from __future__ import annotations

import logging
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from edge.sinks.homeassistant import Topics
from edge.sinks.spool import Spool, SpoolError

log = logging.getLogger(__name__)


class SpoolPublisher:
    def __init__(self, client: mqtt.Client, spool: Spool, topics: Topics, window: int) -> None:
        self.client = client
        self.spool = spool
        self.topics = topics
        self.window = window
        self.sent = 0  # readings acknowledged by the broker in this process
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = False
        self._inflight: dict[int, mqtt.MQTTMessageInfo] = {}  # seq -> paho's handle; this thread only
        self._cursor = 0  # highest seq handed to paho in this process
        newest = spool.newest()  # unsent from the last run: the retained state should show it
        self._state: bytes | None = newest.payload if newest else None
        self._state_dirty = self._state is not None
        self._snapshot: bytes | None = None
        self._snapshot_dirty = False
        # the last state handed to paho (after the last snapshot): nothing new until it is acked
        self._state_info: mqtt.MQTTMessageInfo | None = None
        self.snapshots_skipped = 0  # newer snapshots replaced one still waiting (slow link)
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def set_connected(self, connected: bool) -> None:
        with self._lock:
            self._connected = connected
            if connected:  # a broker without persistence may have lost the retained ones
                self._state_dirty = self._state is not None
                self._snapshot_dirty = self._snapshot is not None
                self._state_info = None  # paho resends it, or it was lost with the connection
        self._wake.set()

    def offer(self, state: bytes, snapshot: bytes | None) -> None:
        """The newest reading (and its picture) for the retained ``P/state`` / ``P/snapshot``."""
        with self._lock:
            self._state, self._state_dirty = state, True
            if snapshot is not None:
                self.snapshots_skipped += self._snapshot_dirty
                self._snapshot, self._snapshot_dirty = snapshot, True
        self._wake.set()

    def pending(self) -> bool:
        """Anything not yet acknowledged: spooled readings, in-flight ones, an unsent state."""
        with self._lock:
            dirty = self._state_dirty
        return dirty or bool(self._inflight) or self.spool.depth() > 0

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._delete_acked()  # PUBACKs that came in after the last round

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            try:
                self._pump()
            except SpoolError as exc:
                log.error("%s", exc)
                self._stop.wait(1.0)
            except Exception:
                log.exception("MQTT publisher: unexpected error; retrying")
                self._stop.wait(1.0)

    def _pump(self) -> None:
        self._delete_acked()
        with self._lock:
            if not self._connected:
                return
        self._publish_latest()
        room = self.window - len(self._inflight)
        if room <= 0:
            return
        for msg in self.spool.peek(after=self._cursor, limit=room):
            info = self.client.publish(msg.topic, msg.payload, qos=1)
            if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
                # Not an error for QoS 1: paho keeps the message and sends it on reconnect.
                info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS
            elif info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                log.warning("MQTT: reading %d not queued (%s); will retry", msg.seq, mqtt.error_string(info.rc))
                return
            self._inflight[msg.seq] = info
            self._cursor = msg.seq

    def _delete_acked(self) -> None:
        acked = [seq for seq, info in self._inflight.items() if info.is_published()]
        if not acked:
            return
        self.spool.delete(acked)
        for seq in acked:
            del self._inflight[seq]
        self.sent += len(acked)

    def _publish_latest(self) -> None:
        with self._lock:
            if _waiting(self._state_info):  # the link has not delivered the last pair yet
                return
            snapshot = self._snapshot if self._snapshot_dirty else None
            # The state goes after every snapshot: its PUBACK (TCP keeps order) says that the
            # snapshot before it has reached the broker, not just the kernel's socket buffer.
            state = self._state if self._state_dirty or snapshot is not None else None
            self._state_dirty = self._snapshot_dirty = False
        if snapshot is not None:
            self.client.publish(self.topics.snapshot, snapshot, qos=0, retain=True)
        if state is not None:
            self._state_info = self.client.publish(self.topics.state, state, qos=1, retain=True)

def _waiting(info: mqtt.MQTTMessageInfo | None) -> bool:
    """Still queued in paho (not yet written for QoS 0, not yet acknowledged for QoS 1)."""
    return info is not None and info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not info.is_published()
