"""A worker falls behind when its event loop wakes late on average, and catches up with
hysteresis (``domain.load``)."""

from __future__ import annotations

from sipvm.domain.load import LagTracker


def feed(tracker: LagTracker, start: float, lags: list[float], step: float = 0.1) -> list[object]:
    return [tracker.add(start + i * step, lag) for i, lag in enumerate(lags)]


def test_a_few_late_wakes_make_it_behind_and_it_catches_up_once_they_leave_the_window() -> None:
    tracker = LagTracker(on_s=0.2, off_s=0.05, window_s=1.0)
    assert feed(tracker, 0.0, [0.001] * 10) == [None] * 10 and not tracker.behind
    # the process was stopped for half a second: one very late wake
    assert tracker.add(1.1, 0.5) is True and tracker.behind
    # still behind while that wake is in the last second
    assert feed(tracker, 1.2, [0.001] * 8) == [None] * 8 and tracker.behind
    changes = feed(tracker, 2.0, [0.001] * 5)
    assert False in changes and not tracker.behind


def test_the_edge_does_not_flap() -> None:
    tracker = LagTracker(on_s=0.2, off_s=0.05, window_s=1.0)
    feed(tracker, 0.0, [0.03] * 10)  # 0.3 s lost in a second
    assert tracker.behind
    # hovering between off and on (0.1 s a second): no change either way
    assert feed(tracker, 1.0, [0.01] * 20) == [None] * 20 and tracker.behind


def test_nothing_is_decided_on_fewer_than_three_samples_and_lateness_is_never_negative() -> None:
    tracker = LagTracker()
    assert tracker.add(0.0, 1.0) is None and tracker.add(0.1, 1.0) is None
    assert not tracker.behind
    assert tracker.add(0.2, 1.0) is True
    early = LagTracker()
    feed(early, 0.0, [-0.5] * 5)
    assert early.late_s == 0.0 and not early.behind
