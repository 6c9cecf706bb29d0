"""Benchmark: `inboxes` and `messages` listings for a member with many inboxes in a big store.

Prints figures (p50/p99 per listing, in-process through the services, as the desk-phone menu
and the CLI call them); it asserts nothing about speed. Target: p99 under 5 ms.

    python tests/bench/bench_listings.py [--messages 100000] [--inboxes 50] [--rounds 2000]

The store is filled with direct SQL inserts (the deposit path fsyncs every message, which would
take minutes for 100,000 and is not what is measured here); the counts triggers run as in
production. Messages are spread evenly over twice as many inboxes as the member can reach, so
half the store belongs to inboxes the member does not see.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sipvm.app import App
from sipvm.domain.model import Directory, Extension, Grant, Kind, Right, Site
from sipvm.domain.pins import hash_pin

MEMBER = "1000"


def build_directory(inboxes: int) -> Directory:
    """The member's own inbox plus ``inboxes - 1`` queues it is granted, plus as many others."""
    pin = hash_pin("482916")
    exts: dict[str, Extension] = {
        MEMBER: Extension(MEMBER, Kind.USER, "Bench member", "HQ", pin_hash=pin),
        "1001": Extension("1001", Kind.USER, "Someone else", "HQ", pin_hash=pin),
    }
    kinds = [Kind.CALL_QUEUE, Kind.AUTO_RECEPTIONIST, Kind.SHARED_LINE_GROUP]
    for i in range(2 * inboxes - 1):
        ext = str(20000 + i)
        members = (Grant(MEMBER, frozenset({Right.PLAY, Right.DELETE})),) if i < inboxes - 1 else ()
        exts[ext] = Extension(ext, kinds[i % 3], f"Inbox {ext}", "HQ", members=members)
    return Directory(sites={"HQ": Site("HQ", "UTC")}, extensions=exts)


async def fill(app: App, targets: list[str], total: int) -> None:
    """Insert ``total`` messages spread over ``targets``, a third of them played."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(1)
    async with app.db.transaction() as conn:
        batch = []
        for n in range(total):
            inbox = targets[n % len(targets)]
            at = (start + timedelta(seconds=n * 37)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            played = at if rng.random() < 0.33 else None
            batch.append(
                (
                    f"bench{n:08d}",
                    inbox,
                    f"55501{n % 10000:04d}",
                    "Caller",
                    at,
                    12000,
                    int(rng.random() < 0.05),
                    f"audio/{inbox}/bench{n:08d}.wav",
                    played,
                    MEMBER if played else None,
                )
            )
            if len(batch) == 5000:
                await _insert(conn, batch)
                batch = []
        if batch:
            await _insert(conn, batch)


async def _insert(conn: object, rows: list[tuple[object, ...]]) -> None:
    await conn.executemany(  # type: ignore[attr-defined]
        "INSERT INTO messages (uid, inbox, caller, caller_name, received_at, duration_ms, urgent,"
        " audio, played_at, played_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


async def timed(rounds: int, call: Callable[[], Awaitable[object]]) -> list[float]:
    """Milliseconds per call, after a short warm-up."""
    for _ in range(min(50, rounds)):
        await call()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def figures(name: str, samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return f"{name:<44} p50 {q[49]:6.2f} ms   p99 {q[98]:6.2f} ms   max {max(samples):6.2f} ms"


async def run(messages: int, inboxes: int, rounds: int) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        app = await App.open(Path(tmp) / "data")
        try:
            directory = build_directory(inboxes)
            await app.directory.apply(directory, source="bench")
            t0 = time.perf_counter()
            await fill(app, sorted(e for e in directory.extensions if e != "1001"), messages)
            fill_s = time.perf_counter() - t0
            visible = await app.messages.inboxes(MEMBER)
            assert len(visible) == inboxes, len(visible)
            per_inbox = messages // (2 * inboxes)
            rng = random.Random(2)
            names = [v.ext for v in visible]
            lines = [
                f"store: {messages} messages over {2 * inboxes} inboxes (~{per_inbox} each); "
                f"member {MEMBER} reaches {len(visible)} inboxes; filled in {fill_s:.1f} s",
                figures(
                    f"inboxes --member ({len(visible)} inboxes + counts)",
                    await timed(rounds, lambda: app.messages.inboxes(MEMBER)),
                ),
                figures(
                    "messages --inbox --as --limit 50 (first page)",
                    await timed(
                        rounds,
                        lambda: app.messages.messages(
                            rng.choice(names), as_member=MEMBER, limit=50
                        ),
                    ),
                ),
                figures(
                    f"messages --inbox --as (all ~{per_inbox})",
                    await timed(
                        max(20, rounds // 20),
                        lambda: app.messages.messages(rng.choice(names), as_member=MEMBER),
                    ),
                ),
            ]
        finally:
            await app.close()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--inboxes", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args(argv)
    for line in asyncio.run(run(args.messages, args.inboxes, args.rounds)):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
