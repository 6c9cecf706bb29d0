"""The envelope (when a message came, from whom) before the message, after it, or only on 3;
the inbox intro's wording; type-ahead through every prompt."""

from __future__ import annotations

from pathlib import Path

from sipvm.testing.fake_channel import WAIT, FakeChannel
from tests.flows.menu_kit import ANN_PIN, BEN, MenuKit
from tests.support.tones import write_tone_wav

LOGIN = [ANN_PIN + "#"]
MESSAGE = "<message>"


def steps(channel: FakeChannel) -> list[list[str]]:
    """Each play as its prompt ids (a message as MESSAGE), from the inbox intro on."""
    out: list[list[str]] = []
    for op, detail in channel.transcript:
        if op == "play":
            out.append([Path(p).stem for p in detail])  # type: ignore[union-attr]
        elif op == "play_message":
            out.append([MESSAGE])
    start = next(i for i, s in enumerate(out) if s and s[-1] in INTRO_ENDS)
    return out[start:]


INTRO_ENDS = ("menu.new_count", "menu.saved_count", "menu.no_messages")


OPTIONS = ["menu.message_options", "menu.go_back"]
ENVELOPE = ["menu.received", "menu.from"]


async def test_before_says_the_envelope_then_the_message(kit: MenuKit) -> None:
    kit.envelope = "before"
    await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "2", "", "", "", "*", WAIT, WAIT, WAIT])
    assert steps(channel)[:4] == [
        ["menu.new_count"],  # "1 new." (the extension just chosen is not spelled again)
        ENVELOPE,  # "Today at 3 P.M., from 5 5 5, 1 2 3 4."
        [MESSAGE],
        OPTIONS,
    ]


async def test_after_plays_the_message_first_then_the_envelope(kit: MenuKit) -> None:
    kit.envelope = "after"
    await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "2", "", "", "", "*", WAIT, WAIT, WAIT])
    assert steps(channel)[:4] == [
        ["menu.new_count"],
        [MESSAGE],  # straight after the intro
        ENVELOPE,
        OPTIONS,
    ]


async def test_key_mode_says_the_envelope_only_on_3(kit: MenuKit) -> None:
    kit.envelope = "key"
    await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "2", "", "", "3", "", "*", WAIT, WAIT, WAIT])
    assert steps(channel)[:5] == [
        ["menu.new_count"],
        [MESSAGE],
        OPTIONS,  # 3 typed here
        ENVELOPE,
        OPTIONS,
    ]


async def test_3_says_the_envelope_again_in_every_mode(kit: MenuKit) -> None:
    for mode in ("before", "after"):
        kit.envelope = mode
        await kit.deposit("2001", 600)
        channel = await kit.call([*LOGIN, "2", "", "", "", "3", "", "9", "*", WAIT, WAIT, WAIT])
        assert steps(channel)[3:5] == [OPTIONS, ENVELOPE], mode


async def test_a_key_typed_during_the_envelope_after_acts_at_once(kit: MenuKit) -> None:
    kit.envelope = "after"
    await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "2", "", "", "9", "*", WAIT, WAIT, WAIT])
    assert steps(channel)[2] == ENVELOPE  # cut short by 9 (save): no options
    assert steps(channel)[3] == ["menu.message_saved"]


async def test_a_key_typed_during_the_intro_is_kept_for_the_message(kit: MenuKit) -> None:
    kit.envelope = "after"
    await kit.deposit("2001", 600)
    # 9 during "1 new." stops the message as it starts: saved.
    channel = await kit.call([*LOGIN, "2", "9", "*", WAIT, WAIT, WAIT])
    assert steps(channel)[1:3] == [[MESSAGE], ["menu.message_saved"]]


async def test_later_messages_are_announced_the_first_is_not(kit: MenuKit) -> None:
    kit.envelope = "after"
    for freq in (500, 600, 700):
        await kit.deposit("2001", freq)
    script = [*LOGIN, "2", "", "", "6", "", "", "6", "", "", "*", WAIT, WAIT, WAIT]
    channel = await kit.call(script)
    announced = [s for s in steps(channel) if s[0].startswith(("menu.message_n", "menu.last"))]
    assert announced == [["menu.message_number"], ["menu.last_message"]]
    assert ("menu.message_number", {"n": 2}) in kit.prompts.fills
    assert "menu.first_message" not in channel.played()


async def test_intro_says_saved_only_when_nothing_is_new(kit: MenuKit) -> None:
    first = await kit.deposit("2001", 600)
    second = await kit.deposit("2001", 700)
    for mid in (first, second):
        await kit.app.messages.mark_played(mid, as_member=BEN)
    channel = await kit.call([*LOGIN, "2", "*", WAIT, WAIT, WAIT])
    assert steps(channel)[0] == ["menu.saved_count"]  # "2 saved."
    assert ("menu.saved_count", {"n": 2}) in kit.prompts.fills


async def test_intro_of_an_empty_inbox(kit: MenuKit) -> None:
    channel = await kit.call([*LOGIN, "2", WAIT, WAIT, WAIT])
    assert steps(channel)[0] == ["menu.no_messages"]  # "No messages."


async def test_intro_says_the_recorded_name(kit: MenuKit) -> None:
    name = kit.tmp / "support-name.wav"
    write_tone_wav(name, 440, 1.0)
    await kit.app.greetings.upload("2001", "name", name)
    await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "2", "*", WAIT, WAIT, WAIT])
    intro = steps(channel)[0]
    assert len(intro) == 2 and intro[0].startswith("name-")  # "Support: 1 new."
    assert intro[1] == "menu.new_count"
