"""The benchmark still runs (tiny sizes; figures are not judged here)."""

from __future__ import annotations

import re

from tests.bench.bench_listings import run


async def test_listing_benchmark_runs_and_prints_figures() -> None:
    lines = await run(messages=600, inboxes=5, rounds=20)
    assert lines[0].startswith("store: 600 messages over 10 inboxes")
    assert len(lines) == 4
    for line in lines[1:]:
        assert re.search(r"p50 +[0-9.]+ ms +p99 +[0-9.]+ ms", line), line
