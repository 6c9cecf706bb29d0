"""The portal's HTTP server: uvicorn, in the server's own asyncio loop.

The socket is bound here first, so a port in use stops the start with our words (uvicorn would
exit the process). uvicorn's own signal handling is left out: ``sipvm serve`` stops everything
in order on SIGTERM, the portal first. Its access log is off; ``sipvm.web.access`` writes one
debug line per request instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from sipvm.errors import PortInUseError

log = logging.getLogger(__name__)

#: How long open requests and event streams get to finish when the server stops.
GRACE_S = 3


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers (``sipvm serve`` owns SIGTERM and SIGINT)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def portal_url(host: str, port: int) -> str:
    """The portal's address as a browser would be given it."""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"http://[{host}]:{port}/" if is_v6 else f"http://{host}:{port}/"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; PortInUseError when it is taken."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    # IPPROTO_TCP named: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say so;
    # with Nagle on, a response written in two parts waits ~40 ms for the client's ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"HTTP port {port} on {host} is in use by another process; choose another "
                "with --http-port or [http] port"
            ) from exc
        raise PortInUseError(
            f"cannot listen for HTTP on {host}:{port}: {exc.strerror}; "
            "check [http] bind and --http-port"
        ) from exc
    sock.listen(128)
    sock.setblocking(False)
    return sock


class HttpServer:
    """A running portal; ``await stop()`` ends it."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], url: str) -> None:
        self._server = server
        self._task = task
        self.url = url

    async def stop(self) -> None:
        """Stop taking requests; open ones get ``GRACE_S`` to finish."""
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def start_http(
    web: FastAPI, host: str, port: int, *, proxies: tuple[str, ...] = ()
) -> HttpServer:
    """Serve ``web`` on ``host:port`` until ``stop()``; returns once it listens.

    ``proxies``: the addresses whose ``X-Forwarded-For``/``-Proto`` headers are believed."""
    sock = bind_socket(host, port)
    # uvicorn's start and stop lines say what "portal: URL" says; its warnings still show.
    uvicorn_log = logging.getLogger("uvicorn.error")
    if uvicorn_log.level == logging.NOTSET:
        uvicorn_log.setLevel(logging.WARNING)
    config = uvicorn.Config(
        web,
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=list(proxies) if proxies else None,
        timeout_graceful_shutdown=GRACE_S,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise PortInUseError(f"the HTTP server on {host}:{port} did not start")
        await asyncio.sleep(0.01)
    return HttpServer(server, task, portal_url(host, port))
