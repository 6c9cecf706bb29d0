"""Headers every response carries, and the access log (debug level only).

- ``Content-Security-Policy``: everything from this origin only (no inline script, no
  framing), ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``.
- Caching: audio is ``private, no-store`` (a shared cache must never keep a voicemail); any
  other response that set no ``Cache-Control`` of its own is ``no-store`` (pages and JSON hold
  members' messages), except static files, which keep the validators Starlette gives them.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("sipvm.web.access")

CSP = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
    "object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
AUDIO_CACHE = "private, no-store"
STATIC_PREFIX = "/static/"


class SecurityHeaders:
    """ASGI middleware: the headers above on every HTTP response; one debug line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope.get("path", "")
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("audio/"):
                    headers["Cache-Control"] = AUDIO_CACHE
                elif not path.startswith(STATIC_PREFIX):
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if log.isEnabledFor(logging.DEBUG):
                client = scope.get("client") or ("-", 0)
                log.debug(
                    "%s %s %s %d %.1f ms",
                    client[0],
                    scope.get("method", "-"),
                    path,
                    status,
                    (time.perf_counter() - started) * 1000,
                )
