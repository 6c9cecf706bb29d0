"""The desk-phone menu over the fake channel and a real store: inboxes, messages, keys.

Scripts follow the dialog one prompt at a time: a string is what the caller types while the
next prompt plays ("" = listens without typing). ``LISTEN`` lets one message be announced and
played to its end.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sipvm.domain.caller_id import PhoneNumber
from sipvm.errors import NotPermittedError
from sipvm.flows.channel import CallerHungUp
from sipvm.testing.fake_channel import HANGUP, KEY_AFTER_S, WAIT
from tests.flows.menu_kit import ANN, ANN_PIN, BEN, BEN_PIN, MenuKit, played_messages

LOGIN = [ANN_PIN + "#"]
LISTEN = ["", ""]  # the announcement and envelope, then the message itself


def enter(digit: str) -> list[str]:
    """Log in as Ann, pick the inbox announced with ``digit``, hear its counts."""
    return [*LOGIN, digit, ""]


async def stems(kit: MenuKit, *ids: int) -> list[str]:
    return [await kit.audio_stem(i) for i in ids]


# --- main menu --------------------------------------------------------------------------------


async def test_main_menu_lists_own_inbox_first_with_names_and_counts(kit: MenuKit) -> None:
    await kit.deposit(ANN, 500)
    await kit.deposit("2001", 600)
    await kit.deposit("2001", 700)
    channel = await kit.call([*LOGIN, WAIT, WAIT, WAIT])
    menu = channel.transcript[2][1]
    # "Inbox 1 0 0 1, 1 new, press 1. Inbox 2 0 0 1, 2 new, press 2." — no
    # "you have access to 2 inboxes" first: the lines say it.
    assert [p.stem for p in menu] == [  # type: ignore[attr-defined]
        *["menu.inbox", "menu.new_count", "menu.press"] * 2,
        "menu.options_key",
    ]
    fills = kit.prompts.fills
    names = [f["ext"] for pid, f in fills if pid == "menu.inbox"]
    assert names[:2] == [ANN, "2001"]
    counts = [f for pid, f in fills if pid == "menu.new_count"]
    assert counts[:2] == [{"n": 1}, {"n": 2}]
    assert channel.played()[-1] == "common.goodbye"  # three rounds without an answer


async def test_a_main_menu_line_says_no_count_when_nothing_is_new(kit: MenuKit) -> None:
    mid = await kit.deposit("2001", 600)
    await kit.app.messages.mark_played(mid, as_member=BEN)
    channel = await kit.call([*LOGIN, WAIT, WAIT, WAIT])
    menu = [p.stem for p in channel.transcript[2][1]]  # type: ignore[attr-defined]
    assert menu == [
        *["menu.inbox", "menu.press"] * 2,  # "Inbox 2 0 0 1, press 2."
        "menu.options_key",
    ]


async def test_a_recorded_name_is_said_instead_of_the_extension(kit: MenuKit) -> None:
    name = kit.tmp / "sales-name.wav"
    from tests.support.tones import write_tone_wav

    write_tone_wav(name, 440, 1.5)
    await kit.app.greetings.upload("2001", "name", name)
    channel = await kit.call([*LOGIN, WAIT, WAIT, WAIT])
    menu = [p.stem for p in channel.transcript[2][1]]  # type: ignore[attr-defined]
    assert menu.count("menu.inbox") == 1  # Ann's own; 2001 by its recorded name
    assert any(s.startswith("name-") for s in menu)


async def test_one_inbox_goes_straight_in(kit: MenuKit) -> None:
    await kit.use_directory(extra="")
    # Cleo (1003) has only her own inbox.
    await kit.deposit("1003", 500)
    channel = await kit.call(["315972#", "", *LISTEN, "*", WAIT, WAIT, WAIT], hint="1003")
    played = channel.played()
    assert played[1] == "menu.new_count"  # "1 new.": no inbox list first
    assert "menu.inbox" in played  # leaving the inbox comes back to the main menu


async def test_more_than_nine_inboxes_are_paged(kit: MenuKit) -> None:
    queues = "".join(
        f'\n[[call_queue]]\next = "{2100 + n}"\nname = "Q{n}"\nsite = "HQ"\n'
        f'[[call_queue.members]]\nmember = "1001"\nrights = ["play"]\n'
        for n in range(10)
    )
    await kit.use_directory(extra=queues)
    channel = await kit.call([*LOGIN, "#", "*", "*"])
    pages = [[f["ext"] for f in fills] for fills in _menu_pages(kit)]
    assert len(pages[0]) == 9 and len(pages[1]) == 3  # 12 inboxes: own, 2001, 2100..2109
    assert pages[0][0] == ANN and pages[1] == ["2107", "2108", "2109"]
    played = channel.played()
    assert played.count("menu.more_inboxes") == 2  # pages 1 and (again) 1
    assert played.count("menu.earlier_inboxes") == 1
    assert played[-1] == "common.goodbye"  # * on the first page ends the call


def _menu_pages(kit: MenuKit) -> list[list[dict[str, object]]]:
    """The menu.inbox fills, grouped per page (a page ends where the next starts with Ann)."""
    pages: list[list[dict[str, object]]] = []
    for pid, fill in kit.prompts.fills:
        if pid != "menu.inbox":
            continue
        if not pages or fill["ext"] in (ANN, "2107"):
            pages.append([])
        pages[-1].append(fill)
    return pages


async def test_direct_inbox_after_login(kit: MenuKit) -> None:
    first = await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "", *LISTEN, "*", WAIT, WAIT, WAIT], direct="2001")
    assert played_messages(channel)[0][0] == (await stems(kit, first))[0]
    assert "menu.inbox" in channel.played()  # back to the main menu afterwards


async def test_direct_inbox_without_access_sounds_the_same_as_a_missing_one(kit: MenuKit) -> None:
    await kit.deposit("1003", 600)
    not_granted = await kit.call([*LOGIN, WAIT, WAIT, WAIT], direct="1003")
    missing = await kit.call([*LOGIN, WAIT, WAIT, WAIT], direct="8888")
    assert not_granted.played() == missing.played()
    assert not_granted.played()[1] == "menu.no_access"
    assert played_messages(not_granted) == []


# --- messages ---------------------------------------------------------------------------------


async def test_new_messages_first_oldest_first_then_saved(kit: MenuKit) -> None:
    old = await kit.deposit("2001", 500)
    kit.clock.advance(minutes=1)
    new1 = await kit.deposit("2001", 600)
    kit.clock.advance(minutes=1)
    new2 = await kit.deposit("2001", 700)
    await kit.app.messages.mark_played(old, as_member=BEN)
    channel = await kit.call([*enter("2"), *LISTEN, "6", *LISTEN, "6", *LISTEN, "6"])
    assert [s for s, _ in played_messages(channel)] == await stems(kit, new1, new2, old)
    assert channel.played().count("menu.no_more") == 1


async def test_a_message_is_played_for_everyone_when_playback_starts(kit: MenuKit) -> None:
    mid = await kit.deposit("2001", 600)
    with pytest.raises(CallerHungUp):
        await kit.call([*enter("2"), "", HANGUP])  # hangs up as the message starts
    seen_by_ben = await kit.app.messages.messages("2001", as_member=BEN)
    assert seen_by_ben[0].id == mid
    assert seen_by_ben[0].played_by == ANN
    counts = {i.ext: (i.new, i.old) for i in await kit.app.messages.inboxes(BEN)}
    assert counts["2001"] == (0, 1)


async def test_envelope_says_time_in_the_site_zone_and_the_caller(kit: MenuKit) -> None:
    kit.clock.now = datetime(2026, 11, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York
    await kit.deposit("2001", 600, caller="1002")
    await kit.deposit("2001", 700, caller="+1 555 0100")
    await kit.deposit("2001", 800, caller="anonymous")
    await kit.call([*enter("2"), *LISTEN, "3", "", "6", *LISTEN, "6", *LISTEN, "*"])
    received = [f for pid, f in kit.prompts.fills if pid == "menu.received"]
    when = received[0]["when"]
    assert isinstance(when, datetime) and when.hour == 10 and when.utcoffset() is not None
    assert len(received) == 4  # three envelopes and one "3: envelope again"
    callers = [
        (pid, f.get("caller") or f.get("ext"))
        for pid, f in kit.prompts.fills
        if pid.startswith("menu.from")
    ]
    assert callers == [
        ("menu.from_extension", "1002"),  # "from extension 1 0 0 2" (no recorded name)
        ("menu.from_extension", "1002"),  # 3 repeats the envelope
        ("menu.from", "15550100"),
        ("menu.from_unknown", None),
    ]
    phone = next(f["caller"] for pid, f in kit.prompts.fills if pid == "menu.from")
    assert isinstance(phone, PhoneNumber)  # said in groups: "1, 5 5 5, 0 1 hundred"


async def test_previous_repeat_and_save(kit: MenuKit) -> None:
    a = await kit.deposit("2001", 500)
    kit.clock.advance(minutes=1)
    b = await kit.deposit("2001", 600)
    script = [*enter("2"), *LISTEN, "4", *LISTEN, "9", *LISTEN, "5", *LISTEN, "4", *LISTEN, "*"]
    channel = await kit.call(script)
    sa, sb = await stems(kit, a, b)
    assert [s for s, _ in played_messages(channel)] == [sa, sb, sb, sa]
    played = channel.played()
    assert played.count("menu.no_more") == 1  # 4 on the first message
    assert "menu.message_saved" in played


async def test_mark_new_makes_it_new_for_everyone(kit: MenuKit) -> None:
    mid = await kit.deposit("2001", 600)
    channel = await kit.call([*enter("2"), *LISTEN, "2", "*"])
    assert "menu.marked_new" in channel.played()
    message = await kit.message(mid)
    assert not message.played
    trail = [(e.actor, e.action) for e in await kit.repo.audit_trail(mid)]
    assert trail[-2:] == [(ANN, "play"), (ANN, "mark-new")]


async def test_a_key_during_playback_acts_at_once(kit: MenuKit) -> None:
    await kit.deposit("2001", 500)
    kit.clock.advance(minutes=1)
    b = await kit.deposit("2001", 600)
    channel = await kit.call([*enter("2"), "", "6", *LISTEN, "*"])  # 6 while the first plays
    assert [s for s, _ in played_messages(channel)][1] == (await stems(kit, b))[0]


async def test_star_and_pound_move_three_seconds_and_zero_pauses(kit: MenuKit) -> None:
    await kit.deposit("2001", 600, seconds=10)
    # During playback: # (at 1 s -> 4 s), # (at 5 s -> 8 s), * (at 9 s -> 6 s), 0 pause at 7 s,
    # 0 resumes at 7 s; then it plays to the end.
    script = [*enter("2"), "", "#", "#", "*", "0", "", "0", "", "*"]
    channel = await kit.call(script)
    starts = [start for _, start in played_messages(channel)]
    assert starts == [0.0, 1 + 3, 4 + 1 + 3, 8 + 1 - 3, 6 + KEY_AFTER_S]
    assert "menu.paused" in channel.played()


async def test_no_more_messages_goes_back_to_the_main_menu(kit: MenuKit) -> None:
    await kit.deposit("2001", 600)
    channel = await kit.call([*enter("2"), *LISTEN, "6", WAIT, WAIT, WAIT])
    played = channel.played()
    after = played[played.index("menu.no_more") + 1 :]
    assert after[:2] == ["menu.inbox", "menu.press"]


async def test_a_message_deleted_meanwhile_is_skipped_with_a_word(kit: MenuKit) -> None:
    a = await kit.deposit("2001", 500)
    kit.clock.advance(minutes=1)
    b = await kit.deposit("2001", 600)
    kit.clock.advance(minutes=1)
    c = await kit.deposit("2001", 700)
    messages = kit.app.messages

    class BenDeletesWhileAnnListens:
        """Ann's mailbox view; Ben deletes message b as soon as Ann starts listening to a."""

        def __getattr__(self, name: str) -> object:
            return getattr(messages, name)

        async def listen(self, message_id: int, *, as_member: str) -> object:
            if message_id == a:
                await messages.delete(b, as_member=BEN)
            return await messages.listen(message_id, as_member=as_member)

    services = replace(kit.services(), mailboxes=BenDeletesWhileAnnListens())  # type: ignore[arg-type]
    channel = await kit.call([*enter("2"), *LISTEN, "6", "", *LISTEN, "*"], services=services)
    played = channel.played()
    assert "menu.message_gone" in played
    assert [s for s, _ in played_messages(channel)] == await stems(kit, a, c)


