"""The deposit dialog, key by key, with the scripted fake channel and a real store."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from sipvm.app import App
from sipvm.domain.targeting import Reason
from sipvm.flows.channel import CallerHungUp, Recording
from sipvm.flows.deposit import DepositCall, DepositResult, deposit_message
from sipvm.testing.clock import FakeClock
from sipvm.testing.fake_channel import HANGUP, WAIT, FakeChannel, Speak, TransferOutcome
from tests.support.tones import write_silence_wav

from .conftest import DictGreetings, IdPrompts


def call_for(
    app: App, inbox: str = "2001", *, reason: Reason = Reason.NO_ANSWER, operator: str | None = "0"
) -> DepositCall:
    return DepositCall(
        inbox=app.directory.current.extensions[inbox],
        reason=reason,
        caller="5551234",
        caller_name="Pat Caller",
        called="2001",
        max_s=180.0,
        min_s=2.0,
        operator=operator,
    )


async def run(
    app: App,
    clock: FakeClock,
    script: list[object],
    *,
    call: DepositCall | None = None,
    greetings: DictGreetings | None = None,
) -> tuple[FakeChannel, DepositResult | None]:
    channel = FakeChannel(list(script))  # type: ignore[arg-type]
    result = None
    with contextlib.suppress(CallerHungUp):
        result = await deposit_message(
            channel,
            call or call_for(app),
            prompts=IdPrompts(),
            greetings=greetings or DictGreetings(),
            sink=app.deposits,
            clock=clock,
        )
    return channel, result


async def test_default_greeting_record_accept(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, [Speak(5.0), "1"])
    assert result == DepositResult(stored=True)
    assert channel.played() == [
        "deposit.greeting",
        "deposit.instructions",
        "deposit.beep",
        "deposit.review",
        "deposit.saved",
        "common.goodbye",
    ]
    (m,) = await app.messages.messages("2001")
    assert (m.caller, m.caller_name, m.called, m.reason) == (
        "5551234",
        "Pat Caller",
        "2001",
        "no-answer",
    )
    assert m.duration_s == pytest.approx(5.0, abs=0.01) and not m.urgent
    assert not list(app.files.spool.iterdir())


async def test_greeting_order_temporary_busy_unavailable(
    app: App, clock: FakeClock, tmp_path: Path
) -> None:
    files = {
        (k): tmp_path / f"{k[1]}-greeting.wav"
        for k in [("2001", "unavailable"), ("2001", "busy"), ("2001", "temporary")]
    }
    busy_call = call_for(app, reason=Reason.BUSY)
    channel, _ = await run(
        app, clock, ["#", HANGUP], call=busy_call, greetings=DictGreetings(files)
    )
    assert channel.played()[0] == "temporary-greeting"
    del files[("2001", "temporary")]
    channel, _ = await run(
        app, clock, ["#", HANGUP], call=busy_call, greetings=DictGreetings(files)
    )
    assert channel.played()[0] == "busy-greeting"
    channel, _ = await run(app, clock, ["#", HANGUP], greetings=DictGreetings(files))  # no-answer
    assert channel.played()[0] == "unavailable-greeting"
    del files[("2001", "unavailable")]
    channel, _ = await run(
        app, clock, ["#", HANGUP], call=busy_call, greetings=DictGreetings(files)
    )
    assert channel.played()[0] == "busy-greeting"
    channel, _ = await run(app, clock, ["#", HANGUP], greetings=DictGreetings(files))
    assert channel.played()[:2] == ["deposit.greeting", "deposit.instructions"]


async def test_default_busy_greeting_speaks_the_recorded_name(
    app: App, clock: FakeClock, tmp_path: Path
) -> None:
    name = tmp_path / "name.wav"
    prompts = IdPrompts()
    channel = FakeChannel([HANGUP])
    with pytest.raises(CallerHungUp):
        await deposit_message(
            channel,
            call_for(app, reason=Reason.BUSY),
            prompts=prompts,
            greetings=DictGreetings({("2001", "name"): name}),
            sink=app.deposits,
            clock=clock,
        )
    assert ("deposit.greeting_busy", {"name": name, "ext": "2001"}) in prompts.fills


async def test_pound_skips_the_greeting(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, ["#", Speak(3.0), "1"])
    assert result is not None and result.stored
    assert channel.played()[:3] == ["deposit.greeting", "deposit.instructions", "deposit.beep"]


async def test_zero_reaches_the_operator(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, ["0"])
    assert result == DepositResult(stored=False, transferred_to="0")
    assert ("transfer", "0") in channel.transcript
    assert await app.messages.messages("2001") == []


async def test_failed_operator_transfer_goes_on_to_the_beep(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, ["0", TransferOutcome(486), Speak(3.0), "1"])
    assert result is not None and result.stored
    assert channel.played()[:5] == [
        "deposit.greeting",
        "deposit.instructions",
        "deposit.transferring",
        "deposit.transfer_failed",
        "deposit.beep",
    ]


async def test_zero_without_operator_is_not_a_transfer(app: App, clock: FakeClock) -> None:
    channel, result = await run(
        app, clock, ["0", Speak(3.0), "1"], call=call_for(app, operator=None)
    )
    assert result is not None and result.stored
    assert not [x for x in channel.transcript if x[0] == "transfer"]


async def test_hangup_while_recording_keeps_the_message(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, [Speak(6.0, ended_by="hangup")])
    assert result == DepositResult(stored=True)
    (m,) = await app.messages.messages("2001")
    assert m.duration_s == pytest.approx(6.0, abs=0.01)
    assert "deposit.review" not in channel.played()


async def test_hangup_during_the_beep_stores_nothing(app: App, clock: FakeClock) -> None:
    _, result = await run(app, clock, ["#", HANGUP])
    assert result is None
    assert await app.messages.messages("2001") == []
    assert not list(app.files.spool.iterdir())


async def test_too_short_then_again(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, [Speak(1.0), Speak(4.0), "1"])
    assert result is not None and result.stored
    assert channel.played().count("deposit.beep") == 2
    assert "deposit.too_short" in channel.played()
    (m,) = await app.messages.messages("2001")
    assert m.duration_s == pytest.approx(4.0, abs=0.01)


async def test_too_short_after_a_hangup_is_dropped_silently(app: App, clock: FakeClock) -> None:
    _, result = await run(app, clock, [Speak(1.0, ended_by="hangup")])
    assert result == DepositResult(stored=False)
    assert await app.messages.messages("2001") == []


async def test_review_listen_rerecord_urgent(app: App, clock: FakeClock) -> None:
    channel, result = await run(
        app, clock, [Speak(3.0, freq_hz=500.0), "2", "3", Speak(4.0), "4", "1"]
    )
    assert result == DepositResult(stored=True, urgent=True)
    played = channel.played()
    assert played.count("deposit.beep") == 2
    assert "deposit.urgent" in played
    (m,) = await app.messages.messages("2001")
    assert m.urgent and m.duration_s == pytest.approx(4.0, abs=0.01)  # the re-recording
    listened = [
        files
        for op, files in channel.transcript
        if op == "play" and any(str(f).endswith(".wav") and "spool" in str(f) for f in files)
    ]
    assert len(listened) == 1  # "2" played the caller's own recording back


async def test_urgent_twice_is_not_urgent(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, [Speak(3.0), "4", "4", "1"])
    assert result == DepositResult(stored=True, urgent=False)
    assert "deposit.not_urgent" in channel.played()


async def test_no_answer_in_review_keeps_the_message(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, [Speak(3.0), WAIT, WAIT, WAIT])
    assert result is not None and result.stored
    assert channel.played().count("deposit.review") == 3


async def test_hangup_in_review_keeps_the_message(app: App, clock: FakeClock) -> None:
    _, result = await run(app, clock, [Speak(3.0), HANGUP])
    assert result == DepositResult(stored=True)
    assert len(await app.messages.messages("2001")) == 1


async def test_max_length_goes_to_review(app: App, clock: FakeClock) -> None:
    call = call_for(app)
    short_max = DepositCall(**{**call.__dict__, "max_s": 30.0})
    channel, result = await run(app, clock, [Speak(45.0, ended_by="key"), "1"], call=short_max)
    assert result is not None and result.stored
    assert ("record", (30.0, "max_length")) in channel.transcript
    (m,) = await app.messages.messages("2001")
    assert m.duration_s == pytest.approx(30.0, abs=0.01)


async def test_invalid_review_key_is_said_and_asked_again(app: App, clock: FakeClock) -> None:
    channel, result = await run(app, clock, [Speak(3.0), "9", "1"])
    assert result is not None and result.stored
    assert "common.invalid" in channel.played()


# -- recordings that hold nothing the caller said -----------------------------------------------


@dataclass
class DeadMediaChannel(FakeChannel):
    """The first ``dead`` recordings get not one audio packet (a dead media path)."""

    dead: int = 1

    async def record(self, path: Path, **options: Any) -> Recording:
        recording = await super().record(path, **options)
        if self.dead <= 0:
            return recording
        self.dead -= 1
        write_silence_wav(path, recording.duration_s)  # what the bridge writes: zeros
        return replace(recording, audio_received=False)


@dataclass
class SilentCaller(FakeChannel):
    """Audio packets arrive, but they carry only silence."""

    async def record(self, path: Path, **options: Any) -> Recording:
        recording = await super().record(path, **options)
        write_silence_wav(path, recording.duration_s)
        return recording


async def deposit_on(app: App, clock: FakeClock, channel: FakeChannel) -> DepositResult | None:
    with contextlib.suppress(CallerHungUp):
        return await deposit_message(
            channel,
            call_for(app),
            prompts=IdPrompts(),
            greetings=DictGreetings(),
            sink=app.deposits,
            clock=clock,
        )
    return None


async def test_no_audio_received_then_hangup_stores_nothing(
    app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    channel = DeadMediaChannel([Speak(8.0, ended_by="hangup")])
    with caplog.at_level(logging.INFO, "sipvm"):
        result = await deposit_on(app, clock, channel)
    assert result == DepositResult(stored=False)
    assert await app.messages.messages("2001") == []
    assert not list(app.files.spool.iterdir())
    assert "inbox 2001: not stored: the caller sent no audio (8.0 s recorded)" in caplog.text


async def test_no_audio_received_while_the_caller_stays_asks_again(
    app: App, clock: FakeClock
) -> None:
    channel = DeadMediaChannel([Speak(8.0, ended_by="silence"), Speak(4.0), "1"])
    result = await deposit_on(app, clock, channel)
    assert result == DepositResult(stored=True)
    played = channel.played()
    assert played[played.index("deposit.beep") :] == [
        "deposit.beep",
        "deposit.too_short",
        "deposit.beep",
        "deposit.review",
        "deposit.saved",
        "common.goodbye",
    ]
    (m,) = await app.messages.messages("2001")
    assert m.duration_s == pytest.approx(4.0, abs=0.01)


async def test_only_silence_then_hangup_stores_nothing(
    app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, "sipvm"):
        result = await deposit_on(app, clock, SilentCaller([Speak(10.0, ended_by="hangup")]))
    assert result == DepositResult(stored=False)
    assert await app.messages.messages("2001") == []
    assert not list(app.files.spool.iterdir())
    assert "inbox 2001: not stored: the caller sent only silence (10.0 s" in caplog.text


async def test_only_silence_accepted_in_review_is_not_saved(app: App, clock: FakeClock) -> None:
    channel = SilentCaller([Speak(6.0, ended_by="silence"), "1"])
    result = await deposit_on(app, clock, channel)
    assert result == DepositResult(stored=False)
    assert channel.played()[-3:] == ["deposit.review", "deposit.too_short", "common.goodbye"]
    assert await app.messages.messages("2001") == []
