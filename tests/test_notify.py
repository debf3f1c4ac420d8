"""sd_notify against a real unix datagram socket, as systemd listens for it."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.notify import Notifier
from tests.daemon import DIGIT_EDGE, DaemonProcess, write_config
from tests.imaging import draw_number, paper, save
from tests.source_helpers import PausableCamera
from tests.test_mqtt_daemon import demo_frames

# Each test process is short; a generous receive timeout only matters when something is broken.
RECV_TIMEOUT_S = 20.0
NOTIFIER = "from edge.notify import Notifier\nn = Notifier()\n"  # what each script run here starts with


class NotifySocket:
    """The service manager's end: a bound datagram socket collecting what arrives."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.env_value = "@" + address[1:] if address.startswith("\0") else address

    def receive(self, timeout: float = RECV_TIMEOUT_S) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except TimeoutError:
            return None

    def receive_until(self, line: str, timeout: float = RECV_TIMEOUT_S) -> list[str]:
        """Every message up to and including the first that contains ``line``."""
        messages: list[str] = []
        while True:
            msg = self.receive(timeout)
            if msg is None:
                raise AssertionError(f"{line!r} never arrived; got {messages}")
            messages.append(msg)
            if line in msg.split("\n"):
                return messages

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    sock = NotifySocket(str(tmp_path / "notify"))
    yield sock
    sock.close()


def environ(*drop: str, **add: str) -> dict[str, str]:
    """This process's environment without ``drop`` (in case pytest runs under systemd), plus ``add``."""
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **add}


def run_notifier(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", NOTIFIER + script], capture_output=True, text=True, timeout=60,
                          env=environ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", **env), check=True)


def test_ready_status_watchdog_and_stopping_arrive_from_a_real_process(notify_socket: NotifySocket) -> None:
    script = (
        "n.status('loading model')\n"
        "n.status('opening source usb:0')\n"
        "assert n.watchdog_interval() == 30.0\n"
        "n.watchdog()\n"
        "n.ready()\n"
        "for _ in range(1000):\n"
        "    n.watchdog()  # every frame: throttled to one ping per interval/3\n"
        "n.stopping('stopping: flushing readings')\n"
    )
    run_notifier(script, {"NOTIFY_SOCKET": notify_socket.env_value, "WATCHDOG_USEC": "30000000"})
    messages = notify_socket.receive_until("STOPPING=1")
    assert messages == [
        "STATUS=loading model",
        "STATUS=opening source usb:0",
        "WATCHDOG=1",
        "READY=1",
        "STOPPING=1\nSTATUS=stopping: flushing readings",
    ]


def test_abstract_namespace_socket(tmp_path: Path) -> None:
    sock = NotifySocket(f"\0digit-edge-test-{uuid.uuid4().hex}")
    try:
        run_notifier("n.ready('reading digits')\n", {"NOTIFY_SOCKET": sock.env_value})
        assert sock.env_value.startswith("@")
        assert sock.receive() == "READY=1\nSTATUS=reading digits"
    finally:
        sock.close()


def test_status_is_one_line_and_reload_carries_the_monotonic_time(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.env_value})
    assert notifier.status("camera\nstalled:   reopening")
    assert notify_socket.receive() == "STATUS=camera stalled: reopening"
    assert notifier.reloading()
    lines = (notify_socket.receive() or "").split("\n")
    assert lines[0] == "RELOADING=1"
    assert lines[1].startswith("MONOTONIC_USEC=") and int(lines[1].split("=")[1]) > 0
    notifier.close()


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_interval() is None
    assert not notifier.ready()
    assert not notifier.status("x")
    assert not notifier.watchdog(force=True)
    assert not notifier.stopping()


