"""Mailbox options (0 in the main menu): greetings recorded by phone, and PIN changes."""

from __future__ import annotations

import pytest

from sipvm.domain.lockout import LoginOutcome
from sipvm.flows.channel import CallerHungUp
from sipvm.testing.fake_channel import HANGUP, WAIT, Speak
from tests.flows.menu_kit import ANN, ANN_PIN, PEER, MenuKit
from tests.support.tones import read_pcm_mono, seconds_with_tone

OPTIONS = [ANN_PIN + "#", "0"]
END = ["*", WAIT, WAIT, WAIT]  # back to the main menu, then silence until goodbye


@pytest.mark.parametrize(
    ("key", "kind", "prompt"),
    [
        ("1", "unavailable", "menu.record_unavailable"),
        ("2", "busy", "menu.record_busy"),
        ("3", "name", "menu.record_name"),
        ("4", "temporary", "menu.record_temporary"),
    ],
)
async def test_record_a_greeting_and_accept_it(
    kit: MenuKit, key: str, kind: str, prompt: str
) -> None:
    channel = await kit.call([*OPTIONS, key, "", Speak(3.0, freq_hz=700), "1", *END])
    played = channel.played()
    assert played[played.index(prompt) : played.index(prompt) + 3] == [
        prompt,
        "deposit.beep",
        "menu.greeting_review",
    ]
    assert "menu.greeting_saved" in played
    stored = await kit.app.greetings.path_for(ANN, kind)
    assert stored is not None
    assert seconds_with_tone(read_pcm_mono(stored), 8000, 700) >= 2.5
    assert list(kit.app.files.scratch.iterdir()) == []


async def test_listen_then_rerecord_keeps_only_the_second_take(kit: MenuKit) -> None:
    script = [*OPTIONS, "1", "", Speak(3.0, freq_hz=700), "2", "", "3", "", Speak(3.0, freq_hz=900)]
    channel = await kit.call([*script, "1", *END])
    stored = await kit.app.greetings.path_for(ANN, "unavailable")
    assert stored is not None
    pcm = read_pcm_mono(stored)
    assert seconds_with_tone(pcm, 8000, 900) >= 2.5
    assert seconds_with_tone(pcm, 8000, 700) == 0
    assert [op for op, _ in channel.transcript].count("record") == 2


async def test_hanging_up_while_recording_keeps_the_old_greeting(kit: MenuKit) -> None:
    await kit.call([*OPTIONS, "1", "", Speak(3.0, freq_hz=700), "1", *END])
    before = await kit.app.greetings.path_for(ANN, "unavailable")
    with pytest.raises(CallerHungUp):
        await kit.call([*OPTIONS, "1", "", Speak(2.0, freq_hz=900, ended_by="hangup"), HANGUP])
    assert await kit.app.greetings.path_for(ANN, "unavailable") == before


async def test_too_short_greeting_is_recorded_again(kit: MenuKit) -> None:
    script = [*OPTIONS, "3", "", Speak(0.4), "", Speak(2.0, freq_hz=800), "1", *END]
    channel = await kit.call(script)
    assert "deposit.too_short" in channel.played()
    assert await kit.app.greetings.path_for(ANN, "name") is not None


async def test_temporary_greeting_is_announced_and_can_be_removed(kit: MenuKit) -> None:
    await kit.call([*OPTIONS, "4", "", Speak(3.0, freq_hz=700), "1", *END])
    assert await kit.app.greetings.path_for(ANN, "temporary") is not None
    channel = await kit.call([*OPTIONS, "5", *END])
    played = channel.played()
    assert played[played.index("menu.options_key") + 1] == "menu.temporary_active"
    assert "menu.temporary_removed" in played
    assert await kit.app.greetings.path_for(ANN, "temporary") is None
    again = await kit.call([*OPTIONS, *END])
    assert "menu.temporary_active" not in again.played()


async def test_change_pin(kit: MenuKit) -> None:
    channel = await kit.call([*OPTIONS, "6", "258369#", "258369#", *END])
    assert "menu.pin_changed" in channel.played()
    logins = kit.app.logins
    assert await logins.login(ANN, "258369", peer=PEER) is LoginOutcome.OK
    assert await logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.FAILED


@pytest.mark.parametrize(
    ("first", "second", "said"),
    [
        ("258369", "258396", "menu.pin_mismatch"),
        ("1234", "1234", "menu.pin_rejected"),
        ("7777", "7777", "menu.pin_rejected"),
        ("1001", "1001", "menu.pin_rejected"),  # the extension itself
        ("123", "123", "menu.pin_rejected"),
    ],
)
async def test_a_refused_pin_change_keeps_the_old_pin(
    kit: MenuKit, first: str, second: str, said: str
) -> None:
    channel = await kit.call([*OPTIONS, "6", first + "#", second + "#", *END])
    assert said in channel.played()
    assert await kit.app.logins.login(ANN, ANN_PIN, peer=PEER) is LoginOutcome.OK


async def test_phone_pin_survives_reapplying_the_directory_until_an_admin_sets_another(
    kit: MenuKit,
) -> None:
    await kit.call([*OPTIONS, "6", "258369#", "258369#", *END])
    await kit.use_directory()  # the same file again: Ann's PIN there is unchanged
    logins = kit.app.logins
    assert await logins.login(ANN, "258369", peer=PEER) is LoginOutcome.OK
    await kit.use_directory(extra="")  # still the same PIN
    changed = kit.tmp / "reset.toml"
    from tests.flows.menu_kit import directory_text

    changed.write_text(directory_text().replace('pin = "482916"', 'pin = "615243"'))
    await kit.app.directory.apply_file(changed)
    assert await logins.login(ANN, "258369", peer=PEER) is LoginOutcome.FAILED
    assert await logins.login(ANN, "615243", peer=PEER) is LoginOutcome.OK


async def test_star_leaves_the_options(kit: MenuKit) -> None:
    channel = await kit.call([*OPTIONS, *END])
    played = channel.played()
    assert played.count("menu.greeting_options") == 1
    assert played[-1] == "common.goodbye"
