"""Mailbox options of the caller's own inbox (0 in the main menu).

1 unavailable greeting, 2 busy greeting, 3 name, 4 temporary greeting — each recorded after
the beep and reviewed (1 accept, 2 listen, 3 re-record) before it replaces the old one;
5 removes the temporary greeting; 6 changes the PIN (typed twice, checked against the PIN
rules); ``*`` goes back. The temporary greeting, while set, is announced on entry (it overrides
the others for every caller, so an owner should not forget it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from sipvm.domain.menu import OPTIONS_KEYS, OptionsAction
from sipvm.errors import InvalidInputError, NotFoundError
from sipvm.flows.channel import CallChannel, CallerHungUp
from sipvm.flows.session import DIGITS, MENU_ATTEMPTS, Caller, MenuServices, ask

log = logging.getLogger(__name__)

GREETING_SILENCE_S = 5.0
NAME_MAX_S = 10.0
MIN_GREETING_S = 1.0
MAX_PIN_DIGITS = 10

_RECORD_PROMPT = {
    OptionsAction.UNAVAILABLE: "menu.record_unavailable",
    OptionsAction.BUSY: "menu.record_busy",
    OptionsAction.NAME: "menu.record_name",
    OptionsAction.TEMPORARY: "menu.record_temporary",
}


async def mailbox_options(channel: CallChannel, services: MenuServices, caller: Caller) -> None:
    """The options menu, until ``*`` or no answer."""
    prompts = services.prompts
    if await services.greetings.path_for(caller.member, "temporary") is not None:
        await channel.play(prompts.get("menu.temporary_active"))
    silent = 0
    while silent < MENU_ATTEMPTS:
        key = await ask(channel, prompts.get("menu.greeting_options"))
        if not key:
            silent += 1
            continue
        silent = 0
        action = OPTIONS_KEYS.get(key)
        if action is None:
            await channel.play(prompts.get("common.invalid"))
        elif action is OptionsAction.BACK:
            return
        elif action is OptionsAction.REMOVE_TEMPORARY:
            with contextlib.suppress(NotFoundError):  # none set: what the caller wants anyway
                await services.greetings.remove(caller.member, "temporary")
            await channel.play(prompts.get("menu.temporary_removed"))
        elif action is OptionsAction.CHANGE_PIN:
            await _change_pin(channel, services, caller)
        else:
            await _record_greeting(channel, services, caller, action)


async def _record_greeting(
    channel: CallChannel, services: MenuServices, caller: Caller, action: OptionsAction
) -> None:
    prompts = services.prompts
    kind = action.value
    max_s = NAME_MAX_S if action is OptionsAction.NAME else services.max_greeting_s
    path = services.scratch()
    try:
        for _ in range(MENU_ATTEMPTS):
            await channel.play(prompts.get(_RECORD_PROMPT[action]) + prompts.get("deposit.beep"))
            said = await channel.record(
                path, max_s=max_s, silence_s=GREETING_SILENCE_S, terminators="#"
            )
            if said.ended_by == "hangup":
                raise CallerHungUp("hung up while recording a greeting: old greeting kept")
            if said.duration_s < MIN_GREETING_S:
                await channel.play(prompts.get("deposit.too_short"))
                continue
            choice = await _review(channel, services, path)
            if choice == "3":
                continue
            if choice != "1":
                return  # no answer: keep the old greeting
            try:
                await services.greetings.upload(caller.member, kind, path, by=caller.member)
            except InvalidInputError as exc:
                log.info("greeting %s of %s refused: %s", kind, caller.member, exc)
                await channel.play(prompts.get("menu.greeting_rejected"))
                continue
            await channel.play(prompts.get("menu.greeting_saved"))
            return
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


async def _review(channel: CallChannel, services: MenuServices, path: Path) -> str:
    """1 accept, 2 listen (then ask again), 3 re-record; "" after no answer."""
    prompts = services.prompts
    for _ in range(MENU_ATTEMPTS):
        key = await ask(channel, prompts.get("menu.greeting_review"), keys="123")
        if key == "2":
            pressed = await channel.play([path], interrupt="13")
            if pressed:
                return pressed
            continue
        if key in ("1", "3"):
            return key
    return ""


async def _change_pin(channel: CallChannel, services: MenuServices, caller: Caller) -> None:
    prompts = services.prompts
    first = await ask(
        channel, prompts.get("menu.new_pin"), max_digits=MAX_PIN_DIGITS + 1, keys=DIGITS + "#"
    )
    if not first:
        return
    again = await ask(
        channel, prompts.get("menu.reenter_pin"), max_digits=MAX_PIN_DIGITS + 1, keys=DIGITS + "#"
    )
    if first != again:
        await channel.play(prompts.get("menu.pin_mismatch"))
        return
    try:
        await services.logins.change_pin(caller.member, first)
    except InvalidInputError:
        await channel.play(prompts.get("menu.pin_rejected"))
        return
    await channel.play(prompts.get("menu.pin_changed"))
