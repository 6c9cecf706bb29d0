"""Login lockout rules (pure): when failed PIN attempts lock an extension or a caller out.

- 5 failures for one extension within 15 minutes lock logins to that extension for 15 minutes;
- 20 failures from one source (the peer address and the caller id it asserted) within
  15 minutes lock that source out for 15 minutes.
The extension counted is whatever was typed, existing or not, so a lock tells an attacker
nothing about which extensions exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class LoginOutcome(StrEnum):
    """How one login attempt ended."""

    OK = "ok"
    FAILED = "failed"
    LOCKED = "locked"
    """Refused without looking at the PIN's result: too many failures recently."""


class LockScope(StrEnum):
    """What a lock applies to."""

    EXTENSION = "ext"
    SOURCE = "source"


@dataclass(frozen=True)
class LockoutPolicy:
    """Thresholds of the lockout (the defaults are the product's rules)."""

    per_extension: int = 5
    """Failures for one extension within ``window`` that lock it."""
    per_source: int = 20
    """Failures from one source within ``window`` that lock it."""
    window: timedelta = timedelta(minutes=15)
    """How far back failures count."""
    lock_for: timedelta = timedelta(minutes=15)
    """How long a lock lasts."""

    def locks_after(self, extension_failures: int, source_failures: int) -> list[LockScope]:
        """The locks to set now that the counts (this failure included) are as given."""
        scopes: list[LockScope] = []
        if extension_failures >= self.per_extension:
            scopes.append(LockScope.EXTENSION)
        if source_failures >= self.per_source:
            scopes.append(LockScope.SOURCE)
        return scopes
