"""What the desk-phone menu flows share: the services they call, the caller, small helpers.

The services are the protocols of ``flows.ports``, so the flows run over the fake channel with
the real services or with fakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sipvm.domain.menu import ANY_KEY
from sipvm.domain.model import Directory, Extension
from sipvm.flows.channel import CallChannel
from sipvm.flows.ports import DirectorySource, Greetings, Logins, Mailboxes, Prompts

log = logging.getLogger(__name__)

DIGITS = "0123456789"
MENU_TIMEOUT_S = 6.0
"""How long a menu waits for a key after its prompt ended."""
MENU_ATTEMPTS = 3
"""Menus replay this many times without an answer, then give up."""


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
    envelope: str = "after"
    """When a message's envelope is said: "before" or "after" the message, or only on "key"
    3 (the ``[menu] envelope`` setting)."""


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
