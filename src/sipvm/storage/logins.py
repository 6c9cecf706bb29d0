"""Failed logins, lockouts (with each key's locks in a row) and PINs changed by phone (SQLite,
survives restarts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import aiosqlite

from sipvm.domain.lockout import Lock, LockoutPolicy, LockScope
from sipvm.storage.db import Database, db_time, parse_db_time


@dataclass(frozen=True)
class FailureCounts:
    """Failures within the policy window after one more was recorded, and the locks it set."""

    failures: Mapping[LockScope, int]
    locks: tuple[Lock, ...]


@dataclass(frozen=True)
class LoginKeys:
    """What one login attempt is counted under, per scope."""

    ext: str
    """The extension typed (or the opaque key of one that does not exist)."""
    source: str
    """``<peer>/<caller id>``."""
    peer: str
    """The peer address."""

    def key(self, scope: LockScope) -> str:
        """The key of this attempt in ``scope``."""
        if scope is LockScope.EXTENSION:
            return self.ext
        if scope is LockScope.SOURCE:
            return self.source
        return self.peer


#: The ``login_failures`` column each scope counts.
_COLUMNS: Mapping[LockScope, str] = {
    LockScope.EXTENSION: "ext",
    LockScope.SOURCE: "source",
    LockScope.PEER: "peer",
}


class SqliteLoginRepo:
    """The ``login_failures``, ``login_locks`` and ``phone_pins`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def locked_until(self, keys: LoginKeys, now: datetime) -> datetime | None:
        """The end of the latest lock on any of ``keys`` still in force at ``now``."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT max(until) FROM login_locks WHERE until > ? AND"
                " ((scope = 'ext' AND key = ?) OR (scope = 'source' AND key = ?)"
                " OR (scope = 'peer' AND key = ?))",
                (db_time(now), keys.ext, keys.source, keys.peer),
            )
            row = await cursor.fetchone()
        return parse_db_time(row[0]) if row and row[0] else None

    async def record_failure(
        self, keys: LoginKeys, at: datetime, policy: LockoutPolicy
    ) -> FailureCounts:
        """Count one failure; set the locks the policy calls for (one transaction)."""
        since = db_time(at - policy.window)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO login_failures (at, ext, source, peer) VALUES (?, ?, ?, ?)",
                (db_time(at), keys.ext, keys.source, keys.peer),
            )
            # Old failures no longer count for anything, nor do locks too old to escalate.
            await conn.execute("DELETE FROM login_failures WHERE at <= ?", (since,))
            await conn.execute(
                "DELETE FROM login_locks WHERE until <= ?", (db_time(at - policy.forgive_after),)
            )
            failures = {
                scope: await _count(conn, column, keys.key(scope), since)
                for scope, column in _COLUMNS.items()
            }
            locks: list[Lock] = []
            for scope in policy.locks_after(failures):
                key = keys.key(scope)
                cursor = await conn.execute(
                    "SELECT strikes, until FROM login_locks WHERE scope = ? AND key = ?",
                    (scope.value, key),
                )
                row = await cursor.fetchone()
                previous, previous_until = (
                    (int(row[0]), parse_db_time(row[1])) if row else (0, None)
                )
                lock = policy.lock(scope, at, previous, previous_until)
                await conn.execute(
                    "INSERT INTO login_locks (scope, key, until, strikes) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (scope, key) DO UPDATE SET until = excluded.until,"
                    " strikes = excluded.strikes",
                    (scope.value, key, db_time(lock.until), lock.strike),
                )
                # A lock starts a fresh count: the next failures after it lifts count anew.
                await conn.execute(
                    f"DELETE FROM login_failures WHERE {_COLUMNS[scope]} = ?", (key,)
                )
                locks.append(lock)
        return FailureCounts(failures, tuple(locks))

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
