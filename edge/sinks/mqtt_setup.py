"""Building the paho client for the MQTT sink: credentials, TLS, and saying why a connect failed.

The password comes from ``mqtt.password_file``, else ``$DIGIT_EDGE_MQTT_PASSWORD``, else
the systemd credential ``$CREDENTIALS_DIRECTORY/mqtt_password``; it is never logged.
Connection problems are described in one line that says which problem it is (wrong
credentials, unknown host, refused, bad certificate, ...) and what to check.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import ConfigError, MqttConfig

log = logging.getLogger(__name__)

ENV_PASSWORD = "DIGIT_EDGE_MQTT_PASSWORD"
CREDENTIAL_NAME = "mqtt_password"
REPEAT_LOG_INTERVAL_S = 600.0


class MqttSetupError(ConfigError):
    """The MQTT section points at something unusable (a missing file, ...); said for people.

    A ConfigError, so the CLI prints it as one line and exits non-zero, like any bad key.
    """


def read_password(cfg: MqttConfig) -> str | None:
    """The broker password, from the first place that has one; None if none does."""
    if cfg.password_file is not None:
        return _read_secret(cfg.password_file, "mqtt.password_file")
    env = os.environ.get(ENV_PASSWORD)
    if env:
        return env
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL_NAME).is_file():
        return _read_secret(Path(creds) / CREDENTIAL_NAME, "systemd credential mqtt_password")
    return None


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MqttSetupError(f"{what} {path}: cannot read it ({exc.strerror})") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise MqttSetupError(f"{what} {path}: the file is empty")
    return secret


def build_client(cfg: MqttConfig, client_id: str) -> mqtt.Client:
    """A configured, not yet connected client (VERSION2 callbacks, MQTT 3.1.1, clean session)."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    client.suppress_exceptions = True  # a bug in a callback must not kill the network thread
    password = read_password(cfg)
    if cfg.username:
        client.username_pw_set(cfg.username, password)
    elif password is not None:
        log.warning("an MQTT password is set but mqtt.username is not; connecting without login")
    if cfg.tls.enabled:
        _set_tls(client, cfg)
    elif cfg.port == 8883:
        log.warning("mqtt.port is 8883 (usually TLS) but mqtt.tls.enabled is false")
    return client


def _set_tls(client: mqtt.Client, cfg: MqttConfig) -> None:
    tls = cfg.tls
    for key, path in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file), ("key_file", tls.key_file)):
        if path is not None and not path.is_file():
            raise MqttSetupError(f"mqtt.tls.{key} {path}: file not found")
    try:
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,  # None = the system's CAs
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        files = ", ".join(str(p) for p in (tls.ca_file, tls.cert_file, tls.key_file) if p)
        raise MqttSetupError(f"mqtt.tls: cannot load the certificates ({files}): {exc}") from None
    if tls.insecure:
        log.warning("mqtt.tls.insecure is true: the broker's host name is not checked")
        client.tls_insecure_set(True)


def describe_connect_error(
    exc: BaseException | None, host: str, port: int, tls: bool = False
) -> tuple[str, str]:
    """(kind, one line for people) for an exception raised while opening the connection."""
    where = f"MQTT broker {host}:{port}"
    if tls and isinstance(exc, ConnectionResetError | ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return "tls-closed", (
            f"{where} closed the connection during the TLS handshake; "
            "is mqtt.port a TLS listener (usually 8883)?"
        )
    if isinstance(exc, socket.gaierror):
        return "dns", f"cannot resolve the {where} host name ({exc.strerror}); check mqtt.host"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls-cert", (
            f"{where}: TLS certificate rejected ({exc.verify_message}); "
            "check mqtt.tls.ca_file and that mqtt.host is a name in the broker's certificate"
        )
    if isinstance(exc, ssl.SSLError):
        return "tls", (
            f"{where}: TLS handshake failed ({exc.reason or exc}); "
            "is this port a TLS listener, and are mqtt.tls.cert_file/key_file accepted?"
        )
    if isinstance(exc, ConnectionRefusedError):
        return "refused", f"{where} refused the connection; is the broker running, and is mqtt.port right?"
    if isinstance(exc, TimeoutError):
        return "timeout", f"{where}: no answer (timed out); check mqtt.host, mqtt.port and the network"
    if isinstance(exc, OSError):
        return f"os-{exc.errno}", f"cannot connect to the {where}: {exc.strerror or exc}"
    return "unknown", f"cannot connect to the {where}: {exc!r}"


def describe_refusal(reason: object, host: str, port: int) -> tuple[str, str]:
    """(kind, one line) for a CONNACK that refused us (wrong credentials, ...)."""
    text = str(reason)
    hint = ""
    if text in ("Not authorized", "Bad user name or password"):
        hint = f"; check mqtt.username and the password (mqtt.password_file or ${ENV_PASSWORD})"
    elif text in ("Client identifier not valid", "Identifier rejected"):
        hint = "; check mqtt.client_id"
    return f"connack-{text}", f"MQTT broker {host}:{port} refused the login: {text}{hint}"


class ProblemLog:
    """Logs a connection problem once when it starts or changes, not on every retry.

    The same problem is repeated at most every ``REPEAT_LOG_INTERVAL_S`` with the number of
    attempts since, so a broker that stays down for a day writes a handful of lines, not
    thousands, and a log reader still sees that it is being retried.
    """

    def __init__(self) -> None:
        self.kind: str | None = None
        self.message = ""
        self.attempts = 0
        self._last_logged = 0.0

    def report(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if kind != self.kind:
            self.kind, self.message, self.attempts, self._last_logged = kind, message, 1, now
            log.warning("%s; retrying with backoff, readings are kept in the spool", message)
            return
        self.attempts += 1
        if now - self._last_logged >= REPEAT_LOG_INTERVAL_S:
            self._last_logged = now
            log.warning("still failing after %d attempts: %s", self.attempts, message)
        else:
            log.debug("connect attempt %d failed: %s", self.attempts, message)

    def clear(self) -> None:
        self.kind, self.message, self.attempts = None, "", 0
