"""Messages, their shared played/deleted state, inbox counts and the audit trail.

Every state change is one conditional UPDATE inside a write transaction, so two members acting
on the same message at once end in one consistent state: the first wins, the second is told
what happened (``Outcome.ALREADY`` or ``Outcome.GONE``) rather than getting an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiosqlite

from sipvm.domain.messages import (
    ActionResult,
    InboxCounts,
    MenuPlace,
    Message,
    NewMessage,
    Outcome,
)
from sipvm.storage.db import Database
from sipvm.storage.db import db_time as _ts
from sipvm.storage.db import parse_db_time as _dt


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail."""

    at: datetime
    actor: str
    action: str
    message_id: int | None
    inbox: str
    detail: str


_COLUMNS = (
    "id, uid, inbox, caller, caller_name, called, reason, received_at, duration_ms, urgent, "
    "audio, played_at, played_by, deleted_at, deleted_by, source_id, shared_by, note"
)
# New first, oldest first within each group: the order a desk-phone user hears them in.
_MENU_ORDER = "(played_at IS NOT NULL), received_at, id"
# Within one played group (new or played), in menu order: read along messages_by_inbox.
_IN_GROUP = "inbox = ? AND deleted_at IS NULL AND (played_at IS NOT NULL) = ?"
_AFTER_IN_GROUP = (
    f"SELECT {_COLUMNS} FROM messages WHERE {_IN_GROUP} AND (received_at, id) > (?, ?)"
    " ORDER BY received_at, id LIMIT ?"
)
_GROUP_FROM_START = (
    f"SELECT {_COLUMNS} FROM messages WHERE {_IN_GROUP} ORDER BY received_at, id LIMIT ?"
)


