"""Routing of queues, auto receptionists and shared line groups, as data (pure, frozen).

What a caller gets depends on the period the call falls in (``domain.schedule`` decides it):
business hours, closed hours (the rest of the week) or a holiday. Each period has a
``Route``; an auto receptionist's route may run its IVR ``Menu``. The directory file's
``[<kind>.hours]``, ``[[<kind>.holidays]]``, ``[<kind>.business]``, ``[<kind>.closed]``,
``[<kind>.menu]`` and ``[<kind>.submenus.<name>]`` tables build these (see README
"Routing and the auto receptionist").

Toll-fraud guard: a transfer may only go to an extension of the directory, the operator, or
an external number written in the directory file itself (``Transfer.to`` of some route or
menu option); ``transfer_destinations`` lists them and the flows refuse anything else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from enum import StrEnum
from types import MappingProxyType


class Period(StrEnum):
    """Which part of the week a call falls in."""

    BUSINESS = "business"
    CLOSED = "closed"
    HOLIDAY = "holiday"


class Override(StrEnum):
    """An admin's override of the schedule (``sipvm hours set``)."""

    AUTO = "auto"
    OPEN = "open"
    CLOSED = "closed"


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Keys of ``[<kind>.hours]``; index = ``date.weekday()``."""


@dataclass(frozen=True)
class TimeRange:
    """Business hours on one day, ``start`` inclusive, ``end`` exclusive, in the site's zone.

    ``end <= start`` means the range runs over midnight into the next day ("22:00-02:00");
    ``end == 00:00`` means until midnight ("17:00-24:00" is written "17:00-24:00" in files).
    """

    start: time
    end: time

    @property
    def over_midnight(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True)
class WeeklyHours:
    """Business hours per weekday (0 = Monday); a weekday absent or empty is closed all day.

    ``always_open`` when the entry has no ``[<kind>.hours]`` table at all."""

    days: Mapping[int, tuple[TimeRange, ...]] = field(default_factory=dict)
    always_open: bool = False


@dataclass(frozen=True)
class Voicemail:
    """Leave a message in ``inbox`` (None: the entry's own inbox); ``operator``: 0 during
    the greeting transfers to the directory's operator."""

    inbox: str | None = None
    operator: bool = True


@dataclass(frozen=True)
class Transfer:
    """Blind-transfer (REFER) to an extension, a queue or an external number."""

    to: str


@dataclass(frozen=True)
class Operator:
    """Transfer to ``[defaults] operator``."""


@dataclass(frozen=True)
class PlayMessage:
    """Play the period's greeting, then hang up (``action = "message"`` in the file)."""


@dataclass(frozen=True)
class RunMenu:
    """Run the auto receptionist's IVR menu (``menu``: the main menu, or a submenu's name)."""

    menu: str = "main"


@dataclass(frozen=True)
class DialByExtension:
    """The caller types an extension and ``#``; it is checked against the directory."""


@dataclass(frozen=True)
class Submenu:
    """Go to the named submenu."""

    name: str


@dataclass(frozen=True)
class Repeat:
    """Say the current menu again."""


@dataclass(frozen=True)
class Back:
    """Go back to the menu this one was entered from (the main menu: say it again)."""


Route = Voicemail | Transfer | Operator | PlayMessage | RunMenu
"""What a period does with a call."""

MenuAction = Voicemail | Transfer | Operator | DialByExtension | Submenu | Repeat | Back
"""What a menu key does."""


@dataclass(frozen=True)
class Menu:
    """An IVR menu: keys to actions, and what happens when the caller does not choose."""

    options: Mapping[str, MenuAction] = field(default_factory=lambda: MappingProxyType({}))
    timeout_s: float = 5.0
    """Wait for a key this long after the prompt."""
    attempts: int = 3
    """No input or an invalid key replays the menu up to this many times in all..."""
    fallback: MenuAction = field(default_factory=Operator)
    """...then this happens."""


@dataclass(frozen=True)
class Holiday:
    """Dates (inclusive ranges, in the site's zone) with their own route."""

    name: str
    ranges: tuple[tuple[date, date], ...]
    route: Route | None = None
    """None: the closed-hours route."""


@dataclass(frozen=True)
class Routing:
    """Hours, holidays and routes of one queue, auto receptionist or shared line group."""

    hours: WeeklyHours = field(default_factory=lambda: WeeklyHours(always_open=True))
    holidays: tuple[Holiday, ...] = ()
    business: Route | None = None
    """None: the kind's default (voicemail; an auto receptionist with a menu runs it)."""
    closed: Route | None = None
    """None: voicemail."""
    menu: Menu | None = None
    """The main menu (auto receptionists only)."""
    submenus: Mapping[str, Menu] = field(default_factory=lambda: MappingProxyType({}))

    def route_for(self, period: Period, holiday: Holiday | None = None) -> Route:
        """The route of a period, defaults filled in."""
        if period is Period.HOLIDAY and holiday is not None and holiday.route is not None:
            return holiday.route
        if period is Period.BUSINESS:
            if self.business is not None:
                return self.business
            return RunMenu() if self.menu is not None else Voicemail()
        return self.closed if self.closed is not None else Voicemail()

    def menu_named(self, name: str) -> Menu | None:
        """The main menu ("main") or a submenu."""
        return self.menu if name == "main" else self.submenus.get(name)


def action_name(action: Route | MenuAction) -> str:
    """The directory file's ``action`` word for a route or menu action."""
    return _ACTION_NAMES[type(action)]


_ACTION_NAMES: Mapping[type, str] = MappingProxyType(
    {
        Voicemail: "voicemail",
        Transfer: "transfer",
        Operator: "operator",
        PlayMessage: "message",
        RunMenu: "menu",
        DialByExtension: "dial_by_extension",
        Submenu: "submenu",
        Repeat: "repeat",
        Back: "back",
    }
)
