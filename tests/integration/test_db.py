"""The store's transactions stay usable when the task holding them is cancelled."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from sipvm.storage.db import Database


async def test_a_task_cancelled_while_its_begin_waits_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    """(Reads go through the same BEGIN path, but in WAL mode their BEGIN never waits.)"""
    db = await Database.open(tmp_path / "store.sqlite3")
    # Another process holds the write lock: our BEGIN IMMEDIATE waits (busy timeout).
    other = sqlite3.connect(tmp_path / "store.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        entered = asyncio.Event()

        async def use() -> None:
            async with db.transaction():
                entered.set()

        task = asyncio.create_task(use())
        await asyncio.sleep(0.2)  # the BEGIN is queued on aiosqlite's thread, waiting for the lock
        assert not entered.is_set()
        task.cancel()
        other.execute("ROLLBACK")  # the lock is freed: the queued BEGIN now runs
        with pytest.raises(asyncio.CancelledError):
            await task
        # The connection is not left inside a transaction: the next ones work.
        async with db.transaction() as conn:
            await conn.execute("CREATE TABLE t (x)")
        async with db.read() as conn:
            rows = await (await conn.execute("SELECT count(*) FROM t")).fetchall()
        assert rows == [(0,)]
    finally:
        other.close()
        await db.close()
