"""A slow link to the broker (10 KB/s, through a throttling TCP proxy on loopback): memory stays
bounded, stale snapshots are dropped, readings get through in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.daemon import DaemonProcess, write_config
from tests.mqtt_broker import HOST, Broker, Subscriber, free_port
from tests.test_mqtt_daemon import demo_frames


class ThrottlingProxy:
    """Forwards 127.0.0.1:port to the broker; client-to-broker bytes at ``rate`` bytes/s at most."""

    def __init__(self, target_port: int, rate: int) -> None:
        self.port = free_port()
        self.rate = rate
        self._target = target_port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("throttling proxy did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._client, HOST, self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # a small window: the kernel must not soak up what the daemon queues
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self._target)
        except OSError:
            writer.close()
            return
        chunk = max(1, self.rate // 20)
        await asyncio.gather(self._pipe(reader, up_writer, chunk, 0.05), self._pipe(up_reader, writer, 65536, 0.0),
                             return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, chunk: int,
                    pause: float) -> None:
        try:
            while data := await reader.read(chunk):
                writer.write(data)
                await writer.drain()
                if pause:
                    await asyncio.sleep(pause)
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_a_10_kb_s_link_keeps_memory_bounded_and_readings_in_order(
    mqtt_broker: Broker, topic_prefix: str, tmp_path: Path
) -> None:
    proxy = ThrottlingProxy(mqtt_broker.port, rate=10_000)
    p = f"{topic_prefix}/dev"
    sub = Subscriber(mqtt_broker, [f"{p}/reading", f"{p}/snapshot"])  # straight to the broker: fast
    cfg = write_config(
        tmp_path / "c.yaml", state_dir=tmp_path / "state", fps=4,
        mqtt=f"mqtt:\n  host: {HOST}\n  port: {proxy.port}\n  topic_prefix: {topic_prefix}\n"
        "  device_id: dev\n  keepalive_s: 60\n  homeassistant: {enabled: false}\n",
    )
    daemon = DaemonProcess(cfg, "--source", f"dir:{demo_frames(tmp_path / 'img', 150)}")  # 37 s of readings
    samples: list[float] = []
    try:
        daemon.wait_readings(8)  # past start-up: the model, the first snapshots
        for _ in range(25):  # 4 readings/s, each with a ~12 KB snapshot: 5x what the link carries
            samples.append(rss_mb(daemon.proc.pid))
            time.sleep(1.0)
            if daemon.proc.poll() is not None:
                break
        checked_at = time.time()
        got_then = {int(json.loads(m.payload)["seq"]) for m in sub.on(f"{p}/reading")}
        code = daemon.wait(120)
    finally:
        daemon.kill()
        proxy.close()
    err = daemon.stderr()
    assert code == 0, err
    assert len(samples) >= 10, err
    growth = max(samples) - samples[0]
    assert growth < 15, (samples, err)  # without a bound paho piles up every snapshot: ~300 KB/s
    printed = [int(r["seq"]) for r in daemon.readings()]  # type: ignore[call-overload]
    got: list[int] = []
    for m in sub.on(f"{p}/reading"):
        seq = int(json.loads(m.payload)["seq"])
        if seq not in got:
            got.append(seq)
    sub.close()
    assert got, "no reading got through the slow link"
    assert got == sorted(got) and got == printed[: len(got)], got  # in order, none skipped
    # Readings are not stuck behind a pile of old snapshots: what was printed 10 s before had
    # reached the broker (queued snapshots would delay them by minutes: ~40 KB/s more than fits).
    due = [int(r["seq"]) for r in daemon.readings()  # type: ignore[call-overload]
           if datetime.strptime(str(r["ts"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
           < checked_at - 10]
    assert due and max(got_then) >= max(due), (max(got_then), max(due))