async def test_an_invalid_key_says_so(kit: MenuKit) -> None:
    await kit.deposit("2001", 600)
    channel = await kit.call([*enter("2"), *LISTEN, "#", "*"])
    assert "common.invalid" in channel.played()


async def test_empty_inbox_says_no_messages(kit: MenuKit) -> None:
    channel = await kit.call([*LOGIN, "2", WAIT, WAIT, WAIT])
    assert "menu.no_messages" in channel.played()
    assert played_messages(channel) == []


async def test_ben_logs_in_as_well(kit: MenuKit) -> None:
    mid = await kit.deposit("2001", 600)
    channel = await kit.call([BEN_PIN + "#", "2", "", *LISTEN, "7", "*"], hint=BEN)
    assert "menu.deleted" in channel.played()
    assert (await kit.message(mid)).deleted_by == BEN
    _ = ANN


async def test_pound_during_the_inbox_intro_goes_straight_to_the_message(kit: MenuKit) -> None:
    mid = await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "2", "#", "", "*"])
    played = channel.played()
    assert played_messages(channel) == [((await stems(kit, mid))[0], 0.0)]
    assert "menu.first_message" not in played and "menu.received" not in played


async def test_star_during_the_inbox_intro_goes_back(kit: MenuKit) -> None:
    await kit.deposit("2001", 600)
    channel = await kit.call([*LOGIN, "2", "*", WAIT, WAIT, WAIT])
    assert played_messages(channel) == []
    assert channel.played().count("menu.options_key") == 4  # the menu, then three more rounds


