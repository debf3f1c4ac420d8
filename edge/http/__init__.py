"""The optional live view, health and metrics server (``http:`` in the config).

Imported only when ``http.enabled`` is true, so a daemon without it never loads aiohttp.
"""

from edge.http.server import HttpError, HttpServer

__all__ = ["HttpError", "HttpServer"]
