"""Auto receptionist and overflow routes over the fake channel and a real store.

The example directory's auto receptionist 3001 gets the menu below; each test follows one
caller through it. Transfers end in the fake channel's ``TransferOutcome`` (200 by default).
"""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest

from sipvm.app import App
from sipvm.domain.routing import (
    Back,
    DialByExtension,
    Menu,
    Operator,
    Period,
    PlayMessage,
    Repeat,
    Route,
    Routing,
    RunMenu,
    Submenu,
    Transfer,
    Voicemail,
)
from sipvm.flows.receptionist import RoutedCall, RoutedServices, answer_routed
from sipvm.testing.clock import FakeClock
from sipvm.testing.fake_channel import WAIT, FakeChannel, Speak, Step, TransferOutcome
from tests.flows.conftest import IdPrompts
from tests.support.tones import write_tone_wav

AR = "3001"
EXTERNAL = "+15551230000"
MAIN = Menu(
    options=MappingProxyType(
        {
            "1": Transfer("2001"),
            "2": Voicemail(inbox="1002"),
            "3": DialByExtension(),
            "4": Submenu("branch"),
            "5": Transfer(EXTERNAL),
            "9": Repeat(),
            "0": Operator(),
        }
    ),
    attempts=3,
    fallback=Operator(),
)
BRANCH = Menu(
    options=MappingProxyType({"1": Transfer("4001"), "2": Voicemail(), "*": Back()}),
)
RUN_MENU = RunMenu()
ROUTING = Routing(menu=MAIN, submenus=MappingProxyType({"branch": BRANCH}))


@pytest.fixture
async def routed_app(app: App) -> App:
    directory = app.directory.current
    ar = replace(directory.extensions[AR], routing=ROUTING)
    changed = replace(directory, extensions={**directory.extensions, AR: ar})
    await app.directory.apply(changed, source="test")
    return app


async def call(
    app: App,
    clock: FakeClock,
    script: list[Step],
    *,
    route: Route = RUN_MENU,
    period: Period = Period.BUSINESS,
    entry: str = AR,
    prompts: IdPrompts | None = None,
) -> FakeChannel:
    channel = FakeChannel(list(script))
    services = RoutedServices(
        directory=app.directory,
        prompts=prompts or IdPrompts(),
        greetings=app.greetings,
        sink=app.deposits,
        clock=clock,
    )
    routed = RoutedCall(
        entry=app.directory.current.extensions[entry],
        period=period,
        route=route,
        caller="5551234",
    )
    await answer_routed(channel, services, routed)
    return channel


def transfers(channel: FakeChannel) -> list[object]:
    return [detail for op, detail in channel.transcript if op == "transfer"]


async def stored_in(app: App, inbox: str) -> int:
    return len(await app.messages.messages(inbox))


async def test_greeting_then_menu_key_transfers(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, ["", "1"])
    played = channel.played()
    assert played[0] == "ar.welcome"
    assert transfers(channel) == ["2001"]
    assert "ar.transferring" in played


async def test_a_key_during_the_greeting_chooses_at_once(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, ["1"])
    assert transfers(channel) == ["2001"]
    assert "ar.option_transfer" not in channel.played()  # the menu was never said


async def test_generated_menu_prompt_names_every_option(routed_app: App, clock: FakeClock) -> None:
    prompts = IdPrompts()
    channel = await call(routed_app, clock, ["", "1"], prompts=prompts)
    menu = channel.transcript[1][1]
    stems = [p.stem for p in menu]  # type: ignore[attr-defined]
    assert stems.count("menu.press") == 3  # transfer 2001, voicemail 1002, transfer external
    for option in ("dial_by_extension", "submenu", "repeat", "operator"):
        assert f"ar.option_{option}" in stems
    extensions = [f["ext"] for pid, f in prompts.fills if pid == "ar.extension"]
    assert extensions == ["2001", "1002", "15551230000"]


async def test_uploaded_menu_prompt_replaces_the_generated_one(
    routed_app: App, clock: FakeClock
) -> None:
    prompt = write_tone_wav(routed_app.data_dir / "menu.wav", 500, 2.0)
    await routed_app.greetings.upload(AR, "menu-main", prompt)
    channel = await call(routed_app, clock, ["", "1"])
    menu = [p.stem for p in channel.transcript[1][1]]  # type: ignore[attr-defined]
    assert len(menu) == 1 and menu[0].startswith("menu-main-")


