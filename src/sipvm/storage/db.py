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
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TypeVar

import aiosqlite

from sipvm.errors import StorageError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
#: How often a step retried by ``retry_when_locked`` is tried in all.
LOCKED_TRIES = 5

T = TypeVar("T")


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
    async def open(cls, path: Path, *, migrate: bool = True) -> Database:
        """Open the database at ``path``.

        With ``migrate`` (the single server, the pool's supervisor, the commands) the store is
        created if needed and its schema brought up to date. Without (a pool worker: its
        supervisor migrated before starting it) nothing is written: the schema version is only
        read, and a missing or older store is a ``StorageError`` saying to start the supervisor.
        """
        if migrate:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise StorageError(f"there is no store at {path}: start the supervisor (it migrates)")
        try:
            conn = await aiosqlite.connect(
                path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
            )
        except sqlite3.Error as exc:
            raise _open_error(path, exc) from exc
        try:
            db = await cls._set_up(conn, path, migrate=migrate)
        except BaseException:
            # aiosqlite's thread is not a daemon: left open, it would keep the process alive.
            await conn.close()
            raise
        return db

    @classmethod
    async def _set_up(cls, conn: aiosqlite.Connection, path: Path, *, migrate: bool) -> Database:
        try:
            # Also the wait of BEGIN IMMEDIATE for another process's write lock.
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Setting the journal mode writes to the store: only a migrating opener does it.
            journal = "PRAGMA journal_mode = WAL" if migrate else "PRAGMA journal_mode"
            mode = await (await conn.execute(journal)).fetchone()
            # FULL: a message the caller was told is saved survives a power cut too.
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise _open_error(path, exc) from exc
        if mode is None or str(mode[0]).lower() != "wal":
            log.warning(
                "store %s is not in WAL mode (%s); concurrent access will be slower", path, mode
            )
        db = cls(conn, path)
        if migrate:
            await db._migrate()
        else:
            await db._check_schema()
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

    async def _check_schema(self) -> None:
        """Refuse a store whose schema is not the one this code knows (read only: a deferred
        transaction, so no write lock is taken)."""
        async with self.read() as conn:
            current = await _schema_version(conn)
        newest = _newest(migrations())
        self._refuse_newer(current, newest)
        if current < newest:
            raise StorageError(
                f"the store {self.path} is at migration {current}, this sipvm needs {newest}: "
                "start the supervisor (it migrates)"
            )

    def _refuse_newer(self, current: int, newest: int) -> None:
        if current > newest:
            raise StorageError(
                f"the store {self.path} has schema version {current}, newer than this sipvm "
                f"knows ({newest}); upgrade sipvm or use another --data directory"
            )

    async def _migrate(self) -> None:
        async with self.transaction() as conn:
            current = await _schema_version(conn)
            known = migrations()
            self._refuse_newer(current, _newest(known))
            for number, sql in known:
                if number > current:
                    log.info("applying store migration %04d", number)
                    for statement in _split_sql(sql):
                        await conn.execute(statement)
                    await conn.execute(f"PRAGMA user_version = {number}")


async def retry_when_locked(
    step: Callable[[], Awaitable[T]], *, what: str, tries: int = LOCKED_TRIES, pause_s: float = 1.0
) -> T:
    """Run ``step``; when the store stays locked past the busy timeout (many processes
    starting at once; also a ``StorageError`` caused by it), wait ``pause_s`` (doubling) and
    run it again, ``tries`` times in all. ``step`` must be safe to run again after a failed
    attempt (its transaction rolled back)."""
    for attempt in range(1, tries + 1):
        try:
            return await step()
        except (sqlite3.OperationalError, StorageError) as exc:
            cause = exc if isinstance(exc, sqlite3.OperationalError) else exc.__cause__
            text = str(cause)
            locked = isinstance(cause, sqlite3.OperationalError) and (
                "locked" in text or "busy" in text
            )
            if attempt == tries or not locked:
                raise
            log.warning("%s: the store is busy (%s); trying again in %.0f s", what, text, pause_s)
        await asyncio.sleep(pause_s)
        pause_s *= 2
    raise AssertionError("unreachable")


def _open_error(path: Path, exc: sqlite3.Error) -> StorageError:
    return StorageError(
        f"cannot open the store {path}: {exc}; check the --data directory and its permissions"
    )


async def _schema_version(conn: aiosqlite.Connection) -> int:
    row = await (await conn.execute("PRAGMA user_version")).fetchone()
    return int(row[0]) if row else 0


def _newest(known: list[tuple[int, str]]) -> int:
    return known[-1][0] if known else 0


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
