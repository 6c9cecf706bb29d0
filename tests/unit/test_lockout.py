"""The lockout rules as tables: what locks, for how long, and when the escalation starts over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sipvm.domain.lockout import (
    FORGIVE_AFTER,
    LOCK_LENGTHS,
    THRESHOLDS,
    WINDOW,
    Lock,
    LockoutPolicy,
    LockScope,
)
from sipvm.errors import InvalidInputError

EXT, SOURCE, PEER = LockScope.EXTENSION, LockScope.SOURCE, LockScope.PEER
NOW = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)
MIN, HOUR = timedelta(minutes=1), timedelta(hours=1)


def test_the_product_rules() -> None:
    assert dict(THRESHOLDS) == {EXT: 5, SOURCE: 20, PEER: 100}
    assert WINDOW == 15 * MIN
    assert LOCK_LENGTHS == (15 * MIN, HOUR, 24 * HOUR)
    assert FORGIVE_AFTER == 24 * HOUR
    policy = LockoutPolicy()
    assert [policy.threshold(scope) for scope in LockScope] == [5, 20, 100]
    assert [scope.value for scope in LockScope] == ["ext", "source", "peer"]  # stored, logged


# (failures per scope, this failure included) -> scopes that lock now
LOCKS_AFTER = [
    ({EXT: 4, SOURCE: 4, PEER: 4}, []),
    ({EXT: 5, SOURCE: 5, PEER: 5}, [EXT]),
    ({EXT: 1, SOURCE: 19, PEER: 99}, []),
    ({EXT: 1, SOURCE: 20, PEER: 20}, [SOURCE]),
    # Rotating caller ids: every source new, the peer counts them all.
    ({EXT: 1, SOURCE: 1, PEER: 99}, []),
    ({EXT: 1, SOURCE: 1, PEER: 100}, [PEER]),
    ({EXT: 5, SOURCE: 20, PEER: 100}, [EXT, SOURCE, PEER]),
    ({EXT: 6, SOURCE: 1, PEER: 101}, [EXT, PEER]),
    ({}, []),
]


@pytest.mark.parametrize(("failures", "locked"), LOCKS_AFTER)
def test_locks_after(failures: dict[LockScope, int], locked: list[LockScope]) -> None:
    assert LockoutPolicy().locks_after(failures) == locked


def test_a_smaller_peer_threshold_locks_sooner() -> None:
    assert LockoutPolicy(per_peer=3).locks_after({EXT: 1, SOURCE: 1, PEER: 3}) == [PEER]


# (locks in a row so far, how long ago the last one ended or None) -> this lock's number, length
ESCALATION = [
    (0, None, 1, 15 * MIN),
    (1, timedelta(0), 2, HOUR),  # locked again the moment the first one ended
    (1, 10 * MIN, 2, HOUR),
    (2, 3 * HOUR, 3, 24 * HOUR),
    (3, 23 * HOUR, 4, 24 * HOUR),  # the 3rd length repeats
    (9, MIN, 10, 24 * HOUR),
    (1, 24 * HOUR - MIN, 2, HOUR),  # a minute short of a clean day: still escalates
    (1, 24 * HOUR, 1, 15 * MIN),  # a day without a lock: starts over
    (3, 30 * HOUR, 1, 15 * MIN),
]


@pytest.mark.parametrize(("previous", "ago", "strike", "length"), ESCALATION)
def test_repeated_locks_get_longer_until_a_day_without_one(
    previous: int, ago: timedelta | None, strike: int, length: timedelta
) -> None:
    policy = LockoutPolicy()
    previous_until = None if ago is None else NOW - ago
    assert policy.strike(previous, previous_until, NOW) == strike
    assert policy.lock_length(strike) == length
    assert policy.lock(PEER, NOW, previous, previous_until) == Lock(PEER, NOW + length, strike)


@pytest.mark.parametrize(
    "bad",
    [
        {"per_extension": 0},
        {"per_source": -1},
        {"per_peer": 0},
        {"lock_lengths": ()},
    ],
)
def test_a_policy_that_would_lock_at_once_or_never_end_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError, match="lockout"):
        LockoutPolicy(**bad)  # type: ignore[arg-type]