def test_watchdog_interval_comes_from_the_environment() -> None:
    sock = {"NOTIFY_SOCKET": "/run/systemd/notify"}
    assert Notifier({**sock, "WATCHDOG_USEC": "30000000"}).watchdog_interval() == 30.0
    mine = {"WATCHDOG_USEC": "2500000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier({**sock, **mine}).watchdog_interval() == 2.5
    # Meant for another process (we were started by a child of the service's main process).
    assert Notifier({**sock, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval() is None
    assert Notifier({**sock, "WATCHDOG_USEC": "soon"}).watchdog_interval() is None
    assert Notifier({**sock, "WATCHDOG_USEC": "0"}).watchdog_interval() is None


def test_watchdog_is_not_sent_when_systemd_did_not_ask_for_one(notify_socket: NotifySocket) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": notify_socket.env_value})
    assert not notifier.watchdog()
    notifier.ready()
    assert notify_socket.receive() == "READY=1"
    notifier.close()


def test_an_unreachable_socket_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens"), "WATCHDOG_USEC": "3000000"})
    with caplog.at_level(logging.WARNING, logger="edge.notify"):
        assert not notifier.ready()
        assert not notifier.status("still here")
        assert not notifier.watchdog(force=True)
    warnings = [r for r in caplog.records if r.name == "edge.notify"]
    assert len(warnings) == 1
    assert "nobody-listens" in warnings[0].getMessage()
    notifier.close()


def test_a_relative_notify_socket_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="edge.notify"):
        notifier = Notifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not notifier.enabled
    assert "vsock:2:1234" in caplog.text


def test_pings_stop_while_the_frame_loop_hangs_and_resume_after(notify_socket: NotifySocket) -> None:
    """A frame loop that blocks (here: on its input pipe) sends nothing; systemd would restart it."""
    script = (
        "import sys\n"
        "n.ready()\n"
        "for line in sys.stdin:  # one line = one frame; an idle pipe = a hung camera read\n"
        "    n.watchdog()\n"
        "n.stopping()\n"
    )
    env = environ("WATCHDOG_PID", NOTIFY_SOCKET=notify_socket.env_value, WATCHDOG_USEC="300000")  # 0.3 s
    proc = subprocess.Popen([sys.executable, "-c", NOTIFIER + script], env=env, stdin=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    try:
        assert notify_socket.receive() == "READY=1"
        proc.stdin.write("frame\n")
        proc.stdin.flush()
        assert notify_socket.receive() == "WATCHDOG=1"
        # The loop now blocks on its next read: five watchdog intervals pass in silence.
        assert notify_socket.receive(timeout=1.5) is None
        proc.stdin.write("frame\n")  # the "camera" delivers again
        proc.stdin.flush()
        assert notify_socket.receive() == "WATCHDOG=1"
        proc.stdin.close()
        assert notify_socket.receive() == "STOPPING=1"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


# ---- the real daemon ------------------------------------------------------------------------

QUIET_S = 2.5  # 2.5 watchdog intervals (7 ping periods) without a message = the pings stopped


def test_daemon_watchdog_pings_stop_while_its_frame_loop_hangs(notify_socket: NotifySocket, tmp_path: Path) -> None:
    """`digit-edge run` whose stdout nobody reads: the frame loop hangs writing a reading.

    A FIFO among the images no longer hangs it (image files are checked before they are opened)
    and a stalled camera does not either (reads time out: the next test), so the hang here is
    the one a stuck journal or a full pipe causes: the console sink's write blocks in the frame
    loop's own thread. The daemon says READY, pings, then goes silent — under systemd
    WatchdogSec= would now restart it — and pings again once the pipe is read, losing nothing.
    """
    frames = demo_frames(tmp_path / "frames", 40)  # a new value on each: one reading per frame
    config = write_config(tmp_path / "config.yaml", state_dir=tmp_path / "state")
    env = environ("WATCHDOG_PID", "JOURNAL_STREAM", NOTIFY_SOCKET=notify_socket.env_value, WATCHDOG_USEC="1000000")
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # the smallest pipe: a few readings fill it
    with (tmp_path / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen([DIGIT_EDGE, "run", "--config", str(config), "--output", "json",
                                 "--source", f"dir:{frames}"], stdout=write_end, stderr=err, env=env)
    os.close(write_end)
    printed: list[bytes] = []
    reader = threading.Thread(target=lambda: printed.append(_read_all(read_end)), daemon=True)
    try:
        before = notify_socket.receive_until("READY=1", timeout=60)
        assert before[0] == "STATUS=loading model"
        assert "WATCHDOG=1" in before
        # The pipe fills after a few readings and the next write blocks: wait for the silence.
        for _ in range(100):
            if notify_socket.receive(timeout=QUIET_S) is None:
                break
        else:
            raise AssertionError("the daemon kept notifying while its frame loop was blocked")
        assert proc.poll() is None  # hung, not dead
        reader.start()  # the "journal" reads again: the write returns, the loop goes on
        after = notify_socket.receive_until("STOPPING=1", timeout=60)
        assert after[0] == "WATCHDOG=1", after  # the loop runs again: pings resume
        assert proc.wait(60) == 0, (tmp_path / "stderr.txt").read_text()
        reader.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if not reader.is_alive():
            os.close(read_end)
    seqs = [json.loads(line)["seq"] for line in b"".join(printed).decode().splitlines()]
    assert len(seqs) > 5 and seqs == list(range(seqs[0], seqs[0] + 40)), seqs  # every reading, in order


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_daemon_watchdog_keeps_pinging_while_the_camera_stalls(notify_socket: NotifySocket, tmp_path: Path) -> None:
    """What the design guarantees when the camera stalls (an MJPEG camera that stops sending):
    the frame loop does not hang on it — a read waits at most 1 s and the camera thread reopens
    the camera by itself — so the pings go on and systemd does not restart a daemon that is
    recovering; STATUS says it waits for frames and why, then that it reads digits again."""
    canvas = paper(640, 480, seed=3)
    draw_number(canvas, "42", 200, 180, 90, seed=4)
    camera = PausableCamera(save(tmp_path / "frame.jpg", canvas).read_bytes())
    config = write_config(tmp_path / "config.yaml", "camera: {stall_timeout_s: 1, reopen_backoff_max_s: 1}",
                          state_dir=tmp_path / "state", fps=10)
    env = environ("WATCHDOG_PID", "JOURNAL_STREAM", NOTIFY_SOCKET=notify_socket.env_value, WATCHDOG_USEC="3000000")
    daemon = DaemonProcess(config, "--source", camera.url, env=env)
    try:
        notify_socket.receive_until("READY=1", timeout=60)
        camera.flowing.clear()
        stalled = receive_until(notify_socket, lambda m: m.startswith("STATUS=waiting for frames from")
                                and m.endswith("(reopening)"))  # the camera thread has given up on it
        assert "cam.mjpg" in stalled[-1]
        pings = 0
        while pings < 3:  # the loop keeps going round while the camera stays stalled
            msg = receive_until(notify_socket, lambda m: m == "WATCHDOG=1" or m.startswith("STATUS="))[-1]
            assert not msg.startswith("STATUS=reading digits"), msg
            pings += msg == "WATCHDOG=1"
        assert daemon.proc.poll() is None
        camera.flowing.set()
        receive_until(notify_socket, lambda m: m.startswith("STATUS=reading digits from"))
        daemon.proc.send_signal(signal.SIGTERM)
        notify_socket.receive_until("STOPPING=1", timeout=60)
        assert daemon.wait(60) == 0, daemon.stderr()
    finally:
        daemon.kill()
        camera.close()


def receive_until(sock: NotifySocket, match: Callable[[str], bool], bound_s: float = 60.0) -> list[str]:
    """Every message up to and including the first that ``match`` accepts (within a generous
    bound: other messages, pings, keep coming meanwhile)."""
    messages: list[str] = []
    deadline = time.monotonic() + bound_s
    while True:
        msg = sock.receive() if time.monotonic() < deadline else None
        if msg is None:
            raise AssertionError(f"no such message came; got {messages[-10:]}")
        messages.append(msg)
        if match(msg):
            return messages


def test_daemon_reload_says_reloading_then_ready_and_stop_says_stopping(
    notify_socket: NotifySocket, tmp_path: Path
) -> None:
    """SIGHUP (systemctl reload): RELOADING=1, then READY=1 once frames flow again — never
    STOPPING=1, which systemd takes as the start of a shutdown (it would SIGKILL the daemon
    TimeoutStopSec later). SIGTERM: STOPPING=1 and exit 0."""
    config = write_config(tmp_path / "config.yaml", source="demo", state_dir=tmp_path / "state")
    daemon = DaemonProcess(config, env=environ("WATCHDOG_PID", "WATCHDOG_USEC", NOTIFY_SOCKET=notify_socket.env_value))
    try:
        notify_socket.receive_until("READY=1", timeout=60)
        daemon.proc.send_signal(signal.SIGHUP)
        during = notify_socket.receive_until("READY=1", timeout=60)
        lines = [line for msg in during for line in msg.split("\n")]
        assert "RELOADING=1" in lines
        assert "STOPPING=1" not in lines, during
        assert lines.index("RELOADING=1") < len(lines) - 1  # READY=1 came after it
        daemon.proc.send_signal(signal.SIGTERM)
        notify_socket.receive_until("STOPPING=1", timeout=60)
        assert daemon.wait(60) == 0, daemon.stderr()
    finally:
        daemon.kill()
