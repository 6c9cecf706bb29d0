"""Routed calls: auto receptionists (greeting, IVR menu) and queue / group overflow routes.

An auto receptionist plays its greeting for the period (uploaded ``business``, ``closed`` or
``holiday`` greeting, else "Thank you for calling <recorded name>", plus "Our office is closed
right now" out of hours), then follows the period's route:
- ``Voicemail``: the deposit dialog for its own inbox or another one (0 for the operator when
  the route allows it);
- ``Transfer`` / ``Operator``: REFER to the PBX; a failed transfer says so and offers voicemail
  (the target's inbox when it has one, else this entry's);
- ``PlayMessage``: the greeting, then goodbye;
- ``RunMenu``: the IVR. Each menu says its uploaded prompt (``menu-<name>``; the main menu:
  ``menu-main``) or, without one, its options ("For Sales, press 1"). No key or a wrong key
  replays it up to ``attempts`` times, then ``fallback`` happens.
Queues and shared line groups take the same routes without a menu. Every transfer passes the
toll-fraud guard (``domain.transfers``): only directory extensions, the operator and numbers
the directory file names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sipvm.domain.menu import ANY_KEY, MAX_EXT_DIGITS, MENU_KEY_ORDER
from sipvm.domain.model import Extension, Kind
from sipvm.domain.routing import (
    Back,
    DialByExtension,
    Menu,
    MenuAction,
    Operator,
    Period,
    PlayMessage,
    Repeat,
    Route,
    RunMenu,
    Submenu,
    Transfer,
    Voicemail,
)
from sipvm.domain.targeting import Reason
from sipvm.domain.transfers import dialable_extension, may_transfer
from sipvm.flows.channel import CallChannel
from sipvm.flows.deposit import DepositCall, deposit_message
from sipvm.flows.ports import DirectorySource, GreetingFiles, MessageSink, Prompts
from sipvm.flows.session import DIGITS, ask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoutedServices:
    """What routed calls use besides the channel (the router's own collaborators)."""

    directory: DirectorySource
    prompts: Prompts
    greetings: GreetingFiles
    sink: MessageSink
    clock: Callable[[], datetime]


@dataclass(frozen=True)
class RoutedCall:
    """A call for a routed entry, in the period it falls in."""

    entry: Extension
    period: Period
    route: Route
    caller: str = ""
    caller_name: str = ""
    called: str = ""
    reason: Reason = Reason.UNAVAILABLE


async def answer_routed(channel: CallChannel, services: RoutedServices, call: RoutedCall) -> None:
    """The whole dialog of a routed call: greeting (auto receptionists), then the route."""
    flow = _Routed(channel, services, call)
    if call.entry.kind is Kind.AUTO_RECEPTIONIST and isinstance(call.route, Voicemail):
        # Its own inbox: the period greeting stands in for a mailbox greeting.
        own = call.route.inbox in (None, call.entry.ext)
        greeting = tuple(await flow.period_greeting()) if own else ()
        await flow.voicemail(
            call.route.inbox or call.entry.ext, operator=call.route.operator, greeting=greeting
        )
        return
    if call.entry.kind is Kind.AUTO_RECEPTIONIST:
        # A caller who knows the menu may choose during the greeting.
        keys = ANY_KEY if isinstance(call.route, RunMenu) else ""
        flow.pending = await channel.play(await flow.period_greeting(), interrupt=keys)
    await flow.follow(call.route)


class _Routed:
    def __init__(self, channel: CallChannel, services: RoutedServices, call: RoutedCall) -> None:
        self.channel = channel
        self.services = services
        self.prompts = services.prompts
        self.call = call
        self.entry = call.entry
        self.pending: str | None = None
        """A menu key pressed during the greeting."""

    @property
    def directory(self) -> DirectorySource:
        return self.services.directory

    async def follow(self, route: Route | MenuAction) -> None:
        """Carry out a route (or a final menu action)."""
        if isinstance(route, Voicemail):
            await self.voicemail(route.inbox or self.entry.ext, operator=route.operator)
        elif isinstance(route, Transfer):
            await self.transfer(route.to)
        elif isinstance(route, Operator):
            await self.transfer(self.directory.current.defaults.operator)
        elif isinstance(route, PlayMessage):
            if self.entry.kind is not Kind.AUTO_RECEPTIONIST:  # the AR said it already
                await self.channel.play(await self.period_greeting())
            await self.channel.play(self.prompts.get("common.goodbye"))
        elif isinstance(route, RunMenu):
            await self.menu(route.menu)
        else:
            raise AssertionError(f"{route!r} is not a route")

    async def period_greeting(self) -> list[Path]:
        """The uploaded greeting of the period, else the system one."""
        ext, period = self.entry.ext, self.call.period
        kinds = {Period.HOLIDAY: ("holiday", "closed"), Period.CLOSED: ("closed",)}
        for kind in kinds.get(period, ("business",)):
            found = await self.services.greetings.path_for(ext, kind)
            if found is not None:
                return [found]
        name = await self.services.greetings.path_for(ext, "name")
        files = self.prompts.get("ar.welcome") + ([name] if name else [])
        if period is Period.CLOSED:
            files += self.prompts.get("ar.closed")
        elif period is Period.HOLIDAY:
            files += self.prompts.get("ar.holiday")
        return files

    async def voicemail(
        self, inbox_ext: str, *, operator: bool, greeting: tuple[Path, ...] = ()
    ) -> None:
        directory = self.directory.current
        inbox = directory.get(inbox_ext)
        if inbox is None or not inbox.voicemail_enabled:
            log.warning("route of %s: inbox %s cannot take messages", self.entry.ext, inbox_ext)
            await self.channel.play(self.prompts.get("deposit.no_mailbox"))
            await self.channel.play(self.prompts.get("common.goodbye"))
            return
        defaults = directory.defaults
        call = DepositCall(
            inbox=inbox,
            reason=self.call.reason,
            caller=self.call.caller,
            caller_name=self.call.caller_name,
            called=self.call.called or self.entry.ext,
            max_s=float(defaults.max_message_s),
            min_s=float(defaults.min_message_s),
            operator=defaults.operator if operator and defaults.operator else None,
            greeting=greeting,
        )
        await deposit_message(
            self.channel,
            call,
            prompts=self.prompts,
            greetings=self.services.greetings,
            sink=self.services.sink,
            clock=self.services.clock,
        )

    async def transfer(self, to: str) -> None:
        """REFER to ``to`` (after the guard); a failure says so and offers voicemail."""
        directory = self.directory.current
        if not to or not may_transfer(directory, to):
            log.error(
                "refused a transfer from %s to %r: not an extension, the operator or a number "
                "in the directory file (toll-fraud guard)",
                self.entry.ext,
                to,
            )
        else:
            await self.channel.play(self.prompts.get("ar.transferring"))
            result = await self.channel.transfer(to)
            if result.accepted:
                log.info("caller for %s transferred to %s", self.entry.ext, to)
                return
            if self.channel.hung_up:
                log.info("caller hung up during the transfer from %s to %s", self.entry.ext, to)
                return
            log.warning("transfer from %s to %s failed (%s)", self.entry.ext, to, result.status)
        await self.channel.play(self.prompts.get("ar.transfer_failed"))
        target = directory.get(to)
        fallback = to if target is not None and target.voicemail_enabled else self.entry.ext
        await self.voicemail(fallback, operator=False)

    async def menu(self, start: str) -> None:
        """The IVR, from menu ``start``, until a final action."""
        routing = self.entry.routing
        stack = [start]
        misses = 0
        while True:
            menu = routing.menu_named(stack[-1]) if routing is not None else None
            if menu is None:
                log.error("%s has no menu %r: taking a message instead", self.entry.ext, stack[-1])
                await self.voicemail(self.entry.ext, operator=True)
                return
            key, self.pending = self.pending, None
            if key is None:
                key = await ask(
                    self.channel, await self.menu_prompt(stack[-1], menu), timeout_s=menu.timeout_s
                )
            action = menu.options.get(key) if key else None
            if action is None:
                misses += 1
                if key:
                    await self.channel.play(self.prompts.get("ar.invalid"))
                if misses < menu.attempts:
                    continue
                action, misses = menu.fallback, 0
            else:
                misses = 0
            if isinstance(action, Repeat):
                continue
            if isinstance(action, Back):
                if len(stack) > 1:
                    stack.pop()
                continue
            if isinstance(action, Submenu):
                stack.append(action.name)
                continue
            if isinstance(action, DialByExtension):
                ext = await self.dial_by_extension()
                if ext is None:
                    misses += 1
                    continue
                await self.transfer(ext)
                return
            await self.follow(action)
            return

    async def dial_by_extension(self) -> str | None:
        typed = await ask(
            self.channel,
            self.prompts.get("ar.enter_extension"),
            max_digits=MAX_EXT_DIGITS,
            keys=DIGITS + "#",
        )
        found = dialable_extension(self.directory.current, typed) if typed else None
        if found is None:
            await self.channel.play(self.prompts.get("ar.no_such_extension"))
        return found

    async def menu_prompt(self, name: str, menu: Menu) -> list[Path]:
        """The uploaded ``menu-<name>`` prompt, or the options said one by one."""
        uploaded = await self.services.greetings.path_for(self.entry.ext, f"menu-{name}")
        if uploaded is not None:
            return [uploaded]
        files: list[Path] = []
        for key in sorted(menu.options, key=MENU_KEY_ORDER.index):
            files += await self.option_prompt(key, menu.options[key])
        return files

    async def option_prompt(self, key: str, action: MenuAction) -> list[Path]:
        prompts = self.prompts
        press = prompts.get("menu.press", key=key)
        if isinstance(action, Transfer):
            return prompts.get("ar.option_transfer") + await self.name_of(action.to) + press
        if isinstance(action, Voicemail):
            inbox = action.inbox or self.entry.ext
            return prompts.get("ar.option_voicemail") + await self.name_of(inbox) + press
        kinds = {
            DialByExtension: "ar.option_dial_by_extension",
            Submenu: "ar.option_submenu",
            Operator: "ar.option_operator",
            Repeat: "ar.option_repeat",
            Back: "ar.option_back",
        }
        return prompts.get(kinds[type(action)], key=key)

    async def name_of(self, ext: str) -> list[Path]:
        """A recorded name, else "extension 2 0 0 1" (or the number's digits)."""
        if self.directory.current.get(ext) is not None:
            name = await self.services.greetings.path_for(ext, "name")
            if name is not None:
                return [name]
        return self.prompts.get("ar.extension", ext=ext.lstrip("+"))
