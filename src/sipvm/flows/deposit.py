"""Leaving a message: greeting, beep, record, review — as a caller meets it (Asterisk-like).

1. Greeting: the inbox's temporary greeting if set; else its busy greeting for a busy reason;
   else its unavailable greeting; else the system greeting, which speaks the inbox's recorded
   name (or its extension digit by digit). ``#`` skips it; ``0`` reaches the operator when
   the inbox allows it (a failed transfer comes back here and goes on to the beep).
2. Beep, then record until ``#``, hang-up, the maximum length (a warning plays 10 s before) or
   10 s of silence.
3. After ``#``, silence or the maximum length: the review menu — 1 accept, 2 listen,
   3 re-record, 4 mark urgent. No answer three times: the message is kept.
4. A recording shorter than the minimum, or one during which not one audio packet came from
   the caller, is discarded (after a hang-up, silently; otherwise the caller is told and may
   record again). Hanging up at any point after the beep keeps the message.
5. The sink refuses to store a recording that is silence from end to end (it measures the
   file; this module does no file I/O): the caller hears "too short" if still there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sipvm.domain.menu import ANY_KEY
from sipvm.domain.messages import DepositFacts
from sipvm.domain.model import Extension
from sipvm.domain.targeting import Reason
from sipvm.flows.channel import CallChannel, CallerHungUp, Recording
from sipvm.flows.ports import GreetingFiles, MessageSink, Prompts

log = logging.getLogger(__name__)

SILENCE_END_S = 10.0
WARN_BEFORE_S = 10.0
REVIEW_ATTEMPTS = 3
RECORD_ATTEMPTS = 3


@dataclass(frozen=True)
class DepositCall:
    """What the router knows about this caller and the inbox they reached."""

    inbox: Extension
    reason: Reason
    caller: str
    caller_name: str
    called: str
    max_s: float
    min_s: float
    operator: str | None
    """Where ``0`` transfers during the greeting; None when the inbox does not allow it."""
    greeting: tuple[Path, ...] = ()
    """Played instead of the inbox's own greeting (an auto receptionist's period greeting);
    "leave your message after the tone" follows it."""


@dataclass(frozen=True)
class DepositResult:
    """How the deposit ended."""

    stored: bool
    transferred_to: str | None = None
    urgent: bool = False


async def deposit_message(
    channel: CallChannel,
    call: DepositCall,
    *,
    prompts: Prompts,
    greetings: GreetingFiles,
    sink: MessageSink,
    clock: Callable[[], datetime],
) -> DepositResult:
    """Run the deposit dialog on ``channel`` and store what the caller left."""
    greeting = await _greeting(call, prompts, greetings)
    pressed = await channel.play(greeting, interrupt="#0" if call.operator else "#")
    if pressed == "0" and call.operator:
        await channel.play(prompts.get("deposit.transferring"))
        result = await channel.transfer(call.operator)
        if result.accepted:
            log.info("caller for inbox %s transferred to the operator", call.inbox.ext)
            return DepositResult(stored=False, transferred_to=call.operator)
        log.warning("transfer to operator %s failed (%s)", call.operator, result.status)
        await channel.play(prompts.get("deposit.transfer_failed"))
    urgent = False
    for _ in range(RECORD_ATTEMPTS):
        facts = DepositFacts(
            inbox=call.inbox.ext,
            received_at=clock(),
            caller=call.caller,
            caller_name=call.caller_name,
            called=call.called,
            reason=call.reason.value,
        )
        uid, path = await sink.begin(facts)
        try:
            await channel.play(prompts.get("deposit.beep"))
            recording = await channel.record(
                path,
                max_s=call.max_s,
                silence_s=SILENCE_END_S,
                terminators="#",
                warning=prompts.get("deposit.time_warning"),
                warn_before_s=WARN_BEFORE_S,
            )
        except CallerHungUp:
            await sink.discard(uid)  # hung up during the beep: nothing was recorded
            raise
        log.info(
            "inbox %s: recorded %.1f s, ended by %s",
            call.inbox.ext,
            recording.duration_s,
            recording.ended_by,
        )
        if not recording.audio_received:
            await sink.discard(uid)
            log.info(
                "inbox %s: not stored: the caller sent no audio (%.1f s recorded)",
                call.inbox.ext,
                recording.duration_s,
            )
            if recording.ended_by == "hangup":
                return DepositResult(stored=False)
            await channel.play(prompts.get("deposit.too_short"))
            continue
        if recording.ended_by == "hangup":
            return DepositResult(stored=await _keep(sink, uid, urgent, call))
        if recording.duration_s < call.min_s:
            await sink.discard(uid)
            await channel.play(prompts.get("deposit.too_short"))
            continue
        try:
            choice = await _review(channel, recording, prompts)
        except CallerHungUp:
            return DepositResult(stored=await _keep(sink, uid, urgent, call))
        if choice == "rerecord":
            await sink.discard(uid)
            continue
        urgent = choice == "urgent"
        stored = await _keep(sink, uid, urgent, call)
        await channel.play(prompts.get("deposit.saved" if stored else "deposit.too_short"))
        await channel.play(prompts.get("common.goodbye"))
        return DepositResult(stored=stored, urgent=urgent)
    await channel.play(prompts.get("common.goodbye"))
    return DepositResult(stored=False)


async def _greeting(call: DepositCall, prompts: Prompts, greetings: GreetingFiles) -> list[Path]:
    if call.greeting:
        return list(call.greeting) + prompts.get("deposit.instructions")
    ext = call.inbox.ext
    kinds = ["temporary", "busy" if call.reason is Reason.BUSY else "", "unavailable"]
    for kind in filter(None, kinds):
        found = await greetings.path_for(ext, kind)
        if found is not None:
            return [found]
    name = await greetings.path_for(ext, "name")
    prompt = "deposit.greeting_busy" if call.reason is Reason.BUSY else "deposit.greeting"
    return prompts.get(prompt, name=name, ext=ext) + prompts.get("deposit.instructions")


async def _review(channel: CallChannel, recording: Recording, prompts: Prompts) -> str:
    """The review menu; returns "accept", "urgent" or "rerecord"."""
    urgent = False
    pending: str | None = None  # a key pressed while the recording played back
    attempts = 0
    while attempts < REVIEW_ATTEMPTS:
        key, pending = pending, None
        if key is None:
            key = await channel.play(prompts.get("deposit.review"), interrupt=ANY_KEY)
        if key is None:
            key = await channel.collect(max_digits=1, timeout_s=5.0, terminators="")
        if not key:
            attempts += 1
            continue
        if key == "1":
            return "urgent" if urgent else "accept"
        if key == "2":
            pending = await channel.play([recording.path], interrupt=ANY_KEY)
        elif key == "3":
            return "rerecord"
        elif key == "4":
            urgent = not urgent
            await channel.play(prompts.get("deposit.urgent" if urgent else "deposit.not_urgent"))
        else:
            await channel.play(prompts.get("common.invalid"))
            attempts += 1
    return "urgent" if urgent else "accept"


async def _keep(sink: MessageSink, uid: str, urgent: bool, call: DepositCall) -> bool:
    # A refusal (too short, only silence) is logged by the sink, which measured the file.
    return await sink.finish(uid, urgent=urgent) is not None
