"""The SQLite database: opening (WAL, busy timeout), numbered migrations, transactions.

One aiosqlite connection per process. aiosqlite runs every statement on one thread, so two
asyncio tasks could interleave statements inside each other's transaction: an asyncio lock
makes each ``transaction()`` and ``read()`` block exclusive within the process. Between
processes, ``BEGIN IMMEDIATE`` plus the busy timeout serialise writers; WAL lets readers go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import aiosqlite

from sipvm.errors import StorageError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000


def migrations() -> list[tuple[int, str]]:
    """The numbered migrations shipped in ``sipvm.storage.migrations``, in order."""
    found = []
    for entry in resources.files("sipvm.storage.migrations").iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text(encoding="utf-8")))
    return sorted(found)


class Database:
    """An open store; build with ``await Database.open(path)``."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = await aiosqlite.connect(
                path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = await (await conn.execute("PRAGMA journal_mode = WAL")).fetchone()
            # FULL: a message the caller was told is saved survives a power cut too.
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StorageError(
                f"cannot open the store {path}: {exc}; "
                "check the --data directory and its permissions"
            ) from exc
        if mode is None or str(mode[0]).lower() != "wal":
            log.warning(
                "store %s is not in WAL mode (%s); concurrent access will be slower", path, mode
            )
        db = cls(conn, path)
        await db._migrate()
        return db

    async def close(self) -> None:
        """Close the connection (waits for a running transaction to end)."""
        async with self._lock:
            await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: taken at once (BEGIN IMMEDIATE), committed or rolled back whole."""
        async with self._lock:
            await self._begin("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection for reads (one consistent snapshot for the block)."""
        async with self._lock:
            await self._begin("BEGIN")
            try:
                yield self._conn
            finally:
                await self._conn.execute("COMMIT")

    async def _begin(self, statement: str) -> None:
        """Start a transaction; a task cancelled meanwhile leaves no transaction open.

        aiosqlite runs a queued statement even when the task awaiting it is cancelled, so a
        BEGIN waiting on another process's lock would otherwise open a transaction that nobody
        ends: every later BEGIN on this connection would fail. On cancellation the BEGIN is
        waited for and rolled back before the connection is given up (repeated cancellations
        wait too: it is one statement, bounded by the busy timeout)."""
        begin = asyncio.ensure_future(self._conn.execute(statement))
        try:
            await asyncio.shield(begin)
        except asyncio.CancelledError:
            cleanup = asyncio.ensure_future(self._roll_back_after(begin))
            while not cleanup.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(cleanup)
            raise

    async def _roll_back_after(self, begin: asyncio.Future[aiosqlite.Cursor]) -> None:
        try:
            await begin
        except sqlite3.Error:
            return  # it did not begin: nothing to end
        await self._conn.execute("ROLLBACK")

    async def _migrate(self) -> None:
        async with self.transaction() as conn:
            row = await (await conn.execute("PRAGMA user_version")).fetchone()
            current = int(row[0]) if row else 0
            known = migrations()
            newest = known[-1][0] if known else 0
            if current > newest:
                raise StorageError(
                    f"the store {self.path} has schema version {current}, newer than this sipvm "
                    f"knows ({newest}); upgrade sipvm or use another --data directory"
                )
            for number, sql in known:
                if number > current:
                    log.info("applying store migration %04d", number)
                    for statement in _split_sql(sql):
                        await conn.execute(statement)
                    await conn.execute(f"PRAGMA user_version = {number}")


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements.

    aiosqlite's executescript would commit our transaction, so statements run one by one.
    """
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not current.strip():
            continue
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


def db_time(when: datetime) -> str:
    """Timestamps are stored as ISO 8601 UTC with microseconds, so they sort as text."""
    if when.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_db_time(text: str) -> datetime:
    """The aware datetime a ``db_time`` string stands for."""
    # fromisoformat (C, reads the trailing Z since 3.11) is ~10x faster than strptime.
    return datetime.fromisoformat(text)
