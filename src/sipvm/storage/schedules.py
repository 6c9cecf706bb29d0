"""Schedule overrides set from the CLI (force open / force closed), per inbox."""

from __future__ import annotations

from datetime import datetime

from sipvm.domain.routing import Override
from sipvm.storage.db import Database, db_time


class SqliteOverrideRepo:
    """The ``schedule_overrides`` table; no row means ``Override.AUTO``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, inbox: str) -> Override:
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT mode FROM schedule_overrides WHERE inbox = ?", (inbox,)
            )
            row = await cursor.fetchone()
        return Override(row[0]) if row else Override.AUTO

    async def set(self, inbox: str, mode: Override, *, by: str, at: datetime) -> None:
        async with self._db.transaction() as conn:
            if mode is Override.AUTO:
                await conn.execute("DELETE FROM schedule_overrides WHERE inbox = ?", (inbox,))
                return
            await conn.execute(
                "INSERT INTO schedule_overrides (inbox, mode, set_by, set_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (inbox) DO UPDATE SET mode = excluded.mode,"
                " set_by = excluded.set_by, set_at = excluded.set_at",
                (inbox, mode.value, by, db_time(at)),
            )
