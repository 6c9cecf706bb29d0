"""The notifier: follows the store and turns changes into lamps and queued emails.

Every change to a message is an audit line written in the change's own transaction, whoever
made it (a call in this process, the ``sipvm`` command, another worker). The notifier polls the
audit log and the directory revisions every ``poll_s``:
- audit lines that change counts (deposit, play, mark-new, delete, restore, share, recovery)
  → ``MwiNotifier.changed`` for their inboxes;
- new messages → one queued email per recipient, queued in the same transaction that moves the
  stored ``audit`` cursor (exactly once, across restarts);
- a new directory revision → the directory in force is reloaded, lamps follow the new
  membership, and newly granted members are emailed (``directory`` cursor).
Only one process per store should run it (``sipvm serve`` does, once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime

from sipvm.domain.model import Directory
from sipvm.domain.notifications import new_grants, new_message_targets
from sipvm.notify.mwi import MwiNotifier
from sipvm.services.directory import DirectoryService
from sipvm.storage.notify import AUDIT, DIRECTORY, AuditEvent, NewEmail, SqliteNotifyRepo

log = logging.getLogger(__name__)

#: Audit actions after which an inbox's new/old counts may differ.
COUNT_ACTIONS = frozenset(
    {"deposit", "recover", "share-in", "play", "mark-new", "delete", "restore"}
)
#: Audit actions that put a new message in an inbox.
NEW_MESSAGE_ACTIONS = frozenset({"deposit", "recover", "share-in"})
#: Audit lines read per round.
BATCH = 500


class Notifier:
    """Polls the store for changes; see the module docstring."""

    def __init__(
        self,
        *,
        directory: DirectoryService,
        repo: SqliteNotifyRepo,
        mwi: MwiNotifier | None,
        email: bool,
        clock: Callable[[], datetime],
        poll_s: float = 0.25,
        on_queued: Callable[[], None] = lambda: None,
        on_audit: Callable[[Sequence[AuditEvent]], None] = lambda events: None,
    ) -> None:
        """``on_audit`` gets every new audit line, in order, as it is read, and ``()`` at the end
        of each round (the portal's live updates; a new directory revision is news too)."""
        self._directory = directory
        self._repo = repo
        self._mwi = mwi
        self._email = email
        self._clock = clock
        self._poll_s = poll_s
        self._on_queued = on_queued
        self._on_audit = on_audit
        self._lamps_directory: Directory | None = None
        self._lamps_seen = 0
        self._audit_cursor = 0
        self._directory_cursor = 0

    async def start(self) -> None:
        """Load the cursors, send every lamp's state, catch up on emails missed while down.

        The first poll hands the directory to the lamps, which sends every phone its state.
        """
        self._lamps_seen, _ = await self._repo.newest()
        self._audit_cursor = await self._repo.cursor(AUDIT)
        self._directory_cursor = await self._repo.cursor(DIRECTORY)
        await self.poll()

    async def run(self) -> None:
        """Poll until cancelled (a failed round is logged and the next one tries again)."""
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.poll()
            except Exception:
                log.exception("notifier: reading changes failed; trying again")

    async def poll(self) -> None:
        """One round: directory changes first (membership), then message changes."""
        newest_audit, newest_rev = await self._repo.newest()
        if newest_rev != self._directory.rev:
            await self._directory.refresh()
        if self._mwi is not None and self._directory.current is not self._lamps_directory:
            self._lamps_directory = self._directory.current
            self._mwi.set_directory(self._directory.current)
        if self._directory_cursor < self._directory.rev:
            await self._grants()
        if newest_audit > self._lamps_seen:
            await self._lamps(newest_audit)
        if newest_audit > self._audit_cursor:
            await self._new_messages(newest_audit)
        self._on_audit(())

    async def _lamps(self, newest: int) -> None:
        while self._lamps_seen < newest:
            events = await self._repo.audit_since(self._lamps_seen, BATCH)
            if not events:
                break
            if self._mwi is not None:
                self._mwi.changed(e.inbox for e in events if e.action in COUNT_ACTIONS)
            self._on_audit(events)
            self._lamps_seen = events[-1].id

    async def _new_messages(self, newest: int) -> None:
        queued = 0
        while self._audit_cursor < newest:
            events = await self._repo.audit_since(self._audit_cursor, BATCH)
            if not events:
                break
            emails = self._message_emails(events) if self._email else []
            old, new = self._audit_cursor, events[-1].id
            if await self._repo.advance(AUDIT, old=old, new=new, emails=emails, at=self._clock()):
                self._audit_cursor = new
                queued += len(emails)
            else:  # another process took these events
                self._audit_cursor = await self._repo.cursor(AUDIT)
        if queued:
            log.info("queued %d notification emails", queued)
            self._on_queued()

    def _message_emails(self, events: list[AuditEvent]) -> list[NewEmail]:
        directory = self._directory.current
        return [
            NewEmail("new-message", t.recipient, t.address, message_id=e.message_id, inbox=e.inbox)
            for e in events
            if e.action in NEW_MESSAGE_ACTIONS and e.message_id is not None
            for t in new_message_targets(directory, e.inbox)
        ]

    async def _grants(self) -> None:
        old, new = self._directory_cursor, self._directory.rev
        emails: list[NewEmail] = []
        if self._email and old > 0:  # the first directory is provisioning, not a grant
            before = await self._directory.revision(old)
            after = self._directory.current
            granted = new_grants(before, after) if before is not None else {}
            for member, inboxes in granted.items():
                address = after.extensions[member].email or ""
                emails.append(
                    NewEmail(
                        "access-granted",
                        member,
                        address,
                        detail=[asdict(g) for g in inboxes],
                    )
                )
        if await self._repo.advance(DIRECTORY, old=old, new=new, emails=emails, at=self._clock()):
            self._directory_cursor = new
            if emails:
                log.info("queued %d access-granted emails (revision %d)", len(emails), new)
                self._on_queued()
        else:
            self._directory_cursor = await self._repo.cursor(DIRECTORY)
