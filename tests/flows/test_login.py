"""Logging in to the desk-phone menu: PIN, extension, lockout, and what the caller hears."""

from __future__ import annotations

import logging

import pytest

from sipvm.app import App
from sipvm.domain.lockout import LoginOutcome
from sipvm.testing.fake_channel import WAIT
from tests.flows.menu_kit import ANN, ANN_PIN, BEN, BEN_PIN, PEER, MenuKit

WRONG = "999111"


def heard_after_login(played: list[str]) -> bool:
    return "login.inboxes" in played or "login.inboxes_one" in played


async def test_desk_phone_asks_only_the_pin(kit: MenuKit) -> None:
    channel = await kit.call([ANN_PIN + "#"], hint=ANN)
    played = channel.played()
    assert played[0] == "login.password"
    assert "login.extension" not in played
    assert heard_after_login(played)


async def test_unknown_phone_asks_extension_then_pin(kit: MenuKit) -> None:
    channel = await kit.call([ANN + "#", ANN_PIN + "#"], hint=None)
    played = channel.played()
    assert played[:2] == ["login.extension", "login.password"]
    assert heard_after_login(played)


async def test_star_at_the_pin_prompt_logs_in_as_someone_else(kit: MenuKit) -> None:
    channel = await kit.call(["*#", BEN + "#", BEN_PIN + "#"], hint=ANN)
    played = channel.played()
    assert played[:3] == ["login.password", "login.extension", "login.password"]
    assert heard_after_login(played)
    assert ("login.inboxes", {"n": 2}) in kit.prompts.fills  # Ben: own inbox and 2001


async def test_three_failures_end_the_call(kit: MenuKit) -> None:
    channel = await kit.call([WRONG + "#", WRONG + "#", WRONG + "#", ANN_PIN + "#"], hint=ANN)
    played = channel.played()
    assert played == ["login.password", "login.incorrect"] * 3 + ["common.goodbye"]


async def test_wrong_extension_and_wrong_pin_sound_the_same(kit: MenuKit) -> None:
    unknown = await kit.call(["7777#", ANN_PIN + "#"] * 3, hint=None)
    wrong_pin = await kit.call([ANN + "#", WRONG + "#"] * 3, hint=None)
    assert unknown.played() == wrong_pin.played()
    assert unknown.played()[-1] == "common.goodbye"


async def test_no_input_is_not_counted_as_a_guess(kit: MenuKit) -> None:
    await kit.call([WAIT, WAIT, WAIT], hint=ANN)
    assert await kit.app.logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.OK


async def test_five_failures_lock_the_extension_for_fifteen_minutes(kit: MenuKit) -> None:
    logins = kit.app.logins
    for _ in range(5):
        assert await logins.login(ANN, WRONG, peer=PEER, caller="5550001") is LoginOutcome.FAILED
    # Locked even with the right PIN, from another caller; other extensions are not.
    assert await logins.login(ANN, ANN_PIN, peer=PEER, caller="5550002") is LoginOutcome.LOCKED
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5550001") is LoginOutcome.OK
    channel = await kit.call([ANN_PIN + "#"], hint=ANN)
    assert channel.played() == ["login.password", "login.locked", "common.goodbye"]
    kit.clock.advance(minutes=15, seconds=1)
    assert await logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.OK


async def test_failures_older_than_the_window_do_not_count(kit: MenuKit) -> None:
    logins = kit.app.logins
    for _ in range(4):
        await logins.login(ANN, WRONG, peer=PEER)
    kit.clock.advance(minutes=16)
    await logins.login(ANN, WRONG, peer=PEER)
    assert await logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.OK


async def test_a_success_resets_the_extension_count(kit: MenuKit) -> None:
    logins = kit.app.logins
    for _ in range(4):
        await logins.login(ANN, WRONG, peer=PEER)
    assert await logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.OK
    for _ in range(4):
        await logins.login(ANN, WRONG, peer=PEER)
    assert await logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.OK


async def test_twenty_failures_from_one_source_lock_that_source(kit: MenuKit) -> None:
    logins = kit.app.logins
    for n in range(20):  # spread over extensions, so no extension reaches its own limit
        ext = ["1003", "7000", "7001", "7002", "7003"][n % 5]
        await logins.login(ext, WRONG, peer=PEER, caller="5559999")
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5559999") is LoginOutcome.LOCKED
    # The same PBX, another caller: not locked.
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5550000") is LoginOutcome.OK


async def test_unknown_extensions_lock_like_known_ones(kit: MenuKit) -> None:
    logins = kit.app.logins
    for _ in range(5):
        await logins.login("7777", WRONG, peer=PEER, caller="1")
    assert await logins.login("7777", WRONG, peer=PEER, caller="2") is LoginOutcome.LOCKED


async def test_a_lock_survives_a_restart(kit: MenuKit, app: App) -> None:
    for _ in range(5):
        await app.logins.login(ANN, WRONG, peer=PEER)
    reopened = await App.open(app.data_dir, clock=kit.clock)  # a new process would do this
    try:
        assert await reopened.logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.LOCKED
    finally:
        await reopened.close()


async def test_security_log_lines_name_source_extension_reason_and_never_the_pin(
    kit: MenuKit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(5):
        await kit.app.logins.login(ANN, WRONG, peer=PEER, caller="5551234")
    await kit.app.logins.login("886644", ANN_PIN, peer=PEER, caller="5551234")
    await kit.app.logins.login(ANN, ANN_PIN, peer=PEER, caller="5551234")
    security = [r.getMessage() for r in caplog.records if r.name == "sipvm.security"]
    assert security[0] == (
        "login failed: source=127.0.0.2 caller=5551234 extension=1001 reason=wrong-pin"
    )
    assert any(
        m.startswith("login locked: source=127.0.0.2 ") and "scope=ext" in m for m in security
    )
    assert (
        "login failed: source=127.0.0.2 caller=5551234 extension=unknown reason=unknown-extension"
        in security
    )
    assert any("reason=locked" in m for m in security)
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (WRONG, ANN_PIN, "886644"):
        assert secret not in everything
