"""The doctor's checks of the outside world: camera, broker, state directory, video devices.

Each check returns the text of its ✓ line or raises ``Failed`` with what is wrong and the
fix. They use the daemon's own code (``open_source``, the MQTT client builder), so a pass
means the daemon gets past the same step.
"""

from __future__ import annotations

import grp
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from edge.config import Config
from edge.types import Frame

CAMERA_OPEN_TIMEOUT_S = 20.0
FPS_SAMPLE_S = 1.0
BROKER_TIMEOUT_S = 5.0
MIN_FREE_BYTES = 50 * 1024 * 1024


class Failed(Exception):
    """A check's failure: the message and the fix."""

    def __init__(self, text: str, fix: str) -> None:
        super().__init__(text)
        self.text, self.fix = text, fix


def check_source(cfg: Config) -> str:
    from edge.sources import FrameSource, SourceError, SourceExhausted, open_source

    spec = cfg.source
    opened: list[FrameSource] = []
    errors: list[Exception] = []

    def opener() -> None:
        try:
            opened.append(open_source(spec, cfg))
        except Exception as exc:
            errors.append(exc)

    # A hung camera driver can block in open; the doctor must still finish.
    thread = threading.Thread(target=opener, name="doctor-open", daemon=True)
    thread.start()
    thread.join(CAMERA_OPEN_TIMEOUT_S)
    fix = source_fix(spec)
    if thread.is_alive():
        raise Failed(f"{spec} did not open within {CAMERA_OPEN_TIMEOUT_S:.0f} s (hung driver?)", fix)
    if errors:
        error = errors[0]
        raise Failed(str(error) if isinstance(error, SourceError) else f"{spec}: {error!r}", fix)
    source = opened[0]
    try:
        wait = max(cfg.camera.stall_timeout_s, 5.0)
        frames: list[Frame] = []
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and len(frames) < 30:
            try:
                frame = source.read(timeout=1.0)
            except SourceExhausted:
                break
            if frame is not None:
                frames.append(frame)
                if len(frames) == 1:  # then sample the frame rate for a moment
                    deadline = time.monotonic() + FPS_SAMPLE_S
        if not frames:
            raise Failed(f"{source.describe()} opened but delivered no frame within {wait:.0f} s", fix)
        h, w = frames[0].image.shape[:2]
        span = frames[-1].ts - frames[0].ts
        rate = f", {(len(frames) - 1) / span:.1f} frames/s" if len(frames) > 2 and span > 0 else ""
        return f"{source.describe()} delivers {w}x{h} frames{rate}"
    finally:
        source.close()


def source_fix(spec: str) -> str:
    if spec.startswith("usb:"):
        return ("check the cable and `ls /dev/video*` (`v4l2-ctl --list-devices` names them); "
                "set `source:` to the right usb:N")
    if spec.startswith("picamera"):
        return ("check `rpicam-hello --list-cameras` (libcamera-hello on older OS), the ribbon cable, "
                "and that no other program holds the camera")
    if spec.startswith(("file:", "dir:", "video:")):
        return "check that the path in `source:` exists and is readable by this user"
    if "://" in spec:
        return "check the URL, the network, and the stream's user name/password"
    return "set `source:` to demo, usb:N, picamera[:N], file:, dir:, video: or a stream URL"


def check_broker(cfg: Config) -> str:
    if not cfg.mqtt.enabled:
        return "MQTT is disabled in the config (mqtt.enabled: false): not checked"
    from edge.sinks.mqtt_setup import MqttSetupError, build_client, describe_connect_error, describe_refusal

    m = cfg.mqtt
    fix = ("check mqtt.host/port, that the broker runs (`mosquitto_sub -h HOST -p PORT -t '#' -v` "
           "with the same user and TLS options) and the firewall")
    try:
        client = build_client(m, f"digit-edge-doctor-{os.getpid()}")
    except MqttSetupError as exc:
        raise Failed(str(exc), "fix the file named in the mqtt section") from None
    done = threading.Event()
    outcome: dict[str, object] = {}

    def on_connect(_c: object, _u: object, _f: object, reason: object, _p: object) -> None:
        outcome["reason"] = reason
        done.set()

    client.on_connect = on_connect
    client.connect_timeout = BROKER_TIMEOUT_S
    try:
        client.connect(m.host, m.port, keepalive=m.keepalive_s)
    except (OSError, ValueError) as exc:
        raise Failed(describe_connect_error(exc, m.host, m.port)[1], fix) from None
    client.loop_start()
    try:
        if not done.wait(BROKER_TIMEOUT_S):
            raise Failed(f"MQTT broker {m.host}:{m.port}: connected but no CONNACK within "
                         f"{BROKER_TIMEOUT_S:.0f} s (is this an MQTT port?)", fix)
        reason = outcome["reason"]
        if getattr(reason, "is_failure", False):
            raise Failed(describe_refusal(reason, m.host, m.port)[1],
                         "set mqtt.username and the password (mqtt.password_file or "
                         "$DIGIT_EDGE_MQTT_PASSWORD) to an account the broker accepts")
    finally:
        client.disconnect()
        client.loop_stop()
    login = f" as {m.username}" if m.username else " without login"
    return f"{m.host}:{m.port} accepted the connection{login}{' over TLS' if m.tls.enabled else ''}"


def check_state_dir(path: Path) -> str:
    fix = ("set `state_dir:` to a directory this user can write, or create it: "
           f"sudo install -d -o $(id -un) -m 0700 {path}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".doctor-", dir=path)
        try:
            os.write(fd, b"digit-edge doctor write test\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise Failed(f"{path}: cannot write there ({exc.strerror})", fix) from None
    from edge.state import DB_NAME

    db = path / DB_NAME
    for part in (db, db.with_name(DB_NAME + "-wal"), db.with_name(DB_NAME + "-shm")):
        if part.exists() and not os.access(part, os.R_OK | os.W_OK):
            raise Failed(f"{part}: not writable by this user", f"sudo chown -R $(id -un) {path}")
    free = shutil.disk_usage(path).free
    if free < MIN_FREE_BYTES:
        raise Failed(f"{path}: only {free / 1e6:.0f} MB free", "free some disk space")
    state = "database present" if db.exists() else "no database yet"
    return f"{path} is writable ({state}, {free / 1e9:.1f} GB free)"


def check_video_access(spec: str) -> str:
    if spec.startswith("usb:"):
        devices = [Path(f"/dev/video{spec[4:]}")]
    elif spec.startswith("picamera"):
        dev = Path("/dev")
        devices = sorted([*dev.glob("video*"), *dev.glob("media*"), *dev.glob("dma_heap/*")])
    else:
        return f"not needed for source {spec}"
    fix = ("sudo usermod -aG video $(id -un), then log in again "
           "(the service gets the group from SupplementaryGroups=video)")
    if not devices or not devices[0].exists():
        raise Failed(f"no camera device ({devices[0] if devices else '/dev/video*'} missing)",
                     "connect/enable the camera, then check `ls /dev/video*`")
    denied = [str(d) for d in devices if not os.access(d, os.R_OK | os.W_OK)]
    try:
        video_gid = grp.getgrnam("video").gr_gid
    except KeyError:
        video_gid = None
    in_group = video_gid is not None and (video_gid in os.getgroups() or video_gid == os.getegid())
    if denied:
        raise Failed(f"no read/write access to {', '.join(denied)} "
                     f"({'in' if in_group else 'not in'} group video)", fix)
    shown = ", ".join(str(d) for d in devices[:4]) + (" …" if len(devices) > 4 else "")
    return f"read/write access to {shown}{' (group video)' if in_group else ''}"
