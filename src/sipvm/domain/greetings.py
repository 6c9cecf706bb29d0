"""A greeting in force for an inbox (the store keeps one per inbox and kind), and who records
which greetings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sipvm.domain.model import Directory, Kind


@dataclass(frozen=True)
class Greeting:
    """A greeting in force."""

    inbox: str
    """Extension of the inbox it greets callers of."""
    kind: str
    """``unavailable``, ``busy``, ``temporary``, ``name``, an auto receptionist's period
    (``business``, ``closed``, ``holiday``) or one of its menus (``menu-<name>``)."""
    audio: str
    """The converted WAV, relative to the data directory."""
    duration_ms: int
    """Length of the converted file."""
    uploaded_at: datetime
    """When it was uploaded (timezone-aware, UTC in the store)."""
    uploaded_by: str
    """Who uploaded it (``admin`` from the command line)."""

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.duration_ms / 1000


OWNER_KINDS: Final = ("unavailable", "busy", "temporary", "name")
"""What callers hear before leaving a message (``name`` is also said by menus): the owner of a
user's or common area's inbox records them, an admin those of a queue, AR or group."""

PERIOD_KINDS: Final = ("business", "closed", "holiday")
"""What a queue, auto receptionist or group says in each period (a route ``message`` plays
it; an auto receptionist called directly says it first)."""


def managed_greetings(directory: Directory, member: str, inbox_ext: str) -> tuple[str, ...]:
    """The greeting kinds ``member`` may upload for the inbox (empty: none).

    - The owner of a user's or common area's inbox: :data:`OWNER_KINDS` (nobody else, admins
      included: it is their voice).
    - An admin user, for a call queue, auto receptionist or shared line group: its
      :data:`PERIOD_KINDS`, ``menu-main`` and ``menu-<submenu>`` for an auto receptionist
      with a menu, and :data:`OWNER_KINDS`.
    """
    inbox = directory.get(inbox_ext)
    who = directory.get(member)
    if inbox is None or who is None:
        return ()
    if inbox.kind.has_owner:
        return OWNER_KINDS if member == inbox.ext else ()
    if who.kind is not Kind.USER or not who.admin:
        return ()
    menus: tuple[str, ...] = ()
    routing = inbox.routing
    if routing is not None and routing.menu is not None:
        menus = ("menu-main", *(f"menu-{name}" for name in sorted(routing.submenus)))
    return (*PERIOD_KINDS, *menus, *OWNER_KINDS)
