"""Optional HTTP basic auth (user ``admin``) with the password read from a file.

The password is read once at start, never logged, and compared in constant time.
``/healthz`` stays open so a monitor can probe the daemon without the password: it says
only "ok" or why not (no picture, no values).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from edge.config import ConfigError

log = logging.getLogger(__name__)

USER = "admin"
REALM = "digit-edge"
OPEN_PATHS = ("/healthz",)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_password(path: Path) -> str:
    """The first line of ``path``; ConfigError naming the file if it is missing, unreadable or empty."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"http -> password_file: {path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"http -> password_file: {path}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"http -> password_file: {path}: not UTF-8 text") from None
    lines = text.splitlines()
    password = lines[0] if lines else ""
    if not password:
        raise ConfigError(f"http -> password_file: {path}: the file is empty; put the password on its first line")
    return password


class BasicAuth:
    def __init__(self, password: str) -> None:
        self._expected_user = USER.encode()
        self._expected_password = password.encode()

    def check(self, header: str | None) -> bool:
        """True if ``header`` is ``Basic base64(admin:<password>)``; constant time in the secret."""
        if not header:
            return False
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(user, self._expected_user)
        password_ok = hmac.compare_digest(password, self._expected_password)
        return bool(sep) and user_ok and password_ok

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or self.check(request.headers.get("Authorization")):
            return await handler(request)
        if request.headers.get("Authorization"):
            log.warning("http: wrong user or password from %s for %s", request.remote, request.path)
        raise web.HTTPUnauthorized(
            text="401: this live view needs a user name (admin) and password\n",
            headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
        )
