"""Outputs: where readings go (console, MQTT, snapshots). Each is a ``Sink``."""
