"""What only admins may do beyond the directory: every inbox with its messages, hours overrides,
deleted messages within their restore window, and a message's audit trail. (The greetings of
queues, auto receptionists and groups: ``GreetingService`` with ``as_member``.)

Each method checks that ``by`` is an admin user (``domain.rights.require_admin``), then asks
the service that does the work; the ``sipvm`` command, run by whoever holds the data
directory, calls those services directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sipvm.domain.messages import Message
from sipvm.domain.model import Extension, ext_sort_key
from sipvm.domain.rights import require_admin
from sipvm.domain.routing import Override
from sipvm.errors import InvalidFieldsError, NotFoundError
from sipvm.services.deposits import RESTORE_WINDOW
from sipvm.services.directory import DirectoryService
from sipvm.services.routing import Now, RoutingService
from sipvm.storage.messages import AuditEntry, SqliteMessageRepo


@dataclass(frozen=True)
class InboxOverview:
    """One inbox of the directory, for the admin's list of every inbox."""

    inbox: Extension
    new: int
    old: int


@dataclass(frozen=True)
class DeletedMessage:
    """A deleted message an admin can still restore."""

    message: Message
    restorable_until: datetime


class AdminService:
    """Admin-only use cases; see the module docstring."""

    def __init__(
        self,
        directory: DirectoryService,
        messages: SqliteMessageRepo,
        routing: RoutingService,
        clock: Callable[[], datetime],
    ) -> None:
        self._directory = directory
        self._messages = messages
        self._routing = routing
        self._clock = clock

    # -- inboxes and messages --------------------------------------------------------------

    async def inboxes(self, *, by: str) -> list[InboxOverview]:
        """Every inbox of every kind, by extension, with its new/old counts."""
        self._admin(by, "see every inbox")
        inboxes = sorted(self._directory.current.extensions.values(), key=_by_ext)
        counts = await self._messages.counts(e.ext for e in inboxes)
        return [InboxOverview(e, counts[e.ext].new, counts[e.ext].old) for e in inboxes]

    async def messages(
        self, inbox: str, *, by: str, limit: int | None = None, offset: int = 0
    ) -> list[Message]:
        """The messages of any inbox (what they are, not their audio: playing one still takes
        the play right)."""
        self._admin(by, "see the messages of every inbox")
        self._inbox(inbox)
        return await self._messages.list_inbox(inbox, limit=limit, offset=offset)

    async def deleted(self, inbox: str, *, by: str) -> list[DeletedMessage]:
        """The inbox's deleted messages still restorable, most recently deleted first."""
        self._admin(by, "see deleted messages")
        self._inbox(inbox)
        cut = self._clock() - RESTORE_WINDOW
        found = [
            m
            for m in await self._messages.list_inbox(inbox, deleted=True)
            if m.deleted_at is not None and m.deleted_at >= cut
        ]
        found.sort(key=lambda m: (m.deleted_at, m.id), reverse=True)
        return [DeletedMessage(m, m.deleted_at + RESTORE_WINDOW) for m in found if m.deleted_at]

    async def message(self, message_id: int, *, by: str) -> Message | None:
        """A message of any inbox, deleted or not (None once purged or never stored)."""
        self._admin(by, "see the messages of every inbox")
        return await self._messages.get(message_id)

    async def audit_trail(self, message_id: int, *, by: str) -> list[AuditEntry]:
        """Who did what to a message and when, oldest first (deleted messages too)."""
        self._admin(by, "see audit trails")
        trail = await self._messages.audit_trail(message_id)
        if not trail:
            raise NotFoundError(f"message {message_id} does not exist")
        return trail

    # -- hours -----------------------------------------------------------------------------

    async def hours(self, inbox: str, *, by: str) -> Now:
        """The period in force, its route, the override and when the period changes next."""
        self._admin(by, "see hours")
        return await self._routing.now(inbox, until=True)

    async def set_hours(self, inbox: str, override: object, *, by: str) -> Now:
        """Force ``inbox`` open or closed, or back to its schedule (``auto``)."""
        self._admin(by, "override hours")
        try:
            mode = Override(override) if isinstance(override, str) else None
        except ValueError:
            mode = None
        if mode is None:
            raise InvalidFieldsError(
                {"override": "must be open, closed or auto (back to the schedule)"}
            )
        return await self._routing.set_override(inbox, mode, by=by)

    # -- helpers ---------------------------------------------------------------------------

    def _admin(self, by: str, doing: str) -> None:
        require_admin(self._directory.current, by, doing)

    def _inbox(self, ext: str) -> Extension:
        found = self._directory.current.get(ext)
        if found is None:
            raise NotFoundError(f"there is no inbox {ext}")
        return found


def _by_ext(e: Extension) -> tuple[int, str]:
    return ext_sort_key(e.ext)
