"""Value objects about messages: what flows, services and the store hand each other.

Message state changes never raise when another member got there first: they end in an
:class:`Outcome` (``DONE``, ``ALREADY`` or ``GONE``) and the message as it is afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sipvm.domain.model import Kind, Right


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


@dataclass(frozen=True)
class NewMessage:
    """What a deposit (or a share) knows about a message before it is stored."""

    uid: str
    inbox: str
    received_at: datetime
    duration_ms: int
    audio: str
    """Path of the durable audio file, relative to the data directory."""
    caller: str = ""
    caller_name: str = ""
    called: str = ""
    reason: str = ""
    urgent: bool = False
    source_id: int | None = None
    shared_by: str | None = None
    """The member who shared it (a shared copy only)."""
    note: str | None = None
    """What the member who shared it wrote for the recipient (a shared copy only)."""


@dataclass(frozen=True)
class Message:
    """A stored message with its one shared state."""

    id: int
    uid: str
    inbox: str
    caller: str
    caller_name: str
    called: str
    reason: str
    received_at: datetime
    duration_ms: int
    urgent: bool
    audio: str
    played_at: datetime | None
    played_by: str | None
    deleted_at: datetime | None
    deleted_by: str | None
    source_id: int | None
    shared_by: str | None
    """The member who shared it, on a shared copy; None on a deposit."""
    note: str | None
    """The sharer's note for the recipient, on a shared copy that has one; else None."""

    @property
    def played(self) -> bool:
        """Played by any member (the state is shared)."""
        return self.played_at is not None

    @property
    def deleted(self) -> bool:
        """Deleted for everyone."""
        return self.deleted_at is not None

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.duration_ms / 1000


@dataclass(frozen=True)
class MenuPlace:
    """A place in an inbox's menu order — new before played, then oldest first, then by id —
    where a page of messages ended. The next page starts right after it, however deep into the
    inbox (an offset costs a step per message skipped), and a message played or deleted
    meanwhile moves no other message across the page boundary (as it would with an offset)."""

    played: bool
    received_at: datetime
    id: int

    @classmethod
    def of(cls, message: Message) -> MenuPlace:
        """The place of ``message`` (the last one of a page) as it was listed."""
        return cls(message.played, message.received_at, message.id)


class Outcome(StrEnum):
    """How a state change ended."""

    DONE = "done"
    """The change was made."""
    ALREADY = "already"
    """The message was already in that state (another member got there first)."""
    GONE = "gone"
    """The message is deleted (or purged) and cannot be changed."""


@dataclass(frozen=True)
class ActionResult:
    """The outcome of a state change and the message as it is afterwards (None if purged)."""

    outcome: Outcome
    message: Message | None


@dataclass(frozen=True)
class InboxSummary:
    """One inbox a member may reach, as the menu and ``sipvm inboxes`` show it."""

    ext: str
    kind: Kind
    name: str
    rights: tuple[Right, ...]
    new: int
    old: int
    urgent_new: int
    urgent_old: int
    own: bool
