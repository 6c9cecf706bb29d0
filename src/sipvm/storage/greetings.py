"""Greeting rows: which converted file is in force for each inbox and kind (migration 0002)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sipvm.domain.greetings import Greeting
from sipvm.storage.db import Database

_COLUMNS = "inbox, kind, audio, duration_ms, uploaded_at, uploaded_by"


class SqliteGreetingRepo:
    """Greetings in the SQLite store."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put(self, greeting: Greeting) -> str | None:
        """Make ``greeting`` the one in force; returns the audio path it replaced, if any."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "SELECT audio FROM greetings WHERE inbox = ? AND kind = ?",
                (greeting.inbox, greeting.kind),
            )
            old = await cursor.fetchone()
            await conn.execute(
                f"INSERT INTO greetings ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (inbox, kind) DO UPDATE SET"
                " audio = excluded.audio, duration_ms = excluded.duration_ms,"
                " uploaded_at = excluded.uploaded_at, uploaded_by = excluded.uploaded_by",
                (
                    greeting.inbox,
                    greeting.kind,
                    greeting.audio,
                    greeting.duration_ms,
                    greeting.uploaded_at.astimezone(UTC).isoformat(),
                    greeting.uploaded_by,
                ),
            )
        return str(old[0]) if old else None

    async def get(self, inbox: str, kind: str) -> Greeting | None:
        """The greeting in force, or None."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM greetings WHERE inbox = ? AND kind = ?", (inbox, kind)
            )
            row = await cursor.fetchone()
        return _greeting(row) if row else None

    async def list(self, inbox: str) -> list[Greeting]:
        """Every greeting of an inbox, by kind name."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                f"SELECT {_COLUMNS} FROM greetings WHERE inbox = ? ORDER BY kind", (inbox,)
            )
            rows = await cursor.fetchall()
        return [_greeting(r) for r in rows]

    async def remove(self, inbox: str, kind: str) -> Greeting | None:
        """Remove a greeting; returns it, or None when there was none."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"DELETE FROM greetings WHERE inbox = ? AND kind = ? RETURNING {_COLUMNS}",
                (inbox, kind),
            )
            rows = list(await cursor.fetchall())  # step to the end before COMMIT
        return _greeting(rows[0]) if rows else None


def _greeting(row: Any) -> Greeting:
    return Greeting(
        inbox=str(row[0]),
        kind=str(row[1]),
        audio=str(row[2]),
        duration_ms=int(row[3]),
        uploaded_at=datetime.fromisoformat(str(row[4])),
        uploaded_by=str(row[5]),
    )