async def test_a_message_whose_audio_is_unreadable_is_skipped_not_fatal(kit: MenuKit) -> None:
    broken = await kit.deposit("2001", 500)
    kit.clock.advance(minutes=1)
    good = await kit.deposit("2001", 600)
    kit.app.files.path((await kit.message(broken)).audio).write_bytes(b"not a wav")
    # The broken one's announcement, the "no longer available", then the good one.
    channel = await kit.call([*enter("2"), "", "", *LISTEN, "*"])
    assert "menu.message_gone" in channel.played()
    assert [s for s, _ in played_messages(channel)] == await stems(kit, good)


async def test_access_taken_away_during_the_call_is_said(kit: MenuKit) -> None:
    await kit.deposit("2001", 600)
    messages = kit.app.messages

    class RevokedOnOpen:
        def __getattr__(self, name: str) -> object:
            return getattr(messages, name)

        async def messages(self, inbox: str, *, as_member: str | None = None) -> object:
            await kit.use_directory(ann_rights=("play",), extra="")  # unchanged rights...
            raise NotPermittedError("1001 does not have the play right on inbox 2001")

    services = replace(kit.services(), mailboxes=RevokedOnOpen())  # type: ignore[arg-type]
    channel = await kit.call([*LOGIN, "2", WAIT, WAIT, WAIT], services=services)
    assert "menu.no_access" in channel.played()
    assert channel.played()[-1] == "common.goodbye"
