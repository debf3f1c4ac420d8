"""The endpoints. Each reads LiveView when asked; none of them can block the frame loop."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from edge.config import ConfigError
from edge.http.auth import Handler
from edge.http.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from edge.http.state import health, status

if TYPE_CHECKING:
    from edge.http.server import HttpServer

log = logging.getLogger(__name__)

BOUNDARY = "frame"
ENDPOINTS = "/, /stream.mjpg, /snapshot.jpg, /api/reading, /api/status, /api/history, /healthz, /metrics"
NO_STORE = {"Cache-Control": "no-store"}
WRITE_TIMEOUT_S = 10.0  # an MJPEG part the viewer does not take in this time ends its stream
PAGE_HEADERS = {
    **NO_STORE,
    "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "img-src 'self' blob:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class Handlers:
    def __init__(self, server: HttpServer, fps: float, stall_timeout_s: float) -> None:
        self.server = server
        self.live = server.live
        self.fps = fps
        self.stall_timeout_s = stall_timeout_s

    @web.middleware
    async def not_found_middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return web.Response(status=404, text=f"404: no page {request.path}; there are: {ENDPOINTS}\n")

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=self.server.page, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)

    async def snapshot(self, request: web.Request) -> web.Response:
        jpeg = await self.server.jpeg()
        if jpeg is None:
            return web.Response(status=503, text=f"503: no frame yet: {self._waiting_for()}\n", headers=NO_STORE)
        return web.Response(body=jpeg, content_type="image/jpeg", headers=NO_STORE)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """MJPEG: a new part whenever there is a newer JPEG, until the client or the daemon goes."""
        response = web.StreamResponse(headers={
            **NO_STORE,
            "Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}",
            "X-Content-Type-Options": "nosniff",
        })
        if request.method == "HEAD":
            await response.prepare(request)
            return response
        server = self.server
        interval = min(0.1, 1.0 / server.config.stream_fps)
        server.viewers += 1
        try:
            await response.prepare(request)
            last: bytes | None = None
            while not server.closing.is_set():
                jpeg = await server.jpeg()
                if jpeg is not None and jpeg is not last:
                    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                    await asyncio.wait_for(response.write(head.encode() + jpeg + b"\r\n"), WRITE_TIMEOUT_S)
                    last = jpeg
                await asyncio.sleep(interval)
        except ConnectionError:  # the viewer went away mid-stream: nothing to report
            log.debug("MJPEG viewer %s left", request.remote)
        except TimeoutError:  # a viewer that does not read holds memory and a connection: let it go
            log.info("MJPEG viewer %s did not read for %.0f s; stream ended", request.remote, WRITE_TIMEOUT_S)
            if request.transport is not None:
                request.transport.abort()
        finally:
            server.viewers -= 1
        return response

    async def reading(self, request: web.Request) -> web.Response:
        with self.live.lock:
            reading = self.live.reading
        if reading is None:
            return _json({"error": "no stable reading yet", "waiting_for": self._waiting_for()}, status=404)
        return _json(reading.to_json())

    async def history(self, request: web.Request) -> web.Response:
        """``?field=NAME&since=WHEN``: the field's accepted values, oldest first."""
        from edge.field_store import parse_since
        from edge.types import utc_timestamp

        fields = self.live.fields
        names = [f.name for f in fields.tracker.fields] if fields is not None else []
        name = request.query.get("field", "")
        if name not in names:
            return _json({"error": f"field={name!r}: no such field", "fields": names}, status=400)
        try:
            since = parse_since(request.query["since"]) if request.query.get("since") else None
        except ValueError as exc:
            return _json({"error": str(exc)}, status=400)
        rows = await asyncio.to_thread(fields.store.rows, name, since)
        return _json({"field": name, "values": [
            {"ts": utc_timestamp(r.ts), "value": r.value, "number": r.number} for r in rows]})

    async def save_field(self, request: web.Request) -> web.Response:
        """``POST {name, format, region}`` (region in fractions of the picture): validate, write
        the config (comments kept), reload. 409 with the YAML when the file cannot be written."""
        from edge.config_edit import NotWritten, save_field

        if self.server.auth is None and not self.server.loopback:
            return _json({"error": "set http.password_file to edit fields from the page"}, status=403)
        try:
            body = await request.json()
            field, anchor = self._field_from_page(body)
        except (ValueError, TypeError, KeyError) as exc:
            return _json({"error": f"bad request: {exc}"}, status=400)
        path = self.live.config_path
        try:
            await asyncio.to_thread(save_field, path, field)
        except NotWritten as exc:
            return _json({"error": str(exc), "yaml": exc.yaml}, status=409)
        except ConfigError as exc:
            return _json({"error": str(exc)}, status=400)
        log.info("http: field %s saved to %s from the live page; reloading", field["name"], path)
        if self.live.reload is not None:
            self.live.reload()
        return _json({"saved": str(path), "field": field, "anchor": anchor})

    def _field_from_page(self, body: Any) -> tuple[dict[str, Any], str]:
        """The field's config entry; a rectangle drawn on the picture goes to sheet fractions
        when the sheet is in view (so it follows the paper), else stays in frame fractions."""
        name, fmt, rect = str(body["name"]), body.get("format") or None, [float(v) for v in body["region"]]
        if len(rect) != 4:
            raise ValueError("region must be [x, y, width, height]")
        with self.live.lock:
            result = self.live.result
        anchor = "frame"
        if result is not None and result.sheet is not None and result.size[0] > 0:
            import numpy as np

            from edge.types import Box

            w, h = result.size
            x, y, rw, rh = rect
            box = Box(round(x * w), round(y * h), max(1, round(rw * w)), max(1, round(rh * h)))
            sx, sy, sw, sh = result.sheet.box_in_sheet(box)
            x0, y0 = float(np.clip(sx, 0, 1)), float(np.clip(sy, 0, 1))
            rect = [x0, y0, min(sx + sw, 1.0) - x0, min(sy + sh, 1.0) - y0]
            anchor = "sheet"
        return {"name": name, "region": rect, "format": fmt}, anchor

    async def status(self, request: web.Request) -> web.Response:
        body = status(self.live, self.fps, self.stall_timeout_s, self.server.viewers)
        body["stream_fps"] = self.server.config.stream_fps
        return _json(body)

    async def healthz(self, request: web.Request) -> web.Response:
        # Open without the password: the reason must not show the source (a camera URL).
        h = health(self.live, self.fps, self.stall_timeout_s, where=False)
        return web.Response(status=200 if h.ok else 503, text=f"{h.reason}\n", headers=NO_STORE)

    async def metrics(self, request: web.Request) -> web.Response:
        body = self.server.metrics.render()
        return web.Response(body=body, headers={**NO_STORE, "Content-Type": METRICS_CONTENT_TYPE})

    def _waiting_for(self) -> str:
        source = self.live.source
        if source is None:
            return "the source is not open yet"
        return f"source {source.describe()} is {source.state}"


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(body, separators=(",", ":")), content_type="application/json", headers=NO_STORE
    )
