"""Value objects about messages shared by flows and services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class DepositFacts:
    """What is known about a message when its recording starts."""

    inbox: str
    received_at: datetime
    caller: str = ""
    caller_name: str = ""
    called: str = ""
    """The number the caller first dialled (before any diversion)."""
    reason: str = ""
    """Why the call reached voicemail: busy, no-answer, unavailable, unconditional."""
    urgent: bool = False


@dataclass(frozen=True)
class InboxCounts:
    """New (unplayed) and old (played) messages of an inbox, deleted ones not counted."""

    new: int = 0
    old: int = 0
    urgent_new: int = 0
    urgent_old: int = 0
