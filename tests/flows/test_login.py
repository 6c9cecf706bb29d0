"""Logging in to the desk-phone menu: PIN, extension, lockout, and what the caller hears."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from sipvm.app import App
from sipvm.domain.lockout import LockoutPolicy, LoginOutcome
from sipvm.testing.fake_channel import WAIT
from tests.flows.menu_kit import ANN, ANN_PIN, BEN, BEN_PIN, PEER, MenuKit

WRONG = "999111"


def heard_after_login(played: list[str]) -> bool:
    """The main menu's lines ("<name>, press 1") or the one inbox's intro came."""
    return any(prompt.startswith("menu.") for prompt in played)


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
    keys = [fill["key"] for pid, fill in kit.prompts.fills if pid == "menu.press"]
    assert keys[:2] == ["1", "2"]  # Ben: own inbox and 2001


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


# -- per peer, escalation, forged caller ids -------------------------------------------------

OTHER_PEER = "127.0.0.3"
#: 25 extensions (all but one unknown, counted all the same): 100 failures spread over them
#: leave each below its own limit of 5.
ROTATING_EXTS = ["1003", *(f"7{n:03d}" for n in range(1, 25))]


async def fail_from_peer(kit: MenuKit, count: int, *, first_caller: int = 0) -> None:
    """``count`` wrong PINs from PEER, each with a new caller id and spread over extensions."""
    for n in range(first_caller, first_caller + count):
        outcome = await kit.app.logins.login(
            ROTATING_EXTS[n % len(ROTATING_EXTS)], WRONG, peer=PEER, caller=f"555{n:04d}"
        )
        assert outcome is LoginOutcome.FAILED, n


async def test_rotating_caller_ids_still_lock_the_peer_at_one_hundred(kit: MenuKit) -> None:
    logins = kit.app.logins
    await fail_from_peer(kit, 99)
    # 99 sources of one failure each, no extension at its limit: nothing locked yet.
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5559999") is LoginOutcome.OK
    await fail_from_peer(kit, 1, first_caller=99)
    # Any caller id, any extension, the right PIN: refused. Another peer is not locked.
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5558888") is LoginOutcome.LOCKED
    assert await logins.login(BEN, BEN_PIN, peer=PEER) is LoginOutcome.LOCKED
    assert await logins.login(BEN, BEN_PIN, peer=OTHER_PEER, caller="1") is LoginOutcome.OK
    kit.clock.advance(minutes=15, seconds=1)
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5558888") is LoginOutcome.OK


async def test_a_success_does_not_reset_the_peer_count(kit: MenuKit) -> None:
    logins = kit.app.logins
    await fail_from_peer(kit, 60)
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5559999") is LoginOutcome.OK
    await fail_from_peer(kit, 40, first_caller=60)
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5559999") is LoginOutcome.LOCKED


async def test_the_peer_threshold_is_a_policy_setting(kit: MenuKit) -> None:
    logins = kit.app.logins
    logins.policy = LockoutPolicy(per_peer=3)
    await fail_from_peer(kit, 3)
    assert await logins.login(BEN, BEN_PIN, peer=PEER, caller="5559999") is LoginOutcome.LOCKED


async def lock_ann(kit: MenuKit) -> None:
    for _ in range(5):
        assert await kit.app.logins.login(ANN, WRONG, peer=PEER) is LoginOutcome.FAILED


async def is_locked(kit: MenuKit) -> bool:
    """Whether Ann's extension is locked now (asked from another peer, so nothing is counted
    against PEER; the right PIN, so an open extension just logs in)."""
    outcome = await kit.app.logins.login(ANN, ANN_PIN, peer=OTHER_PEER)
    return outcome is LoginOutcome.LOCKED


async def assert_locked_for(kit: MenuKit, length: timedelta) -> None:
    """Ann's extension, locked just now, stays locked ``length`` and not a second more."""
    kit.clock.advance(seconds=length.total_seconds() - 1)
    assert await is_locked(kit), f"the lock ended before {length}"
    kit.clock.advance(seconds=2)
    assert not await is_locked(kit), f"the lock lasted longer than {length}"


async def test_repeated_locks_last_15_minutes_then_1_hour_then_24_hours(kit: MenuKit) -> None:
    for length in [
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=24),
        timedelta(hours=24),
    ]:
        await lock_ann(kit)
        await assert_locked_for(kit, length)