async def test_voicemail_to_another_inbox(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, ["", "2", "#", Speak(3.0, ended_by="hangup")])
    assert await stored_in(routed_app, "1002") == 1
    assert transfers(channel) == []


async def test_dial_by_extension(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, ["", "3", "1003#"])
    assert transfers(channel) == ["1003"]


async def test_dial_by_extension_refuses_what_is_not_an_extension(
    routed_app: App, clock: FakeClock
) -> None:
    channel = await call(routed_app, clock, ["", "3", "9005550000#", "", "1"])
    played = channel.played()
    assert "ar.no_such_extension" in played
    assert transfers(channel) == ["2001"]  # the menu again, then 1


async def test_submenu_back_and_submenu_options(routed_app: App, clock: FakeClock) -> None:
    back = await call(routed_app, clock, ["", "4", "*", "1"])
    assert transfers(back) == ["2001"]
    inside = await call(routed_app, clock, ["", "4", "1"])
    assert transfers(inside) == ["4001"]
    own_voicemail = await call(
        routed_app, clock, ["", "4", "2", "#", Speak(3.0, ended_by="hangup")]
    )
    assert transfers(own_voicemail) == []
    assert await stored_in(routed_app, AR) == 1


async def test_repeat_says_the_menu_again(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, ["", "9", "1"])
    assert channel.played().count("ar.option_dial_by_extension") == 2


async def test_no_input_replays_then_falls_back(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, ["", WAIT, WAIT, WAIT])
    assert channel.played().count("ar.option_operator") == 3
    assert transfers(channel) == ["0"]  # the fallback: the operator


async def test_invalid_keys_are_said_then_fall_back(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, ["", "7", "8", "6"])
    assert channel.played().count("ar.invalid") == 3
    assert transfers(channel) == ["0"]


async def test_external_number_written_in_the_directory_is_allowed(
    routed_app: App, clock: FakeClock
) -> None:
    channel = await call(routed_app, clock, ["", "5"])
    assert transfers(channel) == [EXTERNAL]


async def test_a_transfer_to_a_number_not_in_the_directory_is_refused(
    routed_app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    channel = await call(
        routed_app,
        clock,
        ["#", Speak(3.0, ended_by="hangup")],
        route=Transfer("+19005550000"),
        entry="2001",
    )
    assert transfers(channel) == []
    assert "ar.transfer_failed" in channel.played()
    assert await stored_in(routed_app, "2001") == 1  # voicemail offered instead
    assert "toll-fraud guard" in caplog.text


async def test_a_failed_transfer_says_so_and_offers_the_targets_voicemail(
    routed_app: App, clock: FakeClock
) -> None:
    script: list[Step] = ["", "1", TransferOutcome(486), "#", Speak(3.0, ended_by="hangup")]
    channel = await call(routed_app, clock, script)
    assert transfers(channel) == ["2001"]
    assert "ar.transfer_failed" in channel.played()
    assert await stored_in(routed_app, "2001") == 1


async def test_closed_hours_voicemail_plays_the_closed_greeting(
    routed_app: App, clock: FakeClock
) -> None:
    channel = await call(
        routed_app,
        clock,
        ["", Speak(3.0, ended_by="hangup")],
        route=Voicemail(),
        period=Period.CLOSED,
    )
    played = channel.played()
    assert played[:4] == ["ar.welcome", "ar.closed", "deposit.instructions", "deposit.beep"]
    assert await stored_in(routed_app, AR) == 1


async def test_uploaded_period_greetings(routed_app: App, clock: FakeClock) -> None:
    closed = write_tone_wav(routed_app.data_dir / "closed.wav", 600, 2.0)
    await routed_app.greetings.upload(AR, "closed", closed)
    holiday = await call(routed_app, clock, [], route=PlayMessage(), period=Period.HOLIDAY)
    assert holiday.played()[0].startswith("closed-")  # no holiday greeting: the closed one
    assert holiday.played()[-1] == "common.goodbye"
    assert [op for op, _ in holiday.transcript if op == "record"] == []


async def test_operator_route(routed_app: App, clock: FakeClock) -> None:
    channel = await call(routed_app, clock, [], route=Operator(), entry="4001")
    assert transfers(channel) == ["0"]
    assert "ar.welcome" not in channel.played()  # queues and groups have no AR greeting
