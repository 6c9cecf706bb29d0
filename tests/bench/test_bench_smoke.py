"""The benchmark still runs (tiny sizes; figures are not judged here)."""

from __future__ import annotations

import re

from tests.bench.bench_listings import run
from tests.bench.bench_login_timing import run as login_timing


async def test_listing_benchmark_runs_and_prints_figures() -> None:
    lines = await run(messages=600, inboxes=5, rounds=20)
    assert lines[0].startswith("store: 600 messages over 10 inboxes")
    assert len(lines) == 4
    for line in lines[1:]:
        assert re.search(r"p50 +[0-9.]+ ms +p99 +[0-9.]+ ms", line), line


async def test_login_timing_benchmark_runs_and_prints_figures() -> None:
    lines = await login_timing(rounds=4)
    assert len(lines) == 3
    for line in lines[:2]:
        assert re.search(r"p50 +[0-9.]+ ms +p99 +[0-9.]+ ms", line), line
    assert re.fullmatch(r"difference of medians: [+-][0-9.]+ ms", lines[2])