async def test_a_day_without_a_lock_starts_the_escalation_over(kit: MenuKit) -> None:
    await lock_ann(kit)
    await assert_locked_for(kit, timedelta(minutes=15))
    await lock_ann(kit)
    await assert_locked_for(kit, timedelta(hours=1))
    kit.clock.advance(hours=23, minutes=58)  # short of a clean day: still escalates
    await lock_ann(kit)
    await assert_locked_for(kit, timedelta(hours=24))
    kit.clock.advance(hours=24)  # a whole day since the last lock ended
    await lock_ann(kit)
    await assert_locked_for(kit, timedelta(minutes=15))


async def test_peer_locks_escalate_and_are_logged_with_scope_peer(
    kit: MenuKit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    kit.app.logins.policy = LockoutPolicy(per_peer=3)
    await fail_from_peer(kit, 3)
    kit.clock.advance(minutes=15, seconds=1)
    await fail_from_peer(kit, 3, first_caller=3)
    locks = [
        r.getMessage()
        for r in caplog.records
        if r.name == "sipvm.security" and r.getMessage().startswith("login locked:")
    ]
    first, second = (kit.clock.now - timedelta(minutes=15, seconds=1), kit.clock.now)
    assert locks == [
        "login locked: source=127.0.0.2 caller=5550002 extension=unknown scope=peer until="
        + (first + timedelta(minutes=15)).isoformat(timespec="seconds"),
        "login locked: source=127.0.0.2 caller=5550005 extension=unknown scope=peer until="
        + (second + timedelta(hours=1)).isoformat(timespec="seconds"),
    ]


async def test_a_lock_history_survives_a_restart(kit: MenuKit, app: App) -> None:
    await lock_ann(kit)
    await assert_locked_for(kit, timedelta(minutes=15))
    reopened = await App.open(app.data_dir, clock=kit.clock)  # a new process would do this
    try:
        for _ in range(5):
            await reopened.logins.login(ANN, WRONG, peer=PEER)
        kit.clock.advance(minutes=30)  # the second lock in a row: an hour
        assert await reopened.logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.LOCKED
    finally:
        await reopened.close()


FORGED = "x\n2026-11-28 17:37:15,225 WARNING sipvm.security: login failed: source=10.9.9.9"


async def test_a_caller_id_with_control_characters_counts_as_anonymous(
    kit: MenuKit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    channel = await kit.call([WRONG + "#", WRONG + "#", WRONG + "#"], hint=ANN, caller_id=FORGED)
    assert channel.played()[-1] == "common.goodbye"
    security = [r.getMessage() for r in caplog.records if r.name == "sipvm.security"]
    assert (
        security == ["login failed: source=127.0.0.2 caller=- extension=1001 reason=wrong-pin"] * 3
    )
    [warning] = [r.getMessage() for r in caplog.records if "control characters" in r.getMessage()]
    assert "\n" not in warning and "caller id 'x\\n2026-11-28 " in warning
    # Every such caller id is the one anonymous source: rotating them gains nothing.
    await kit.app.logins.login(ANN, WRONG, peer=PEER, caller="y\r\nz")
    await kit.app.logins.login(ANN, WRONG, peer=PEER)
    assert await kit.app.logins.login(BEN, BEN_PIN, peer=PEER) is LoginOutcome.OK
    assert await kit.app.logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.LOCKED


async def test_security_log_values_are_escaped_so_no_value_fakes_a_field(
    kit: MenuKit, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await kit.app.logins.login(ANN, WRONG, peer=PEER, caller="a source=10.9.9.9 %41 é")
    [line] = [r.getMessage() for r in caplog.records if r.name == "sipvm.security"]
    assert line == (
        "login failed: source=127.0.0.2 caller=a%20source%3D10.9.9.9%20%2541%20%C3%A9"
        " extension=1001 reason=wrong-pin"
    )


LONGEST = "441632960961234"  # 15 digits: the longest extension a directory may hold


async def test_the_longest_extension_the_directory_allows_can_log_in(kit: MenuKit) -> None:
    await kit.use_directory(
        extra=f'[[user]]\next = "{LONGEST}"\nname = "Long Number"\nsite = "HQ"\npin = "582046"\n'
    )
    channel = await kit.call([LONGEST + "#", "582046#"], hint=None)
    played = channel.played()
    assert played[:2] == ["login.extension", "login.password"]
    assert heard_after_login(played)


async def test_a_pin_longer_than_any_allowed_is_wrong_not_cut_short(kit: MenuKit) -> None:
    # Ann's PIN followed by more digits: read whole (one past the longest PIN), so it fails.
    channel = await kit.call([ANN_PIN + "12345#", WRONG + "#", WRONG + "#"], hint=ANN)
    assert channel.played() == ["login.password", "login.incorrect"] * 3 + ["common.goodbye"]