class SqliteMessageRepo:
    """Messages in the SQLite store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, new: NewMessage, *, actor: str, action: str = "deposit") -> Message:
        """Store a message whose audio is already durable, and audit it, in one transaction."""
        async with self._db.transaction() as conn:
            return await _insert(conn, new, actor=actor, action=action)

    async def insert_share(self, copy: NewMessage, *, source: Message, by: str) -> Message:
        """Store a shared copy (with the sharer's note, if any) and audit the share on both
        messages, in one transaction; the share's line on the source keeps the note too."""
        note = f"; note: {copy.note}" if copy.note else ""
        async with self._db.transaction() as conn:
            message = await _insert(conn, copy, actor=by, action="share-in")
            await write_audit(
                conn,
                copy.received_at,
                by,
                "share",
                source.id,
                source.inbox,
                f"to {copy.inbox} (message {message.id}){note}",
            )
        return message

    async def get(self, message_id: int) -> Message | None:
        """The message with that id, deleted or not; None if it never existed or was purged."""
        async with self._db.read() as conn:
            return await _get(conn, message_id)

    async def get_by_uid(self, uid: str) -> Message | None:
        """The message stored under that deposit uid, if any."""
        async with self._db.read() as conn:
            cursor = await conn.execute(f"SELECT {_COLUMNS} FROM messages WHERE uid = ?", (uid,))
            row = await cursor.fetchone()
        return _message(row) if row else None

    async def list_inbox(
        self,
        inbox: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        deleted: bool = False,
        after: MenuPlace | None = None,
    ) -> list[Message]:
        """The inbox's messages in menu order (new first, oldest first), or its deleted ones;
        with ``after``, those that come after that place (``offset`` is then not allowed)."""
        if after is not None:
            if offset or deleted:
                raise ValueError("a page after a place has no offset and no deleted messages")
            return await self._list_after(inbox, after, limit)
        where = "deleted_at IS NOT NULL" if deleted else "deleted_at IS NULL"
        sql = (
            f"SELECT {_COLUMNS} FROM messages WHERE inbox = ? AND {where}"
            f" ORDER BY {_MENU_ORDER} LIMIT ? OFFSET ?"
        )
        async with self._db.read() as conn:
            cursor = await conn.execute(sql, (inbox, -1 if limit is None else limit, offset))
            rows = await cursor.fetchall()
        return [_message(r) for r in rows]

    async def _list_after(self, inbox: str, place: MenuPlace, limit: int | None) -> list[Message]:
        # One index range per played group (equality on the index's played expression, then
        # received_at and id), so the page costs the same at the end of 100,000 messages as at
        # the start; a single row-value comparison over all three columns would not use it.
        after = (inbox, int(place.played), _ts(place.received_at), place.id)
        async with self._db.read() as conn:
            cursor = await conn.execute(_AFTER_IN_GROUP, (*after, -1 if limit is None else limit))
            rows = list(await cursor.fetchall())
            if not place.played and (limit is None or len(rows) < limit):  # on into the played
                left = -1 if limit is None else limit - len(rows)
                cursor = await conn.execute(_GROUP_FROM_START, (inbox, 1, left))
                rows += await cursor.fetchall()
        return [_message(r) for r in rows]

    async def counts(self, inboxes: Iterable[str]) -> dict[str, InboxCounts]:
        """New/old counts for each inbox asked for (zero counts for inboxes with none)."""
        wanted = list(inboxes)
        found = {ext: InboxCounts() for ext in wanted}
        if not wanted:
            return found
        marks = ",".join("?" * len(wanted))
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT inbox, new, old, urgent_new, urgent_old FROM inbox_counts"
                f" WHERE inbox IN ({marks})",
                wanted,
            )
            for row in await cursor.fetchall():
                found[row[0]] = InboxCounts(row[1], row[2], row[3], row[4])
        return found

    async def mark_played(self, message_id: int, *, by: str, at: datetime) -> ActionResult:
        """Mark played for every member; ALREADY if someone played it before."""
        return await self._change(
            message_id,
            "UPDATE messages SET played_at = ?, played_by = ?"
            " WHERE id = ? AND deleted_at IS NULL AND played_at IS NULL",
            (_ts(at), by, message_id),
            by=by,
            at=at,
            action="play",
        )

    async def mark_new(self, message_id: int, *, by: str, at: datetime) -> ActionResult:
        """Mark unplayed again for every member; ALREADY if it is unplayed."""
        return await self._change(
            message_id,
            "UPDATE messages SET played_at = NULL, played_by = NULL"
            " WHERE id = ? AND deleted_at IS NULL AND played_at IS NOT NULL",
            (message_id,),
            by=by,
            at=at,
            action="mark-new",
        )

    async def delete(self, message_id: int, *, by: str, at: datetime) -> ActionResult:
        """Delete for everyone (restorable until purged); ALREADY if someone deleted it first."""
        return await self._change(
            message_id,
            "UPDATE messages SET deleted_at = ?, deleted_by = ?"
            " WHERE id = ? AND deleted_at IS NULL",
            (_ts(at), by, message_id),
            by=by,
            at=at,
            action="delete",
            gone_when_deleted=False,
        )

    async def restore(self, message_id: int, *, by: str, at: datetime) -> ActionResult:
        """Bring a deleted message back for everyone; ALREADY if it is not deleted."""
        return await self._change(
            message_id,
            "UPDATE messages SET deleted_at = NULL, deleted_by = NULL"
            " WHERE id = ? AND deleted_at IS NOT NULL",
            (message_id,),
            by=by,
            at=at,
            action="restore",
            gone_when_deleted=False,
        )

    async def record(
        self, *, actor: str, action: str, message: Message, at: datetime, detail: str = ""
    ) -> None:
        """Add an audit line for an action that changes no state (a download, say)."""
        async with self._db.transaction() as conn:
            await write_audit(conn, at, actor, action, message.id, message.inbox, detail)

    async def purge_deleted(self, *, deleted_before: datetime, at: datetime) -> list[Message]:
        """Remove messages deleted before the cut-off; returns them so their audio can go."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE deleted_at IS NOT NULL AND deleted_at < ?",
                (_ts(deleted_before),),
            )
            purged = [_message(r) for r in await cursor.fetchall()]
            for m in purged:
                await conn.execute("DELETE FROM messages WHERE id = ?", (m.id,))
                await write_audit(conn, at, "system", "purge", m.id, m.inbox, "")
        return purged

    async def audio_in_use(self, audio: str) -> bool:
        """Whether any stored message (deleted or not) still uses that audio file."""
        async with self._db.read() as conn:
            cursor = await conn.execute("SELECT 1 FROM messages WHERE audio = ? LIMIT 1", (audio,))
            return await cursor.fetchone() is not None

    async def audit_trail(self, message_id: int) -> list[AuditEntry]:
        """Every audit line about one message, oldest first."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT at, actor, action, message_id, inbox, detail FROM audit"
                " WHERE message_id = ? ORDER BY id",
                (message_id,),
            )
            rows = await cursor.fetchall()
        return [AuditEntry(_dt(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in rows]

    async def _change(
        self,
        message_id: int,
        sql: str,
        params: Sequence[Any],
        *,
        by: str,
        at: datetime,
        action: str,
        gone_when_deleted: bool = True,
    ) -> ActionResult:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(sql, params)
            changed = cursor.rowcount == 1
            message = await _get(conn, message_id)
            if message is None:
                return ActionResult(Outcome.GONE, None)
            if changed:
                await write_audit(conn, at, by, action, message_id, message.inbox, "")
                return ActionResult(Outcome.DONE, message)
        if message.deleted and gone_when_deleted:
            return ActionResult(Outcome.GONE, message)
        return ActionResult(Outcome.ALREADY, message)


async def _insert(
    conn: aiosqlite.Connection, new: NewMessage, *, actor: str, action: str
) -> Message:
    cursor = await conn.execute(
        "INSERT INTO messages (uid, inbox, caller, caller_name, called, reason,"
        " received_at, duration_ms, urgent, audio, source_id, shared_by, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.uid,
            new.inbox,
            new.caller,
            new.caller_name,
            new.called,
            new.reason,
            _ts(new.received_at),
            new.duration_ms,
            int(new.urgent),
            new.audio,
            new.source_id,
            new.shared_by,
            new.note,
        ),
    )
    message_id = cursor.lastrowid
    if message_id is None:
        raise RuntimeError("SQLite returned no id for an inserted message")
    detail = f"from {new.shared_by} (message {new.source_id})" if new.shared_by else ""
    await write_audit(conn, new.received_at, actor, action, message_id, new.inbox, detail)
    message = await _get(conn, message_id)
    if message is None:
        raise RuntimeError(f"message {message_id} vanished inside its own transaction")
    return message


async def _get(conn: aiosqlite.Connection, message_id: int) -> Message | None:
    cursor = await conn.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (message_id,))
    row = await cursor.fetchone()
    return _message(row) if row else None


async def write_audit(
    conn: aiosqlite.Connection,
    at: datetime,
    actor: str,
    action: str,
    message_id: int | None,
    inbox: str,
    detail: str,
) -> None:
    """Add one audit line inside the caller's transaction."""
    await conn.execute(
        "INSERT INTO audit (at, actor, action, message_id, inbox, detail)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (_ts(at), actor, action, message_id, inbox, detail),
    )


def _message(row: Any) -> Message:
    return Message(
        id=row[0],
        uid=row[1],
        inbox=row[2],
        caller=row[3],
        caller_name=row[4],
        called=row[5],
        reason=row[6],
        received_at=_dt(row[7]),
        duration_ms=row[8],
        urgent=bool(row[9]),
        audio=row[10],
        played_at=_dt(row[11]) if row[11] else None,
        played_by=row[12],
        deleted_at=_dt(row[13]) if row[13] else None,
        deleted_by=row[14],
        source_id=row[15],
        shared_by=row[16],
        note=row[17],
    )
