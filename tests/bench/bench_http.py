"""Benchmark: the portal over real HTTP — listings, a message page of a 100,000-message inbox,
and how fast a change reaches 100 open pages (server-sent events).

Prints figures and compares them with the targets; it asserts nothing about speed:

    python tests/bench/bench_http.py [--messages 100000] [--pages 100] [--requests 500]
                                     [--streams 100] [--changes 5]

A real ``sipvm serve --http-port`` runs on loopback with the example directory
(provisioning/examples/small-office.toml); the call queue 2001 (Sales) is filled with
``--messages`` messages by direct SQL inserts into the store (as bench_listings.py does: the
deposit path fsyncs every message, which is not what is measured here; the counts triggers run
as in production). Alice (1001, an admin: she sees every queue) signs in over HTTP and one
keep-alive httpx client sends each request in turn, after a warm-up:

1. ``GET /api/v1/inboxes`` — the inbox list with its counts.
2. ``GET /api/v1/inboxes/2001/messages`` — 50 messages: the first page, and pages spread over the
   whole inbox (``--pages`` positions from the first to the last, visited in turn).
3. The portal's HTML page of that inbox, when the server has it.

Then ``--streams`` pages stay open on ``GET /api/v1/events`` at once (one asyncio loop, httpx
streaming). Another process's worth of store (``App.open`` on the server's data directory, as the
``sipvm`` command would) marks a message played, then new, ``--changes`` times; each stream's
delay from the start of the change to its event is one sample. Rounds are spaced by a random part
of a second (seeded) so changes fall at every phase of the server's poll of the audit log.

The server's resident memory (VmRSS, and its peak VmHWM) is read from /proc after the store is
filled, after the requests and with the streams open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: make the tests package importable

import httpx  # noqa: E402

from sipvm.app import App  # noqa: E402
from tests.bench.bench_listings import fill  # noqa: E402
from tests.e2e.conftest import SERVER_HOST, Server, start_server  # noqa: E402
from tests.support.ports import free_ports  # noqa: E402

INBOX = "2001"
"""The call queue that holds the messages (Sales in the example directory)."""
MEMBER, PIN = "1001", "482916"
"""Alice Smith: an admin in the example directory, so she sees every queue."""
PAGE = 50
"""Messages per page."""
LISTING_TARGET_MS = 20.0
"""p99 target for the API listings."""
FANOUT_TARGET_S = 2.0
"""An update must reach every open page within this."""
ROWS_URL = f"/inboxes/{INBOX}/rows?page=1"
"""What an open inbox page fetches on an event about its inbox (portal.js)."""
EVENT_WAIT_S = 10.0
"""How long a change's event is waited for at each stream before it counts as missing."""


# -- the server ------------------------------------------------------------------------------------


def memory(pid: int) -> tuple[float, float]:
    """The process's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


async def seed(data: Path, messages: int) -> tuple[float, list[int]]:
    """Fill the queue with ``messages`` messages; the seconds it took and the first ids in menu
    order (the messages the fan-out rounds act on)."""
    app = await App.open(data)
    try:
        t0 = time.perf_counter()
        await fill(app, [INBOX], messages)
        took = time.perf_counter() - t0
        first = await app.messages.messages(INBOX, limit=PAGE)
        return took, [m.id for m in first]
    finally:
        await app.close()


# -- requests in turn ------------------------------------------------------------------------------


@dataclass
class Timing:
    """Requests sent in turn: each one's time, and the server's CPU time they cost."""

    samples_ms: list[float]
    server_cpu_ms: float
    """Server CPU (user + system, every thread) per request."""


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used (user + system, all threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(client: httpx.Client, pid: int, urls: Callable[[int], str], count: int) -> Timing:
    """Milliseconds per GET (each answered 200 with its whole body read), after a warm-up; the
    ``n``-th request goes to ``urls(n)``; ``pid`` is the server's."""
    for n in range(min(50, count)):
        client.get(urls(n)).raise_for_status()
    out = []
    cpu0 = cpu_seconds(pid)
    for n in range(count):
        url = urls(n)
        t0 = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - t0) * 1000)
        response.raise_for_status()
    return Timing(out, (cpu_seconds(pid) - cpu0) * 1000 / count)


def quantiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p99 of the samples."""
    if len(samples) == 1:
        return samples[0], samples[0]
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return q[49], q[98]


def figure(name: str, timing: Timing, target_ms: float | None = None) -> str:
    """One line: p50/p99/max over the samples, the server's CPU per request, and the p99
    against its target."""
    samples = timing.samples_ms
    p50, p99 = quantiles(samples)
    line = (
        f"{name:<48} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms   max {max(samples):6.2f} ms"
        f"   n {len(samples)}   server CPU {timing.server_cpu_ms:5.2f} ms/request"
    )
    if target_ms is not None:
        verdict = "meets" if p99 < target_ms else "MISSES"
        line += f"   ({verdict} p99 < {target_ms:g} ms)"
    return line


def page_offsets(messages: int, pages: int) -> list[int]:
    """``pages`` offsets of 50-message pages spread evenly from the first page to the last."""
    last = max(0, messages - PAGE)
    if pages <= 1:
        return [0]
    return sorted({round(i * last / (pages - 1)) for i in range(pages)})


# -- open pages ------------------------------------------------------------------------------------


@dataclass
class Stream:
    """One open page: when each event of its stream arrived, and when the page had fetched the
    rows it shows again after it (as portal.js does on an event for its inbox)."""

    connected: asyncio.Event = field(default_factory=asyncio.Event)
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    refreshed: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    news: asyncio.Event = field(default_factory=asyncio.Event)

    def first(self, which: str, t0: float, message: int) -> float | None:
        """When the first event after ``t0`` about ``message`` arrived (``which`` = "events") or
        its rows were in (``which`` = "refreshed"), if it has happened."""
        seen: list[tuple[float, dict[str, Any]]] = getattr(self, which)
        return next((at for at, body in seen if at >= t0 and body.get("message") == message), None)

    async def until(self, which: str, t0: float, message: int, deadline: float) -> float | None:
        """:meth:`first`, waiting for it until ``deadline`` (``time.perf_counter()``)."""
        while (at := self.first(which, t0, message)) is None:
            left = deadline - time.perf_counter()
            if left <= 0:
                return None
            self.news.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.news.wait(), left)
        return at


async def follow(client: httpx.AsyncClient, stream: Stream, rows_url: str | None) -> None:
    """Keep a page open: read ``/api/v1/events`` until cancelled, stamping each event on arrival,
    and fetch the page's rows again (``rows_url``, when the portal serves it) for each event
    about its inbox."""
    fetches: set[asyncio.Task[None]] = set()

    async def refresh(url: str, body: dict[str, Any]) -> None:
        try:
            response = await client.get(url)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # The server closed the idle keep-alive connection as it was reused; a browser
            # sends the request again on a new one, and so does this page.
            response = await client.get(url)
        response.raise_for_status()
        stream.refreshed.append((time.perf_counter(), body))
        stream.news.set()

    try:
        async with client.stream("GET", "/api/v1/events") as response:
            response.raise_for_status()
            stream.connected.set()
            data: list[str] = []
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:  # a blank line ends an event
                    body = json.loads("\n".join(data))
                    data = []
                    stream.events.append((time.perf_counter(), body))
                    stream.news.set()
                    if rows_url is not None and body.get("inbox") == INBOX:
                        task = asyncio.create_task(refresh(rows_url, body))
                        fetches.add(task)
                        task.add_done_callback(fetches.discard)
    finally:
        for task in list(fetches):
            task.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)


@dataclass
class FanOut:
    """What the open pages saw of the changes."""

    opened_s: float
    events_ms: list[float] = field(default_factory=list)
    """Change -> event, one per stream and change."""
    pages_ms: list[float] = field(default_factory=list)
    """Change -> rows fetched again, one per page and change."""
    slowest_ms: list[float] = field(default_factory=list)
    """Each change: the page that had its rows last."""
    missing: int = 0
    server_cpu_ms: list[float] = field(default_factory=list)
    """Each change: the server's CPU time from the change until the last page was updated."""
    client_cpu_ms: list[float] = field(default_factory=list)
    """The same for this process (the pages' side: 100 streams and their fetches)."""


