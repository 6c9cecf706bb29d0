"""The desk-phone menu as data: which key does what, and what right each action needs.

Keys follow Asterisk's VoiceMailMain, so users who know it feel at home:

In the main menu (the list of inboxes a member may reach)
    1-9   open the inbox announced with that digit (own inbox first, then by extension)
    #     next page of inboxes (more than 9)      *  previous page (on the first: end the call)
    0     mailbox options of the caller's own inbox

Entering an inbox: its name and counts; ``*`` back to the main menu, ``#`` straight to the
first message (no announcement or envelope).

While a message plays                     After it played (or any time, to act on it)
    *     back 3 seconds                      3  envelope again (time received, caller)
    #     forward 3 seconds                   4  previous message   5 repeat   6 next
    0     pause / resume                      7  delete (delete right)
    any other key below acts at once          8  share (share right)   9 save (keep, go on)
                                              2  mark new again        *  back to the main menu
In mailbox options
    1 unavailable greeting  2 busy greeting  3 name  4 temporary greeting
    5 remove the temporary greeting  6 change PIN  * back
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from sipvm.domain.model import EXT_MAX_DIGITS, Right

ANY_KEY = "0123456789*#"
"""Every key a phone sends: what "press any key" listens for."""

MAX_EXT_DIGITS = EXT_MAX_DIGITS + 1
"""Most digits read where a caller types an extension (login, share, dial by extension): one
past the longest extension the directory allows, so the ``#`` after a longest extension ends
that answer instead of being left over as the next prompt's (empty) answer."""

MENU_KEY_ORDER = "1234567890*#"
"""The keys an auto receptionist's menu may use, in the order a generated prompt says them."""


class MessageAction(StrEnum):
    """What a key does to the current message."""

    ENVELOPE = "envelope"
    PREVIOUS = "previous"
    REPEAT = "repeat"
    NEXT = "next"
    DELETE = "delete"
    SHARE = "share"
    SAVE = "save"
    MARK_NEW = "mark_new"
    MAIN_MENU = "main_menu"


class PlaybackAction(StrEnum):
    """What a key does while the message plays (besides every ``MessageAction`` key)."""

    BACK = "back"
    FORWARD = "forward"
    PAUSE = "pause"


MESSAGE_KEYS: Mapping[str, MessageAction] = MappingProxyType(
    {
        "2": MessageAction.MARK_NEW,
        "3": MessageAction.ENVELOPE,
        "4": MessageAction.PREVIOUS,
        "5": MessageAction.REPEAT,
        "6": MessageAction.NEXT,
        "7": MessageAction.DELETE,
        "8": MessageAction.SHARE,
        "9": MessageAction.SAVE,
        "*": MessageAction.MAIN_MENU,
    }
)
"""Keys once a message has played (and, except ``*``, while it plays)."""

PLAYBACK_KEYS: Mapping[str, PlaybackAction | MessageAction] = MappingProxyType(
    {
        **{k: a for k, a in MESSAGE_KEYS.items() if k != "*"},
        "*": PlaybackAction.BACK,
        "#": PlaybackAction.FORWARD,
        "0": PlaybackAction.PAUSE,
    }
)
"""Keys while a message plays."""

SEEK_S = 3.0
"""How far ``*`` and ``#`` move within a playing message."""

ACTION_RIGHTS: Mapping[MessageAction, Right] = MappingProxyType(
    {MessageAction.DELETE: Right.DELETE, MessageAction.SHARE: Right.SHARE}
)
"""The right an action needs beyond play (the others need play only)."""


def permitted(action: MessageAction, rights: frozenset[Right]) -> bool:
    """Whether a member with ``rights`` on the inbox may do ``action``."""
    return ACTION_RIGHTS.get(action, Right.PLAY) in rights


def seek(position_s: float, action: PlaybackAction, length_s: float) -> float:
    """Where playback goes on after ``*`` or ``#`` at ``position_s`` (within the message)."""
    step = -SEEK_S if action is PlaybackAction.BACK else SEEK_S
    return min(max(position_s + step, 0.0), length_s)


class OptionsAction(StrEnum):
    """Mailbox options of the caller's own inbox."""

    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    NAME = "name"
    TEMPORARY = "temporary"
    REMOVE_TEMPORARY = "remove_temporary"
    CHANGE_PIN = "change_pin"
    BACK = "back"


OPTIONS_KEYS: Mapping[str, OptionsAction] = MappingProxyType(
    {
        "1": OptionsAction.UNAVAILABLE,
        "2": OptionsAction.BUSY,
        "3": OptionsAction.NAME,
        "4": OptionsAction.TEMPORARY,
        "5": OptionsAction.REMOVE_TEMPORARY,
        "6": OptionsAction.CHANGE_PIN,
        "*": OptionsAction.BACK,
    }
)

PAGE_SIZE = 9
"""Inboxes per main-menu page: one digit each."""


@dataclass(frozen=True)
class Page:
    """One page of the main menu: ``entries[i]`` is selected with digit ``i + 1``."""

    number: int
    entries: tuple[str, ...]
    has_previous: bool
    has_next: bool

    def selected(self, key: str) -> str | None:
        """The inbox a digit selects on this page, or None."""
        if key.isdigit() and 1 <= int(key) <= len(self.entries):
            return self.entries[int(key) - 1]
        return None


def page(inboxes: Sequence[str], number: int) -> Page:
    """Page ``number`` (0-based, clamped) of the inbox list."""
    last = max((len(inboxes) - 1) // PAGE_SIZE, 0)
    number = min(max(number, 0), last)
    start = number * PAGE_SIZE
    return Page(
        number=number,
        entries=tuple(inboxes[start : start + PAGE_SIZE]),
        has_previous=number > 0,
        has_next=number < last,
    )


@dataclass(frozen=True)
class PilotCall:
    """A call to the voicemail pilot, optionally straight to one inbox (``*97*2001``)."""

    inbox: str | None = None


def pilot_call(called: str, pilots: frozenset[str]) -> PilotCall | None:
    """Whether ``called`` is a pilot (``*97``) or a pilot with an inbox (``*97*2001``)."""
    if called in pilots:
        return PilotCall()
    for pilot in pilots:
        head = pilot + "*"
        if called.startswith(head) and called[len(head) :].isdigit():
            return PilotCall(inbox=called[len(head) :])
    return None
