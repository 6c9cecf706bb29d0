"""Pacing call ends (``sip.pacing.EndPacer``): never more than the window allows, in order,
and a call that ended meanwhile is not ended twice."""

from __future__ import annotations

import logging

import pytest

from sipvm.sip.pacing import EndPacer


class Calls:
    """Stands for the engine: ending a call reports its end at once, as pjsua does."""

    def __init__(self, pacer: EndPacer, keys: range) -> None:
        self.pacer = pacer
        self.alive = set(keys)
        self.ended: list[tuple[int, float]] = []
        self.now = 0.0

    def ender(self, key: int):  # type: ignore[no-untyped-def]
        def end() -> None:
            self.alive.discard(key)
            self.ended.append((key, self.now))
            self.pacer.ended(self.now)

        return end


def test_ends_within_the_window_run_at_once() -> None:
    pacer = EndPacer(window_s=0.6, per_window=3)
    calls = Calls(pacer, range(3))
    for key in range(3):
        pacer.end(key, calls.ender(key), 0.0)
    assert [k for k, _ in calls.ended] == [0, 1, 2]
    assert pacer.waiting == 0


def test_a_burst_is_spread_over_windows_in_order(caplog: pytest.LogCaptureFixture) -> None:
    pacer = EndPacer(window_s=0.6, per_window=3)
    calls = Calls(pacer, range(8))
    with caplog.at_level(logging.WARNING):
        for key in range(8):
            pacer.end(key, calls.ender(key), 0.0)
    assert len(calls.ended) == 3 and pacer.waiting == 5
    assert len(caplog.records) == 1  # one line for the burst, not one per call
    for step in range(1, 31):  # the engine's loop, every 0.05 s
        calls.now = step * 0.05
        pacer.run(calls.now, calls.alive.__contains__)
    assert [k for k, _ in calls.ended] == list(range(8))
    times = [t for _, t in calls.ended]
    for i in range(len(times) - 3):  # never more than 3 in any 0.6 s
        assert times[i + 3] - times[i] >= 0.6 - 1e-9, times


def test_ends_the_callers_cause_count_too() -> None:
    pacer = EndPacer(window_s=0.6, per_window=2)
    calls = Calls(pacer, range(1))
    pacer.ended(0.0)
    pacer.ended(0.1)  # two hang-ups by callers fill the window
    pacer.end(0, calls.ender(0), 0.2)
    assert calls.ended == []
    pacer.run(0.55, calls.alive.__contains__)
    assert calls.ended == []
    calls.now = 0.65
    pacer.run(0.65, calls.alive.__contains__)
    assert calls.ended == [(0, 0.65)]


def test_a_call_gone_meanwhile_is_not_ended_again() -> None:
    pacer = EndPacer(window_s=0.6, per_window=1)
    calls = Calls(pacer, range(2))
    pacer.end(0, calls.ender(0), 0.0)
    pacer.end(1, calls.ender(1), 0.0)
    calls.alive.discard(1)  # the caller hung up while its end waited
    pacer.run(1.0, calls.alive.__contains__)
    assert calls.ended == [(0, 0.0)]
    assert pacer.waiting == 0
