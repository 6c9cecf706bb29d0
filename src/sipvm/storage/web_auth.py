"""Web sessions and API tokens (SQLite): each row keyed by the SHA-256 of its token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sipvm.storage.db import Database, db_time, parse_db_time


@dataclass(frozen=True)
class StoredSession:
    """A signed-in browser."""

    ext: str
    created_at: datetime
    seen_at: datetime


@dataclass(frozen=True)
class ApiToken:
    """An API bearer token (its secret is never stored)."""

    id: int
    ext: str
    created_at: datetime
    revoked_at: datetime | None


class SqliteWebAuthRepo:
    """The ``web_sessions`` and ``api_tokens`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- sessions --------------------------------------------------------------------------

    async def add_session(self, token_hash: str, ext: str, at: datetime) -> None:
        """Store a new session."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO web_sessions (token_hash, ext, created_at, seen_at)"
                " VALUES (?, ?, ?, ?)",
                (token_hash, ext, db_time(at), db_time(at)),
            )

    async def session(self, token_hash: str) -> StoredSession | None:
        """The session stored under ``token_hash``, if any."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT ext, created_at, seen_at FROM web_sessions WHERE token_hash = ?",
                (token_hash,),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return StoredSession(str(row[0]), parse_db_time(row[1]), parse_db_time(row[2]))

    async def touch_session(self, token_hash: str, at: datetime) -> None:
        """Record a request of the session at ``at`` (its idle time starts again)."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE web_sessions SET seen_at = ? WHERE token_hash = ? AND seen_at < ?",
                (db_time(at), token_hash, db_time(at)),
            )

    async def remove_session(self, token_hash: str) -> bool:
        """Forget a session; False when there was none."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,)
            )
            return cursor.rowcount > 0

    async def remove_idle_sessions(self, seen_before: datetime) -> int:
        """Forget every session not seen since ``seen_before``; returns how many."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM web_sessions WHERE seen_at < ?", (db_time(seen_before),)
            )
            return cursor.rowcount

    # -- API tokens ------------------------------------------------------------------------

    async def add_token(self, token_hash: str, ext: str, at: datetime) -> int:
        """Store a new API token; returns its id."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO api_tokens (token_hash, ext, created_at) VALUES (?, ?, ?)",
                (token_hash, ext, db_time(at)),
            )
            return int(cursor.lastrowid or 0)

    async def token(self, token_id: int) -> tuple[ApiToken, str] | None:
        """The token ``token_id`` and its stored hash, if any."""
        async with self._db.read() as conn:
            cursor = await conn.execute(
                "SELECT id, ext, created_at, revoked_at, token_hash FROM api_tokens WHERE id = ?",
                (token_id,),
            )
            row = await cursor.fetchone()
        if row is None:
            return None
        return _token(row), str(row[4])

    async def tokens(self, ext: str | None = None) -> list[ApiToken]:
        """Every token (of ``ext``), oldest first, revoked ones included."""
        query = "SELECT id, ext, created_at, revoked_at FROM api_tokens"
        params: tuple[str, ...] = ()
        if ext is not None:
            query += " WHERE ext = ?"
            params = (ext,)
        async with self._db.read() as conn:
            cursor = await conn.execute(query + " ORDER BY id", params)
            rows = await cursor.fetchall()
        return [_token(row) for row in rows]

    async def revoke_tokens(
        self, at: datetime, *, ext: str | None = None, token_id: int | None = None
    ) -> list[int]:
        """Revoke the working tokens of ``ext`` or the token ``token_id``; returns their ids."""
        if (ext is None) == (token_id is None):
            raise ValueError("revoke by extension or by id")
        column, key = ("ext", ext) if ext is not None else ("id", token_id)
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"SELECT id FROM api_tokens WHERE {column} = ? AND revoked_at IS NULL ORDER BY id",
                (key,),
            )
            ids = [int(row[0]) for row in await cursor.fetchall()]
            await conn.execute(
                f"UPDATE api_tokens SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL",
                (db_time(at), key),
            )
        return ids


def _token(row: Any) -> ApiToken:
    return ApiToken(
        id=int(row[0]),
        ext=str(row[1]),
        created_at=parse_db_time(row[2]),
        revoked_at=parse_db_time(row[3]) if row[3] else None,
    )
