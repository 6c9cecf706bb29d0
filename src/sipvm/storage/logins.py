"""Failed logins, lockouts and PINs changed by phone (SQLite, survives restarts)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from sipvm.domain.lockout import LockoutPolicy, LockScope
from sipvm.storage.db import Database, db_time, parse_db_time


@dataclass(frozen=True)
class FailureCounts:
    """Failures within the policy window after one more was recorded, and locks it set."""

    extension: int
    source: int
    locked: tuple[LockScope, ...]
    until: datetime | None


class SqliteLoginRepo:
    """The ``login_failures``, ``login_locks`` and ``phone_pins`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def locked_until(self, ext: str, source: str, now: datetime) -> datetime | None:
        """The end of the latest lock on ``ext`` or ``source`` still in force at ``now``."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT max(until) FROM login_locks WHERE until > ? AND"
                " ((scope = 'ext' AND key = ?) OR (scope = 'source' AND key = ?))",
                (db_time(now), ext, source),
            )
            row = await cursor.fetchone()
        return parse_db_time(row[0]) if row and row[0] else None

    async def record_failure(
        self, ext: str, source: str, at: datetime, policy: LockoutPolicy
    ) -> FailureCounts:
        """Count one failure; set the locks the policy calls for (one transaction)."""
        since = db_time(at - policy.window)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO login_failures (at, ext, source) VALUES (?, ?, ?)",
                (db_time(at), ext, source),
            )
            # Old failures no longer count for anything.
            await conn.execute("DELETE FROM login_failures WHERE at <= ?", (since,))
            by_ext = await _count(conn, "ext", ext, since)
            by_source = await _count(conn, "source", source, since)
            scopes = policy.locks_after(by_ext, by_source)
            until = at + policy.lock_for
            for scope in scopes:
                key = ext if scope is LockScope.EXTENSION else source
                await conn.execute(
                    "INSERT INTO login_locks (scope, key, until) VALUES (?, ?, ?)"
                    " ON CONFLICT (scope, key) DO UPDATE SET until = excluded.until",
                    (scope.value, key, db_time(until)),
                )
                # A lock starts a fresh count: the next failures after it lifts count anew.
                await conn.execute(f"DELETE FROM login_failures WHERE {scope.value} = ?", (key,))
        return FailureCounts(by_ext, by_source, tuple(scopes), until if scopes else None)

    async def clear_failures(self, ext: str) -> None:
        """Forget an extension's failures after a successful login."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM login_failures WHERE ext = ?", (ext,))

    async def phone_pin(self, ext: str) -> tuple[str, str] | None:
        """``(pin_hash, directory_hash)`` of a PIN set by phone, if any."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT pin_hash, directory_hash FROM phone_pins WHERE ext = ?", (ext,)
            )
            row = await cursor.fetchone()
        return (str(row[0]), str(row[1])) if row else None

    async def set_phone_pin(
        self, ext: str, pin_hash: str, *, directory_hash: str, at: datetime
    ) -> None:
        """Store a PIN set by phone, remembering the directory PIN it replaces."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO phone_pins (ext, pin_hash, directory_hash, changed_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (ext) DO UPDATE SET"
                " pin_hash = excluded.pin_hash, directory_hash = excluded.directory_hash,"
                " changed_at = excluded.changed_at",
                (ext, pin_hash, directory_hash, db_time(at)),
            )


async def _count(conn: aiosqlite.Connection, column: str, key: str, since: str) -> int:
    cursor = await conn.execute(
        f"SELECT count(*) FROM login_failures WHERE {column} = ? AND at > ?", (key, since)
    )
    row = await cursor.fetchone()
    return int(row[0]) if row else 0
