"""The call router: who is refused, with what, and which dialog answers the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.messages import DepositFacts
from sipvm.domain.routing import Period, PlayMessage, Route, Transfer, Voicemail
from sipvm.errors import InvalidInputError
from sipvm.flows.router import CallRouter, RouterSettings
from sipvm.testing.clock import FakeClock
from sipvm.testing.fake_channel import HANGUP, WAIT, FakeChannel, Speak
from tests.support.tones import write_tone_wav

from .conftest import DictGreetings, IdPrompts

INVITES = Path(__file__).resolve().parents[1] / "unit" / "captures"


class FakeControl:
    """Records rejects; hands out one scripted channel per accept."""

    def __init__(self, script: list[object]) -> None:
        self.script = script
        self.rejected: list[tuple[int, int, tuple[tuple[str, str], ...]]] = []
        self.accepted: list[tuple[int, str]] = []
        self.channel: FakeChannel | None = None

    async def accept(self, key: int, *, refer_host: str) -> FakeChannel:
        self.accepted.append((key, refer_host))
        self.channel = FakeChannel(list(self.script))  # type: ignore[arg-type]
        return self.channel

    async def reject(
        self, key: int, status: int, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        self.rejected.append((key, status, headers))


@dataclass(frozen=True)
class FixedRouting:
    """Every routed entry is in ``period`` with ``route`` (the schedule is tested elsewhere)."""

    route: Route
    period: Period = Period.BUSINESS

    async def now(self, ext: str) -> FixedRouting:
        return self


def router(
    app: App,
    clock: FakeClock,
    *,
    menu: bool = False,
    routing: FixedRouting | None = None,
    **kw: object,
) -> CallRouter:
    settings = RouterSettings(
        **{
            "trusted_peers": frozenset({"127.0.0.2"}),
            "pilots": frozenset({"*97", "voicemail"}),
            **kw,
        }  # type: ignore[arg-type]
    )
    prompts = IdPrompts()
    return CallRouter(
        settings,
        app.directory,
        prompts=prompts,
        greetings=DictGreetings(),
        sink=app.deposits,
        clock=clock,
        menu=app.menu_services(prompts, clock) if menu else None,
        routing=routing,
    )


def invite(name: str) -> str:
    return (INVITES / name).read_bytes().decode()


@pytest.mark.parametrize(
    "name",
    [
        "plain_invite.sip",
        "asterisk_diversion_no_answer.sip",
        "pai_pilot.sip",
        "malformed_http_probe.sip",
    ],
)
async def test_untrusted_sources_get_403_whatever_they_ask(
    app: App, clock: FakeClock, name: str
) -> None:
    control = FakeControl([])
    await router(app, clock).on_invite(control, 7, invite(name), "127.0.0.1:5060")
    assert control.rejected == [(7, 403, ())]
    assert control.accepted == []


async def test_unknown_and_known_extensions_get_the_same_403(app: App, clock: FakeClock) -> None:
    answers = []
    for ext in ("2001", "9999"):
        control = FakeControl([])
        raw = invite("plain_invite.sip").replace("sip:2001@", f"sip:{ext}@")
        await router(app, clock).on_invite(control, 1, raw, "198.51.100.7:5060")
        answers.append(control.rejected)
    assert answers[0] == answers[1] == [(1, 403, ())]


async def test_a_trusted_network_is_answered_and_its_neighbours_are_refused(
    app: App, clock: FakeClock
) -> None:
    """``--trusted-peer 10.20.30.0/24``: a PBX anywhere inside it is answered, and the same
    INVITE from just outside gets 403 (before this, the entry only matched the text
    "10.20.30.0/24" itself, so every peer was refused)."""
    raw = invite("plain_invite.sip")
    for source in ("10.20.30.1:5060", "10.20.30.254:5070"):
        inside = FakeControl([HANGUP])
        r = router(app, clock, trusted_peers=frozenset({"10.20.30.0/24", "192.0.2.7"}))
        await r.on_invite(inside, 1, raw, source)
        assert (inside.rejected, inside.accepted) == ([], [(1, source)])
    for source in ("10.20.31.1:5060", "10.20.29.255:5060", "192.0.2.8:5060"):
        outside = FakeControl([])
        r = router(app, clock, trusted_peers=frozenset({"10.20.30.0/24", "192.0.2.7"}))
        await r.on_invite(outside, 2, raw, source)
        assert (outside.rejected, outside.accepted) == ([(2, 403, ())], [])


async def test_behind_the_front_the_sender_is_checked_against_trusted_networks(
    app: App, clock: FakeClock
) -> None:
    raw = invite("plain_invite.sip")
    settings = {"trusted_peers": frozenset({"10.20.30.0/24"}), "front": frozenset({"127.0.0.10"})}
    taken = FakeControl([HANGUP])
    await router(app, clock, **settings).on_invite(
        taken, 1, with_source_header(raw, "10.20.30.40:5060"), "127.0.0.10:5060"
    )
    assert taken.accepted == [(1, "10.20.30.40:5060")]
    refused = FakeControl([])
    await router(app, clock, **settings).on_invite(
        refused, 2, with_source_header(raw, "10.20.40.40:5060"), "127.0.0.10:5060"
    )
    assert refused.rejected == [(2, 403, ())]


@pytest.mark.parametrize("entry", ["10.20.30.1/24", "pbx.example.com", "10.0.0.0/40"])
def test_a_bad_trusted_peer_stops_the_router_being_built(entry: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(repr(entry))):
        RouterSettings(trusted_peers=frozenset({"127.0.0.2", entry}), pilots=frozenset())


async def test_draining_answers_503_with_retry_after(app: App, clock: FakeClock) -> None:
    r = router(app, clock)
    r.draining = True
    control = FakeControl([])
    await r.on_invite(control, 3, invite("plain_invite.sip"), "127.0.0.2:5060")
    assert control.rejected == [(3, 503, (("Retry-After", "30"),))]


async def test_a_worker_behind_answers_503_with_a_short_retry_after(
    app: App, clock: FakeClock
) -> None:
    r = router(app, clock)
    r.behind = True
    control = FakeControl([])
    await r.on_invite(control, 3, invite("plain_invite.sip"), "127.0.0.2:5060")
    assert control.rejected == [(3, 503, (("Retry-After", "5"),))]


async def test_malformed_from_a_trusted_peer_gets_400(app: App, clock: FakeClock) -> None:
    control = FakeControl([])
    await router(app, clock).on_invite(
        control, 4, invite("malformed_http_probe.sip"), "127.0.0.2:5060"
    )
    assert control.rejected == [(4, 400, ())]


async def test_diversion_overflow_deposits_in_the_queue(app: App, clock: FakeClock) -> None:
    control = FakeControl(["#", Speak(4.0, ended_by="hangup")])
    await router(app, clock).on_invite(
        control, 5, invite("asterisk_diversion_no_answer.sip"), "127.0.0.2:5060"
    )
    assert control.accepted == [(5, "127.0.0.2:5060")]
    (m,) = await app.messages.messages("2001")
    assert (m.caller, m.caller_name, m.reason) == ("5551234", "Pat Caller", "no-answer")


async def test_a_caller_id_with_control_characters_is_stored_as_anonymous(
    app: App, clock: FakeClock
) -> None:
    forged = invite("asterisk_diversion_no_answer.sip").replace(
        '"Pat Caller" <sip:5551234@',
        '"Pat\x1b[2J" <sip:5551234%0alogin%20failed%3a%20source%3d10.9.9.9@',
    )
    control = FakeControl(["#", Speak(4.0, ended_by="hangup")])
    await router(app, clock).on_invite(control, 5, forged, "127.0.0.2:5060")
    (m,) = await app.messages.messages("2001")
    assert (m.caller, m.caller_name) == ("", "")  # a terminal escape in the name too


async def test_refer_host_is_the_proxy_when_configured(app: App, clock: FakeClock) -> None:
    control = FakeControl([HANGUP])
    r = router(app, clock, proxy_host="127.0.0.9:5080")
    await r.on_invite(control, 6, invite("plain_invite.sip"), "127.0.0.2:5060")
    assert control.accepted == [(6, "127.0.0.9:5080")]


@pytest.mark.parametrize("user", ["9999", "voicemail"])
async def test_unknown_inbox_or_pilot_hears_a_prompt_and_nothing_is_recorded(
    app: App, clock: FakeClock, user: str
) -> None:
    control = FakeControl([])
    raw = invite("plain_invite.sip").replace("sip:2001@", f"sip:{user}@")
    await router(app, clock).on_invite(control, 8, raw, "127.0.0.2:5060")
    assert control.channel is not None
    assert control.channel.played() == ["deposit.no_mailbox", "common.goodbye"]
    assert not [op for op, _ in control.channel.transcript if op == "record"]
    assert ("hangup", None) in control.channel.transcript


async def test_disabled_inbox_sounds_like_an_unknown_one(
    app: App, clock: FakeClock, tmp_path: Path, example_directory_file: Path
) -> None:
    off = tmp_path / "off.toml"
    off.write_text(
        example_directory_file.read_text().replace(
            "[common_area.policy]\nvoicemail = true", "[common_area.policy]\nvoicemail = false"
        )
    )
    await app.directory.apply_file(off)
    control = FakeControl([])
    raw = invite("plain_invite.sip").replace("sip:2001@", "sip:1900@")
    await router(app, clock).on_invite(control, 9, raw, "127.0.0.2:5060")
    assert control.channel is not None
    assert control.channel.played() == ["deposit.no_mailbox", "common.goodbye"]


# --- the desk-phone menu ------------------------------------------------------------------------


async def test_pilot_from_a_desk_phone_asks_only_its_pin(app: App, clock: FakeClock) -> None:
    control = FakeControl(["739164#", WAIT, WAIT, WAIT])  # Bob's PIN (P-Asserted-Identity 1002)
    await router(app, clock, menu=True).on_invite(
        control, 10, invite("pai_pilot.sip"), "127.0.0.2:5060"
    )
    assert control.channel is not None
    played = control.channel.played()
    assert played[:2] == ["login.password", "menu.inbox"]  # the main menu's first line
    assert ("hangup", None) in control.channel.transcript


async def test_pilot_with_an_inbox_goes_there_after_login(app: App, clock: FakeClock) -> None:
    await app.deposits.deposit_file(
        DepositFacts(inbox="2001", received_at=clock(), caller="5550100"),
        write_tone_wav(Path(str(app.data_dir)) / "t.wav", 700, 3.0),
    )
    # From 5551234 is no desk phone: extension first. Bob may play 2001.
    control = FakeControl(["1002#", "739164#", "#", "", "*", WAIT, WAIT, WAIT])
    raw = invite("plain_invite.sip").replace("sip:2001@10.0.0.20", "sip:*97*2001@10.0.0.20")
    await router(app, clock, menu=True).on_invite(control, 11, raw, "127.0.0.2:5060")
    assert control.channel is not None
    assert [op for op, _ in control.channel.transcript].count("play_message") == 1
    # straight into 2001: "1 new." (no main menu first)
    assert control.channel.played()[:3] == ["login.extension", "login.password", "menu.new_count"]


async def test_a_call_diverted_to_the_pilot_is_still_a_deposit(app: App, clock: FakeClock) -> None:
    control = FakeControl(["#", Speak(4.0, ended_by="hangup")])
    await router(app, clock, menu=True).on_invite(
        control, 12, invite("asterisk_diversion_no_answer.sip"), "127.0.0.2:5060"
    )
    assert len(await app.messages.messages("2001")) == 1


# --- routed entries: queues, groups, auto receptionists -----------------------------------------


async def test_queue_overflow_follows_its_route(app: App, clock: FakeClock) -> None:
    control = FakeControl([])
    r = router(app, clock, routing=FixedRouting(Transfer("1101"), Period.CLOSED))
    await r.on_invite(control, 20, invite("asterisk_diversion_no_answer.sip"), "127.0.0.2:5060")
    assert control.channel is not None
    assert ("transfer", "1101") in control.channel.transcript
    assert await app.messages.messages("2001") == []


async def test_queue_message_route_takes_no_message(app: App, clock: FakeClock) -> None:
    control = FakeControl([])
    r = router(app, clock, routing=FixedRouting(PlayMessage(), Period.HOLIDAY))
    await r.on_invite(control, 21, invite("asterisk_diversion_no_answer.sip"), "127.0.0.2:5060")
    assert control.channel is not None
    assert control.channel.played()[-1] == "common.goodbye"
    assert [op for op, _ in control.channel.transcript if op == "record"] == []


async def test_auto_receptionist_called_directly_runs_its_route(app: App, clock: FakeClock) -> None:
    control = FakeControl(["", Speak(3.0, ended_by="hangup")])
    r = router(app, clock, routing=FixedRouting(Voicemail(), Period.CLOSED))
    raw = invite("plain_invite.sip").replace("sip:2001@", "sip:3001@")
    await r.on_invite(control, 22, raw, "127.0.0.2:5060")
    assert control.channel is not None
    assert control.channel.played()[:2] == ["ar.welcome", "ar.closed"]
    assert len(await app.messages.messages("3001")) == 1


async def test_overflow_to_an_auto_receptionist_leaves_a_message(
    app: App, clock: FakeClock
) -> None:
    control = FakeControl(["#", Speak(3.0, ended_by="hangup")])
    r = router(app, clock, routing=FixedRouting(Transfer("2001")))
    raw = invite("asterisk_diversion_no_answer.sip").replace("sip:2001@", "sip:3001@")
    await r.on_invite(control, 23, raw, "127.0.0.2:5060")
    assert control.channel is not None
    assert [op for op, _ in control.channel.transcript if op == "transfer"] == []
    assert len(await app.messages.messages("3001")) == 1


def with_source_header(raw: str, value: str) -> str:
    head, sep, body = raw.partition("\r\n\r\n")
    return f"{head}\r\nX-Sipvm-Source: {value}{sep}{body}"


async def test_behind_the_front_the_real_sender_decides_trust(app: App, clock: FakeClock) -> None:
    """In a worker pool every INVITE comes from the front; its X-Sipvm-Source names the
    sender, which must be trusted, and REFERs go back to that sender."""
    front = frozenset({"127.0.0.10"})
    raw = invite("plain_invite.sip")
    refused = FakeControl([])
    await router(app, clock, front=front).on_invite(
        refused, 1, with_source_header(raw, "198.51.100.7:5060"), "127.0.0.10:5060"
    )
    assert refused.rejected == [(1, 403, ())]
    missing = FakeControl([])
    await router(app, clock, front=front).on_invite(missing, 2, raw, "127.0.0.10:5060")
    assert missing.rejected == [(2, 403, ())]
    taken = FakeControl([HANGUP])
    await router(app, clock, front=front).on_invite(
        taken, 3, with_source_header(raw, "127.0.0.2:5070"), "127.0.0.10:5060"
    )
    assert taken.rejected == [] and taken.accepted == [(3, "127.0.0.2:5070")]