async def fan_out(
    base: str,
    cookies: httpx.Cookies,
    server: Server,
    ids: list[int],
    streams: int,
    changes: int,
) -> FanOut:
    """Open ``streams`` pages of the queue, make ``changes`` changes, and time them.

    Each page has a client of its own, as each browser has its own connections: one shared
    pool of 200 connections would cost this process more than the server (httpcore looks
    through every connection of its pool for each request)."""
    rows_url: str | None = ROWS_URL
    rng = random.Random(3)
    tls = ssl.create_default_context()  # made once, not once per client (it is never used)
    app = await App.open(server.data)
    async with contextlib.AsyncExitStack() as clients:
        browsers = [
            await clients.enter_async_context(
                httpx.AsyncClient(
                    base_url=base,
                    cookies=cookies,
                    verify=tls,
                    limits=httpx.Limits(max_connections=2),  # the stream and a fetch
                    timeout=httpx.Timeout(30.0, read=None),
                )
            )
            for _ in range(streams)
        ]
        if (await browsers[0].get(ROWS_URL)).status_code != 200:
            rows_url = None  # no portal pages: the events alone are timed
        pages = [Stream() for _ in range(streams)]
        t_open = time.perf_counter()
        tasks = [
            asyncio.create_task(follow(client, s, rows_url))
            for client, s in zip(browsers, pages, strict=True)
        ]
        try:
            await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in pages)), 60)
            result = FanOut(opened_s=time.perf_counter() - t_open)
            await asyncio.sleep(0.5)
            for n in range(changes):
                message = ids[n // 2 % len(ids)]
                cpu0 = cpu_seconds(server.proc.pid), time.process_time()
                t0 = time.perf_counter()
                if n % 2 == 0:
                    await app.messages.mark_played(message, as_member=MEMBER)
                else:
                    await app.messages.mark_new(message, as_member=MEMBER)
                deadline = t0 + EVENT_WAIT_S
                slowest = 0.0
                for s in pages:
                    event = await s.until("events", t0, message, deadline)
                    page = event
                    if rows_url is not None and event is not None:
                        page = await s.until("refreshed", t0, message, deadline)
                    if event is None or page is None:
                        result.missing += 1
                        continue
                    result.events_ms.append((event - t0) * 1000)
                    if rows_url is not None:
                        result.pages_ms.append((page - t0) * 1000)
                    slowest = max(slowest, (page - t0) * 1000)
                result.slowest_ms.append(slowest)
                result.server_cpu_ms.append((cpu_seconds(server.proc.pid) - cpu0[0]) * 1000)
                result.client_cpu_ms.append((time.process_time() - cpu0[1]) * 1000)
                await asyncio.sleep(0.3 + rng.random())  # the next change at another phase
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await app.close()
    return result


# -- the run ---------------------------------------------------------------------------------------


def portal_url(server: Server) -> str:
    """The base URL the server logged (``portal: http://HOST:PORT/``), without the last slash."""
    line = server.wait_log("portal: http://", timeout=30)
    found = re.search(r"portal: (http://\S+?)/?(\s|$)", line)
    assert found, line
    return found.group(1)


def run(
    messages: int, pages: int, requests: int = 500, streams: int = 100, changes: int = 5
) -> list[str]:
    """Start a server, fill it, measure; the lines of figures."""
    with tempfile.TemporaryDirectory() as tmp:
        http_port = free_ports(SERVER_HOST, 1, tcp=True)
        server = start_server(Path(tmp), extra=("--http-port", str(http_port)))
        try:
            base = portal_url(server)
            fill_s, ids = asyncio.run(seed(server.data, messages))
            lines = [
                f"store: {messages} messages in queue {INBOX}, filled in {fill_s:.1f} s;"
                f" {base} signed in as {MEMBER} (admin)"
            ]
            rss = [("filled", *memory(server.proc.pid))]
            with httpx.Client(base_url=base, timeout=10.0) as client:
                signed = client.post("/api/v1/session", json={"ext": MEMBER, "pin": PIN})
                signed.raise_for_status()
                lines += measure_requests(client, server.proc.pid, messages, pages, requests)
                cookies = client.cookies
            rss.append(("after requests", *memory(server.proc.pid)))
            seen = asyncio.run(fan_out(base, cookies, server, ids, streams, changes))
            rss.append((f"{streams} pages open", *memory(server.proc.pid)))
            lines += fan_out_lines(seen, streams, changes)
            lines.append(
                "server memory: "
                + ";  ".join(
                    f"{when} RSS {now:.0f} MiB (peak {peak:.0f})" for when, now, peak in rss
                )
            )
        finally:
            server.stop()
    return lines


def measure_requests(
    client: httpx.Client, pid: int, messages: int, pages: int, requests: int
) -> list[str]:
    """Figures of the listings over one keep-alive connection (``pid``: the server's)."""
    offsets = page_offsets(messages, pages)
    messages_url = f"/api/v1/inboxes/{INBOX}/messages"
    first = client.get(messages_url, params={"limit": PAGE})
    first.raise_for_status()
    assert len(first.json()) == min(PAGE, messages), first.text[:200]
    lines = [
        figure(
            "GET /api/v1/inboxes (inbox list)",
            timed(client, pid, lambda n: "/api/v1/inboxes", requests),
            LISTING_TARGET_MS,
        ),
        figure(
            f"GET .../{INBOX}/messages?limit={PAGE} (first page)",
            timed(client, pid, lambda n: f"{messages_url}?limit={PAGE}", requests),
            LISTING_TARGET_MS,
        ),
        figure(
            f"  &offset=: {len(offsets)} pages spread over the inbox",
            timed(
                client,
                pid,
                lambda n: f"{messages_url}?limit={PAGE}&offset={offsets[n % len(offsets)]}",
                max(requests, len(offsets)),
            ),
            LISTING_TARGET_MS,
        ),
    ]
    html_url = f"/inboxes/{INBOX}"
    if client.get(html_url).status_code == 200:
        lines.append(
            figure(f"GET {html_url} (HTML page)", timed(client, pid, lambda n: html_url, requests))
        )
        lines.append(
            figure(
                f"GET {ROWS_URL} (its rows, live)", timed(client, pid, lambda n: ROWS_URL, requests)
            )
        )
    else:
        lines.append(f"GET {html_url} (HTML page): not served")
    return lines


def fan_out_lines(seen: FanOut, streams: int, changes: int) -> list[str]:
    """The fan-out figures against the 2-s target."""
    lines = [
        f"SSE fan-out: {streams} pages of queue {INBOX} open (streams connected in"
        f" {seen.opened_s * 1000:.0f} ms); {changes} changes; {seen.missing} pages never updated"
    ]
    for name, samples in (
        ("change -> event at each page", seen.events_ms),
        ("change -> page's rows fetched again", seen.pages_ms),
    ):
        if not samples:
            lines.append(f"{name:<48} none (no portal page to fetch, or no event came)")
            continue
        p50, _ = quantiles(samples)
        worst = max(samples)
        verdict = "meets" if worst < FANOUT_TARGET_S * 1000 and not seen.missing else "MISSES"
        lines.append(
            f"{name:<48} p50 {p50:6.1f} ms   max {worst:6.1f} ms"
            f"   ({verdict} every page < {FANOUT_TARGET_S:g} s)"
        )
    for name, values in (
        ("  last page updated, per change", seen.slowest_ms),
        ("  server CPU, per change", seen.server_cpu_ms),
        ("  the pages' CPU (this process), per change", seen.client_cpu_ms),
    ):
        lines.append(f"{name:<48} " + "  ".join(f"{v:.0f}" for v in values) + " ms")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=100, help="message-page positions visited")
    parser.add_argument("--requests", type=int, default=500, help="requests per figure")
    parser.add_argument("--streams", type=int, default=100, help="open event streams")
    parser.add_argument("--changes", type=int, default=5, help="changes sent to the streams")
    args = parser.parse_args(argv)
    for line in run(args.messages, args.pages, args.requests, args.streams, args.changes):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
