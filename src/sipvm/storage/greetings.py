"""Greeting rows: which file is in force for each inbox and kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sipvm.storage.db import Database


@dataclass(frozen=True)
class Greeting:
    """A greeting in force."""

    inbox: str
    kind: str
    audio: str
    """Path relative to the data directory."""
    duration_ms: int
    uploaded_at: datetime
    uploaded_by: str

    @property
    def duration_s(self) -> float:
        return self.duration_ms / 1000


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
                "INSERT INTO greetings (inbox, kind, audio, duration_ms, uploaded_at, uploaded_by)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (inbox, kind) DO UPDATE SET"
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
                "SELECT inbox, kind, audio, duration_ms, uploaded_at, uploaded_by FROM greetings"
                " WHERE inbox = ? AND kind = ?",
                (inbox, kind),
            )
            row = await cursor.fetchone()
        return _greeting(row) if row else None

    async def list(self, inbox: str) -> list[Greeting]:
        """Every greeting of an inbox, by kind."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT inbox, kind, audio, duration_ms, uploaded_at, uploaded_by FROM greetings"
                " WHERE inbox = ? ORDER BY kind",
                (inbox,),
            )
            rows = await cursor.fetchall()
        return [_greeting(r) for r in rows]

    async def remove(self, inbox: str, kind: str) -> str | None:
        """Remove a greeting; returns its audio path, or None when there was none."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM greetings WHERE inbox = ? AND kind = ? RETURNING audio",
                (inbox, kind),
            )
            row = await cursor.fetchone()
        return str(row[0]) if row else None


def _greeting(row: Any) -> Greeting:
    return Greeting(
        inbox=str(row[0]),
        kind=str(row[1]),
        audio=str(row[2]),
        duration_ms=int(row[3]),
        uploaded_at=datetime.fromisoformat(str(row[4])),
        uploaded_by=str(row[5]),
    )
