"""Login lockout rules (pure): when failed PIN attempts lock an extension, a caller or a peer.

What is counted, and what locks (failures within the last 15 minutes, ``THRESHOLDS``):

=========  ===========================================================  ========
scope      key                                                          failures
=========  ===========================================================  ========
ext        the extension typed (existing or not)                        5
source     the peer address and the caller id it asserted               20
peer       the peer address alone, whatever caller id or extension      100
=========  ===========================================================  ========

How long a lock lasts (``LOCK_LENGTHS``), per scope and key: the 1st lock 15 minutes, the 2nd
1 hour, the 3rd and every later one 24 hours. A key whose last lock ended 24 hours or more ago
(``FORGIVE_AFTER``) starts again at 15 minutes.

Why these numbers:
- The extension counted is whatever was typed, so a lock tells an attacker nothing about which
  extensions exist. With the escalation one extension takes about 20 guesses a day instead of
  480 (5 per 15 minutes around the clock).
- Behind a PBX the caller id is the caller's own choice: rotating it makes a new ``source``
  every call, so the ``peer`` scope counts every failure from the address. A PBX fronts many
  honest users who mistype now and then, so its threshold is well above what a site's users
  get wrong together in 15 minutes (a few dozen at most), while still stopping a caller who
  sprays one guess at many extensions: 100 guesses, then 15 min; 100 more, then 1 h; then one
  day. The price: such a caller can lock phone logins for everyone behind that PBX; the lock
  ends by itself, and deposits are never locked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from sipvm.errors import InvalidInputError


class LoginOutcome(StrEnum):
    """How one login attempt ended."""

    OK = "ok"
    FAILED = "failed"
    LOCKED = "locked"
    """Refused without looking at the PIN's result: too many failures recently."""


class LockScope(StrEnum):
    """What a lock applies to (the value is what the store and the security log say)."""

    EXTENSION = "ext"
    SOURCE = "source"
    PEER = "peer"


#: Failures within ``WINDOW`` that lock a key of each scope.
THRESHOLDS: Mapping[LockScope, int] = MappingProxyType(
    {LockScope.EXTENSION: 5, LockScope.SOURCE: 20, LockScope.PEER: 100}
)
#: How far back failures count.
WINDOW = timedelta(minutes=15)
#: How long the 1st, 2nd, 3rd... lock of one key in a row lasts; the last entry repeats.
LOCK_LENGTHS: tuple[timedelta, ...] = (
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=24),
)
#: A key whose last lock ended this long ago starts over at the first lock length.
FORGIVE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class Lock:
    """A lock the policy sets now."""

    scope: LockScope
    until: datetime
    strike: int
    """1 for the first lock in a row, 2 for the second..."""


@dataclass(frozen=True)
class LockoutPolicy:
    """Thresholds and lock lengths (the defaults are the product's rules, tabled above)."""

    per_extension: int = THRESHOLDS[LockScope.EXTENSION]
    """Failures for one extension within ``window`` that lock it."""
    per_source: int = THRESHOLDS[LockScope.SOURCE]
    """Failures from one source (peer and caller id) within ``window`` that lock it."""
    per_peer: int = THRESHOLDS[LockScope.PEER]
    """Failures from one peer address, any caller id, within ``window`` that lock it."""
    window: timedelta = WINDOW
    """How far back failures count."""
    lock_lengths: tuple[timedelta, ...] = LOCK_LENGTHS
    """Length of the 1st, 2nd, ... lock of one key in a row; the last one repeats."""
    forgive_after: timedelta = FORGIVE_AFTER
    """After this long without a lock, a key's next lock is a first one again."""

    def __post_init__(self) -> None:
        for name in ("per_extension", "per_source", "per_peer"):
            if getattr(self, name) < 1:
                raise InvalidInputError(
                    f"the lockout threshold {name} must be 1 or more, not {getattr(self, name)}"
                )
        if not self.lock_lengths:
            raise InvalidInputError("the lockout needs at least one lock length")

    def threshold(self, scope: LockScope) -> int:
        """Failures within ``window`` that lock a key of ``scope``."""
        return {
            LockScope.EXTENSION: self.per_extension,
            LockScope.SOURCE: self.per_source,
            LockScope.PEER: self.per_peer,
        }[scope]

    def locks_after(self, failures: Mapping[LockScope, int]) -> list[LockScope]:
        """The scopes to lock now that the counts (this failure included) are as given."""
        return [scope for scope in LockScope if failures.get(scope, 0) >= self.threshold(scope)]

    def strike(self, previous: int, previous_until: datetime | None, now: datetime) -> int:
        """The number in a row of a lock set at ``now`` on a key whose last lock was the
        ``previous``-th and ended at ``previous_until`` (None: never locked)."""
        if previous_until is None or previous < 1 or now - previous_until >= self.forgive_after:
            return 1
        return previous + 1

    def lock_length(self, strike: int) -> timedelta:
        """How long the ``strike``-th lock in a row lasts."""
        return self.lock_lengths[min(max(strike, 1), len(self.lock_lengths)) - 1]

    def lock(
        self, scope: LockScope, now: datetime, previous: int, previous_until: datetime | None
    ) -> Lock:
        """The lock to set at ``now`` on a key with the given history."""
        strike = self.strike(previous, previous_until, now)
        return Lock(scope, now + self.lock_length(strike), strike)
