"""Web sessions and API tokens over a real store: idle expiry, sign-out, the lockout the phone
shares, tokens that are shown once, stored hashed and revoked for good."""

from __future__ import annotations

from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.credentials import secret_hash
from sipvm.domain.lockout import LoginOutcome
from sipvm.errors import LockedError, NotFoundError, NotSignedInError
from sipvm.services.sessions import WRONG_CREDENTIALS
from sipvm.testing.clock import FakeClock

PEER = "192.0.2.50"


async def test_a_session_lives_while_it_is_used(app: App, clock: FakeClock) -> None:
    token, who = await app.sessions.sign_in("1003", "315972", peer=PEER)
    assert who.ext == "1003"
    for _ in range(5):  # used every 20 minutes: 100 minutes in all, never idle for 30
        clock.advance(minutes=20)
        found = await app.sessions.session(token)
        assert found is not None and found.who.ext == "1003" and found.via == "session"
    clock.advance(minutes=31)
    assert await app.sessions.session(token) is None
    assert await app.sessions.session(token) is None  # and it was forgotten


async def test_a_stream_checking_its_session_does_not_keep_it_alive(
    app: App, clock: FakeClock
) -> None:
    token, _ = await app.sessions.sign_in("1003", "315972", peer=PEER)
    clock.advance(minutes=20)
    assert await app.sessions.session(token, touch=False) is not None
    clock.advance(minutes=11)
    assert await app.sessions.session(token) is None


async def test_sign_out_and_purge(app: App, clock: FakeClock) -> None:
    first, _ = await app.sessions.sign_in("1003", "315972", peer=PEER)
    second, _ = await app.sessions.sign_in("1002", "739164", peer=PEER)
    assert await app.sessions.sign_out(first) is True
    assert await app.sessions.sign_out(first) is False
    assert await app.sessions.session(first) is None
    clock.advance(minutes=31)
    assert await app.sessions.purge_idle() == 1
    assert await app.sessions.session(second) is None


async def test_wrong_pins_on_the_web_lock_the_phone(app: App) -> None:
    for ext in ("1003", "7777"):
        with pytest.raises(NotSignedInError) as refused:
            await app.sessions.sign_in(ext, "999111", peer=PEER)
        assert str(refused.value) == WRONG_CREDENTIALS
    for _ in range(4):
        with pytest.raises(NotSignedInError):
            await app.sessions.sign_in("1003", "999111", peer=PEER)
    with pytest.raises(LockedError):
        await app.sessions.sign_in("1003", "315972", peer=PEER)
    phone = await app.logins.login("1003", "315972", peer="127.0.0.2", caller="5550000")
    assert phone is LoginOutcome.LOCKED


async def test_only_users_and_common_areas_sign_in(app: App) -> None:
    # A queue has no PIN: the same words as any wrong extension.
    with pytest.raises(NotSignedInError):
        await app.sessions.sign_in("2001", "315972", peer=PEER)
    with pytest.raises(NotFoundError):
        await app.sessions.create_token("2001")


async def test_tokens_are_stored_hashed_and_revoked_for_good(app: App) -> None:
    first_id, first = await app.sessions.create_token("1002")
    second_id, second = await app.sessions.create_token("1002")
    other_id, other = await app.sessions.create_token("1004")
    async with app.db.read() as conn:
        rows = await (await conn.execute("SELECT token_hash FROM api_tokens")).fetchall()
    stored = {row[0] for row in rows}
    assert stored == {secret_hash(t.split("_", 2)[2]) for t in (first, second, other)}
    found = await app.sessions.bearer(first)
    assert found is not None and found.who.ext == "1002" and found.via == "token"
    assert await app.sessions.bearer(first[:-1] + ("A" if first[-1] != "A" else "B")) is None
    assert await app.sessions.bearer(f"sipvm_{other_id}_" + first.split("_", 2)[2]) is None

    assert await app.sessions.revoke_tokens(token_id=first_id) == [first_id]
    assert await app.sessions.bearer(first) is None
    assert await app.sessions.bearer(second) is not None
    assert await app.sessions.revoke_tokens(ext="1002") == [second_id]
    assert await app.sessions.bearer(second) is None
    with pytest.raises(NotFoundError):
        await app.sessions.revoke_tokens(ext="1002")
    assert await app.sessions.bearer(other) is not None
    listed = await app.sessions.tokens()
    assert [(t.id, t.revoked_at is not None) for t in listed] == [
        (first_id, True),
        (second_id, True),
        (other_id, False),
    ]


SMALL = """
[[site]]
name = "HQ"
timezone = "UTC"
[[user]]
ext = "1001"
name = "Ann"
pin = "482916"
{second}
"""
BEN = '[[user]]\next = "1002"\nname = "Ben"\npin = "739164"\n'


async def test_a_member_who_left_the_directory_is_signed_out(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await App.open(tmp_path / "data", clock=clock)
    try:
        both, one = tmp_path / "both.toml", tmp_path / "one.toml"
        both.write_text(SMALL.format(second=BEN), encoding="utf-8")
        one.write_text(SMALL.format(second=""), encoding="utf-8")
        await app.directory.apply_file(both)
        session, _ = await app.sessions.sign_in("1002", "739164", peer=PEER)
        _, token = await app.sessions.create_token("1002")
        await app.directory.apply_file(one)
        assert await app.sessions.session(session) is None
        assert await app.sessions.bearer(token) is None
    finally:
        await app.close()
