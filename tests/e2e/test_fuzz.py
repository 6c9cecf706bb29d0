"""Malformed SIP datagrams do not take the server down: 300 of every kind the fuzz benchmark
sends (``tests/bench/bench_fuzz.py``, seeded), then the server is alive, answers OPTIONS and
stores a real caller's message with its tone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.bench import bench_fuzz

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]


def test_300_malformed_datagrams_leave_the_server_up_and_taking_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = bench_fuzz.run(300, seed=7, work=tmp_path)
    with capsys.disabled():
        print("\n" + "\n".join(report.lines()))
    assert sum(report.sent.values()) == 300
    assert set(report.sent) == set(bench_fuzz.KINDS), report.sent  # every kind was sent
    assert report.alive, report.lines()
    assert report.options == 200, report.lines()
    assert report.deposit, report.lines()
    assert report.replies["403"] > 0  # the untrusted INVITEs were refused, not ignored
