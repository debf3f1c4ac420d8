"""A throttling TCP proxy on loopback: a slow link to the broker (e.g. 10 KB/s) made here.

The daemon connects to the proxy as if it were the broker; what it sends reaches the broker
at ``rate`` bytes/s at most, through a small receive window so the kernel does not soak up
what the daemon queues (the daemon must feel the slowness, as over a weak Wi-Fi link).
Replies from the broker pass at full speed. Used by ``digit-edge bench --faults`` and by
tests/test_mqtt_slow_link.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading

from edge.bench.broker import HOST, free_port


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
        try:
            await asyncio.gather(self._pipe(reader, up_writer, chunk, 0.05),
                                 self._pipe(up_reader, writer, 65536, 0.0), return_exceptions=True)
        except asyncio.CancelledError:
            # close(): end quietly (a cancelled connection task makes Python 3.11's
            # start_server callback print a CancelledError traceback)
            for w in (writer, up_writer):
                w.close()

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
