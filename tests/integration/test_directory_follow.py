"""Every serving process follows the directory in force: a grant revoked by another process
(``sipvm directory apply``, another worker) stops working here within a poll, not an hour."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.errors import NotPermittedError
from sipvm.testing.clock import FakeClock

from .conftest import Deposit

DAVE, SALES = "1004", "2001"  # Dave plays Sales through its member list only


def without_member(example: Path, tmp: Path, inbox: str, member: str) -> Path:
    """The example directory with ``member``'s entry on ``inbox``'s member list removed."""
    text = example.read_text(encoding="utf-8")
    entry = re.search(rf'\[\[call_queue\.members\]\]\nmember = "{member}"\nrights = [^\n]*\n', text)
    assert entry is not None and f'ext = "{inbox}"' in text
    out = tmp / "revoked.toml"
    out.write_text(text.replace(entry.group(0), "", 1), encoding="utf-8")
    return out


async def test_a_grant_revoked_by_another_process_is_refused_here_within_a_poll(
    app: App, deposit: Deposit, clock: FakeClock, example_directory_file: Path, tmp_path: Path
) -> None:
    message = await deposit(SALES)
    assert [m.id for m in await app.messages.messages(SALES, as_member=DAVE)] == [message.id]
    follower = asyncio.create_task(app.directory.follow(every_s=0.05))
    other = await App.open(app.data_dir, clock=clock)  # e.g. `sipvm directory apply`
    try:
        applied = await other.directory.apply_file(
            without_member(example_directory_file, tmp_path, SALES, DAVE)
        )
        started = time.monotonic()
        while app.directory.rev != applied.rev:
            assert time.monotonic() - started < 1.0, "the new revision was not picked up"
            await asyncio.sleep(0.01)
        with pytest.raises(NotPermittedError):
            await app.messages.messages(SALES, as_member=DAVE)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await other.close()


async def test_following_survives_a_failed_round(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0
    real = app.directory.refresh

    async def flaky() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database is locked")
        return await real()

    app.directory.refresh = flaky  # type: ignore[method-assign]
    follower = asyncio.create_task(app.directory.follow(every_s=0.01))
    try:
        while calls < 3:
            await asyncio.sleep(0.01)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    assert "reading the directory in force failed" in caplog.text
