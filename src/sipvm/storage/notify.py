"""What the notifier keeps in the store: its cursors and the email outbox.

The notifier reads the audit log (every change to a message is one audit line, written in the
same transaction as the change) and the directory revisions from its cursors. Emails it decides
to send are written to the outbox in the same transaction that moves the cursor, so an event
is turned into emails exactly once, even across restarts and several processes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sipvm.storage.db import Database, db_time, parse_db_time
from sipvm.storage.messages import write_audit

AUDIT = "audit"
DIRECTORY = "directory"


@dataclass(frozen=True)
class AuditEvent:
    """One audit line as the notifier sees it."""

    id: int
    action: str
    message_id: int | None
    inbox: str


@dataclass(frozen=True)
class NewEmail:
    """An email to queue."""

    kind: str
    """``new-message`` or ``access-granted``."""
    recipient: str
    address: str
    message_id: int | None = None
    inbox: str = ""
    detail: Any = None
    """JSON-able data the email needs (access-granted: the inboxes)."""


@dataclass(frozen=True)
class QueuedEmail:
    """An email in the outbox."""

    id: int
    kind: str
    recipient: str
    address: str
    message_id: int | None
    inbox: str
    detail: Any
    created_at: datetime
    attempts: int
    next_at: datetime
    last_error: str
    status: str


@dataclass
class Outbox:
    """What ``SqliteNotifyRepo.outbox`` reports."""

    pending: list[QueuedEmail] = field(default_factory=list)
    failed: list[QueuedEmail] = field(default_factory=list)


_OUTBOX_COLUMNS = (
    "id, kind, recipient, address, message_id, inbox, detail, created_at, attempts, next_at, "
    "last_error, status"
)


class SqliteNotifyRepo:
    """Cursors and the email outbox in the SQLite store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def cursor(self, name: str) -> int:
        """Where the notifier stopped reading ``audit`` or ``directory``."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT position FROM notify_cursors WHERE name = ?", (name,)
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def audit_since(self, after: int, limit: int = 500) -> list[AuditEvent]:
        """Audit lines after id ``after``, oldest first."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT id, action, message_id, inbox FROM audit WHERE id > ? ORDER BY id LIMIT ?",
                (after, limit),
            )
            rows = await cursor.fetchall()
        return [AuditEvent(int(r[0]), r[1], r[2], r[3]) for r in rows]

    async def newest(self) -> tuple[int, int]:
        """The newest audit id and directory revision: cheap, for noticing changes."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM audit),"
                " (SELECT COALESCE(MAX(rev), 0) FROM directory_revisions)"
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    async def advance(
        self, name: str, *, old: int, new: int, emails: Sequence[NewEmail], at: datetime
    ) -> bool:
        """Move cursor ``name`` from ``old`` to ``new`` and queue ``emails``, in one transaction.

        False (nothing written) when the cursor was no longer at ``old``: another process
        handled those events.
        """
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE notify_cursors SET position = ? WHERE name = ? AND position = ?",
                (new, name, old),
            )
            if cursor.rowcount != 1:
                return False
            now = db_time(at)
            await conn.executemany(
                "INSERT INTO email_outbox (kind, recipient, address, message_id, inbox, detail,"
                " created_at, next_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.kind,
                        e.recipient,
                        e.address,
                        e.message_id,
                        e.inbox,
                        "" if e.detail is None else json.dumps(e.detail),
                        now,
                        now,
                    )
                    for e in emails
                ],
            )
        return True

    async def due(self, now: datetime, limit: int = 20) -> list[QueuedEmail]:
        """Pending emails whose time has come, oldest first."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                f"SELECT {_OUTBOX_COLUMNS} FROM email_outbox"
                " WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?",
                (db_time(now), limit),
            )
            rows = await cursor.fetchall()
        return [_queued(r) for r in rows]

    async def next_due(self) -> datetime | None:
        """When the next pending email is due (None: the outbox is empty)."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT MIN(next_at) FROM email_outbox WHERE status = 'pending'"
            )
            row = await cursor.fetchone()
        return parse_db_time(row[0]) if row and row[0] else None

    async def sent(self, email: QueuedEmail, *, at: datetime, detail: str) -> None:
        """Remove a sent email; a new-message email is audited on its message."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM email_outbox WHERE id = ?", (email.id,))
            if email.message_id is not None:
                await write_audit(
                    conn, at, "system", "email", email.message_id, email.inbox, detail
                )

    async def dropped(self, email: QueuedEmail) -> None:
        """Remove an email that no longer needs sending (its message was deleted, say)."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM email_outbox WHERE id = ?", (email.id,))

    async def retry_later(self, email: QueuedEmail, *, next_at: datetime, error: str) -> None:
        """Count a failed attempt and set when to try again."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE email_outbox SET attempts = attempts + 1, next_at = ?, last_error = ?"
                " WHERE id = ?",
                (db_time(next_at), error, email.id),
            )

    async def give_up(self, email: QueuedEmail, *, error: str) -> None:
        """Keep a failed email for the admin to see (``sipvm email queue``), no more retries."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE email_outbox SET attempts = attempts + 1, status = 'failed',"
                " last_error = ? WHERE id = ?",
                (error, email.id),
            )

    async def outbox(self) -> Outbox:
        """Every queued email, pending and failed."""
        async with self._db.read() as conn:
            cursor = await conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM email_outbox ORDER BY id")
            rows = await cursor.fetchall()
        found = Outbox()
        for row in rows:
            email = _queued(row)
            (found.pending if email.status == "pending" else found.failed).append(email)
        return found

    async def retry_failed(self, now: datetime) -> int:
        """Put every given-up email back in the queue, due now; returns how many."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE email_outbox SET status = 'pending', attempts = 0, next_at = ?,"
                " created_at = ? WHERE status = 'failed'",
                (db_time(now), db_time(now)),
            )
            return int(cursor.rowcount)


def _queued(row: Any) -> QueuedEmail:
    return QueuedEmail(
        id=int(row[0]),
        kind=row[1],
        recipient=row[2],
        address=row[3],
        message_id=row[4],
        inbox=row[5],
        detail=json.loads(row[6]) if row[6] else None,
        created_at=parse_db_time(row[7]),
        attempts=int(row[8]),
        next_at=parse_db_time(row[9]),
        last_error=row[10],
        status=row[11],
    )
