"""The benchmark still runs (tiny sizes; figures are not judged here)."""

from __future__ import annotations

import re

import pytest

from tests.bench import bench_capacity, bench_dialog_pace, bench_http, bench_menu_latency
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


@pytest.mark.slow
@pytest.mark.parametrize(("dialog", "digits"), [("deposit", 2), ("menu-barge-in", 3)])
def test_menu_latency_benchmark_runs_and_prints_figures(dialog: str, digits: int) -> None:
    lines = bench_menu_latency.run(digits, dialog)
    assert lines[0].startswith(f'DTMF -> next prompt, dialog "{dialog}"')
    assert f"{digits} digits measured in 1 calls" in lines[1]
    number = r"-?[0-9]+\.[0-9]"
    figures = rf" +{number} +{number} +{number} +{number} +{digits}$"
    for label in ("from key-up", "from key-down"):
        (line,) = [x for x in lines if x.strip().startswith(label)]
        assert re.search(figures, line), line
    assert lines[-1].endswith("of the key: 0"), lines  # every key brought its prompt


@pytest.mark.slow
def test_http_benchmark_runs_and_prints_figures() -> None:
    lines = bench_http.run(messages=2000, pages=5, requests=20, streams=5, changes=2)
    assert lines[0].startswith("store: 2000 messages in queue 2001"), lines
    figures = r"p50 +[0-9.]+ ms +p99 +[0-9.]+ ms +max +[0-9.]+ ms +n [0-9]+"
    for label in (
        "GET /api/v1/inboxes",
        "messages?limit=50 (first page)",
        "&offset=: 5 pages spread",
    ):
        (line,) = [x for x in lines if label in x]
        assert re.search(figures, line), line
    (line,) = [x for x in lines if x.startswith("SSE fan-out: 5 pages")]
    assert "0 pages never updated" in line, lines  # every open page heard of every change
    (line,) = [x for x in lines if x.startswith("change -> event at each page")]
    assert re.search(r"p50 +[0-9.]+ ms +max +[0-9.]+ ms", line), line
    assert re.fullmatch(r"server memory: filled RSS [0-9]+ MiB .*", lines[-1]), lines


@pytest.mark.slow
def test_dialog_pace_benchmark_runs_and_prints_figures() -> None:
    lines, figures = bench_dialog_pace.run(runs=1)
    assert lines[0].startswith("dialog pace over real SIP, 1 runs"), lines
    assert set(figures) == set(bench_dialog_pace.STEPS)
    for step in bench_dialog_pace.STEPS:
        (line,) = [x for x in lines if x.startswith(step)]
        assert re.search(r"( +[0-9]+\.[0-9]{2}){4}$", line), line


@pytest.mark.slow
def test_capacity_benchmark_runs_and_prints_figures() -> None:
    lines = bench_capacity.measure_calls(8, 8.0, 20, idle_s=1.0, probe_s=8.0)
    fields = lines[0].split()
    assert fields[:3] == ["8", "2", "0"], lines  # 8 calls on 2 workers, none failed
    assert re.search(r" 0 +8/8 ", lines[0]), lines  # none short, the tone in each
    assert re.search(r"greeting \+ beep [0-9.]+ s .* 8 stored, 0 missing", lines[1]), lines
    assert re.fullmatch(r"[0-9.]+", fields[-1]), lines  # the pool's start-up, in seconds
