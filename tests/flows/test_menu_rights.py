"""Delete and share from the menu, for every combination of rights, and the share dialog."""

from __future__ import annotations

from itertools import combinations

import pytest

from sipvm.testing.fake_channel import Speak
from tests.flows.menu_kit import ANN, ANN_PIN, BEN, MenuKit, played_messages
from tests.support.tones import read_pcm_mono, seconds_with_tone

LOGIN = [ANN_PIN + "#"]
LISTEN = ["", ""]
EXTRA_RIGHTS = ("download", "delete", "share")
COMBINATIONS = [("play", *extra) for n in range(4) for extra in combinations(EXTRA_RIGHTS, n)]


def in_queue() -> list[str]:
    """Ann logs in, opens queue 2001 (second in her list) and hears the first message."""
    return [*LOGIN, "2", "", *LISTEN]


@pytest.mark.parametrize("rights", COMBINATIONS, ids="+".join)
async def test_delete_needs_the_delete_right(kit: MenuKit, rights: tuple[str, ...]) -> None:
    await kit.use_directory(ann_rights=rights)
    mid = await kit.deposit("2001", 600)
    channel = await kit.call([*in_queue(), "7", "*"])
    played = channel.played()
    message = await kit.message(mid)
    if "delete" in rights:
        assert "menu.deleted" in played
        assert message.deleted_by == ANN
    else:
        assert "menu.no_delete_right" in played
        assert not message.deleted
        assert "menu.deleted" not in played


@pytest.mark.parametrize("rights", COMBINATIONS, ids="+".join)
async def test_share_needs_the_share_right(kit: MenuKit, rights: tuple[str, ...]) -> None:
    await kit.use_directory(ann_rights=rights)
    await kit.deposit("2001", 600)
    channel = await kit.call([*in_queue(), "8", "1002#", "1", "2", "*"])
    played = channel.played()
    ben_has = [m.source_id for m in await kit.app.messages.messages(BEN)]
    if "share" in rights:
        assert "menu.shared" in played
        assert len(ben_has) == 1
    else:
        assert "menu.no_share_right" in played
        assert "menu.share_enter" not in played
        assert ben_has == []


async def test_owner_policy_decides_delete_on_the_own_inbox(kit: MenuKit) -> None:
    no_delete = (
        '\n[[common_area]]\next = "1900"\nname = "Lobby"\nsite = "HQ"\npin = "739201"\n'
        'phones = ["sip:1900@pbx.example.com"]\n'
    )
    await kit.use_directory(extra=no_delete)
    own = await kit.deposit(ANN, 500)
    lobby = await kit.deposit("1900", 500)
    ann = await kit.call([*LOGIN, "1", "", *LISTEN, "7", "*"])
    assert "menu.deleted" in ann.played()  # a user's policy allows deleting by default
    assert (await kit.message(own)).deleted
    # A common area: delete and share are off by default; its one inbox opens straight away.
    lobby_call = await kit.call(["739201#", "", *LISTEN, "7", "8", "*"], hint="1900")
    played = lobby_call.played()
    assert "menu.no_delete_right" in played and "menu.no_share_right" in played
    assert not (await kit.message(lobby)).deleted


async def test_delete_is_for_everyone_and_the_second_deleter_is_told(kit: MenuKit) -> None:
    await kit.use_directory(ann_rights=("play", "delete"))
    mid = await kit.deposit("2001", 600)
    messages = kit.app.messages

    class BenDeletesFirst:
        def __getattr__(self, name: str) -> object:
            return getattr(messages, name)

        async def delete(self, message_id: int, *, as_member: str) -> object:
            await messages.delete(message_id, as_member=BEN)
            return await messages.delete(message_id, as_member=as_member)

    from dataclasses import replace

    services = replace(kit.services(), mailboxes=BenDeletesFirst())  # type: ignore[arg-type]
    channel = await kit.call([*in_queue(), "7", "*"], services=services)
    assert "menu.message_gone" in channel.played()
    assert (await kit.message(mid)).deleted_by == BEN
    assert await kit.app.messages.messages("2001", as_member=BEN) == []


async def test_share_makes_a_copy_with_its_own_state_and_an_audit(kit: MenuKit) -> None:
    await kit.use_directory(ann_rights=("play", "share"))
    mid = await kit.deposit("2001", 600)
    channel = await kit.call([*in_queue(), "8", "1002#", "1", "2", "*"])
    played = channel.played()
    assert played[played.index("menu.share_enter") + 1 : played.index("menu.shared")] == [
        "menu.inbox",  # Ben's name (his extension: no recorded name)
        "menu.confirm",
        "menu.share_options",
    ]
    [copy] = await kit.app.messages.messages(BEN)
    assert copy.source_id == mid and copy.shared_by == ANN
    assert copy.note is None  # the keypad has no way to write one
    assert not copy.played  # the original was played by Ann; the copy is new for Ben
    assert (await kit.message(mid)).played
    trail = [(e.actor, e.action, e.detail) for e in await kit.repo.audit_trail(mid)]
    assert (ANN, "share", f"to {BEN} (message {copy.id})") in trail


async def test_share_with_a_comment_plays_the_comment_first(kit: MenuKit) -> None:
    await kit.use_directory(ann_rights=("play", "share"))
    await kit.deposit("2001", 600, seconds=4)
    script = [*in_queue(), "8", "1002#", "1", "1", "", Speak(2.0, freq_hz=1500), "*"]
    channel = await kit.call(script)
    assert "menu.record_comment" in channel.played()
    [copy] = await kit.app.messages.messages(BEN)
    assert copy.duration_s == pytest.approx(6.0, abs=0.05)
    pcm = read_pcm_mono(kit.app.files.path(copy.audio))
    assert seconds_with_tone(pcm[: 2 * 8000], 8000, 1500) >= 1.8
    assert seconds_with_tone(pcm[2 * 8000 :], 8000, 600) >= 3.8
    assert seconds_with_tone(pcm[2 * 8000 :], 8000, 1500) == 0
    assert list(kit.app.files.scratch.iterdir()) == []  # the comment file is cleaned up


@pytest.mark.parametrize(
    "target", ["8888", "1005", "2001"], ids=["missing", "voicemail-off", "same"]
)
async def test_share_to_an_inbox_that_cannot_take_it(kit: MenuKit, target: str) -> None:
    await kit.use_directory(ann_rights=("play", "share"))
    await kit.deposit("2001", 600)
    channel = await kit.call([*in_queue(), "8", target + "#", "#", "*"])
    played = channel.played()
    assert "deposit.no_mailbox" in played
    assert "menu.shared" not in played
    assert [m for i in ("1005", BEN) for m in await kit.app.messages.messages(i)] == []


async def test_share_not_confirmed_asks_again(kit: MenuKit) -> None:
    await kit.use_directory(ann_rights=("play", "share"))
    await kit.deposit("2001", 600)
    channel = await kit.call([*in_queue(), "8", "1002#", "9", "1003#", "1", "2", "*"])
    assert channel.played().count("menu.share_enter") == 2
    assert await kit.app.messages.messages(BEN) == []
    assert len(await kit.app.messages.messages("1003")) == 1
    assert len(played_messages(channel)) == 1
