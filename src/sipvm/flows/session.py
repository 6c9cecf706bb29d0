"""What the desk-phone menu flows share: the services they call, the caller, small helpers.

The flows only see these protocols (``MessageService``, ``GreetingService`` and ``LoginService``
implement them), so they can run over the fake channel with the real services or with fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from sipvm.domain.lockout import LoginOutcome
from sipvm.domain.menu import ANY_KEY
from sipvm.domain.model import Directory, Extension
from sipvm.flows.channel import CallChannel
from sipvm.flows.deposit import Prompts

if TYPE_CHECKING:
    from sipvm.services.messages import InboxSummary
    from sipvm.storage.messages import ActionResult, Message

log = logging.getLogger(__name__)

DIGITS = "0123456789"
MENU_TIMEOUT_S = 6.0
"""How long a menu waits for a key after its prompt ended."""
MENU_ATTEMPTS = 3
"""Menus replay this many times without an answer, then give up."""


class Mailboxes(Protocol):
    """Listings and message actions, each checked against the member's rights."""

    async def inboxes(self, member: str) -> list[InboxSummary]: ...

    async def messages(self, inbox: str, *, as_member: str | None = None) -> list[Message]: ...

    async def listen(self, message_id: int, *, as_member: str) -> tuple[Message, Path] | None: ...

    async def mark_new(self, message_id: int, *, as_member: str) -> ActionResult: ...

    async def delete(self, message_id: int, *, as_member: str) -> ActionResult: ...

    async def share(
        self, message_id: int, *, as_member: str, to: str, comment: Path | None = None
    ) -> Message: ...


class Greetings(Protocol):
    """Greetings of inboxes (recorded names are played in menus)."""

    async def path_for(self, inbox: str, kind: str) -> Path | None: ...

    async def upload(self, inbox: str, kind: str, src: Path, *, by: str = "admin") -> object: ...

    async def remove(self, inbox: str, kind: str) -> object: ...


class Logins(Protocol):
    """PIN checks with lockout, and PIN changes."""

    def desk_phone(self, identity: str) -> str | None: ...

    async def login(self, ext: str, pin: str, *, peer: str, caller: str = "") -> LoginOutcome: ...

    async def change_pin(self, ext: str, new_pin: str) -> None: ...


class DirectorySource(Protocol):
    """The directory in force."""

    @property
    def current(self) -> Directory: ...


@dataclass(frozen=True)
class MenuServices:
    """Everything the menu flows use besides the channel."""

    directory: DirectorySource
    mailboxes: Mailboxes
    greetings: Greetings
    logins: Logins
    prompts: Prompts
    clock: Callable[[], datetime]
    scratch: Callable[[], Path]
    """A fresh path for a short-lived recording (the flow deletes it)."""
    max_greeting_s: float = 120.0


@dataclass(frozen=True)
class Caller:
    """Who is on the line, once logged in."""

    member: str
    peer: str
    """The address the call came from (for logs)."""


async def ask(
    channel: CallChannel,
    files: Sequence[Path],
    *,
    max_digits: int = 1,
    timeout_s: float = MENU_TIMEOUT_S,
    keys: str = ANY_KEY,
) -> str:
    """Play ``files`` and return what the caller typed (a key cuts the prompt short and counts
    as the first one); ``#`` ends a multi-digit answer. "" when nothing came in time."""
    first = await channel.play(files, interrupt=keys)
    if max_digits == 1:
        if first is None:
            first = await channel.collect(max_digits=1, timeout_s=timeout_s, terminators="")
        return first or ""
    if first == "#":
        return ""
    typed = first or ""
    rest = await channel.collect(
        max_digits=max_digits - len(typed), timeout_s=timeout_s, terminators="#"
    )
    return typed + rest


async def name_prompt(services: MenuServices, inbox: Extension | str) -> list[Path]:
    """The inbox's recorded name, else "Inbox 2 0 0 1"."""
    ext = inbox if isinstance(inbox, str) else inbox.ext
    name = await services.greetings.path_for(ext, "name")
    return [name] if name is not None else services.prompts.get("menu.inbox", ext=ext)


def site_zone(directory: Directory, inbox: Extension) -> ZoneInfo | None:
    """The time zone of the inbox's site (envelope times are said in it)."""
    site = directory.sites.get(inbox.site)
    return ZoneInfo(site.timezone) if site is not None else None
