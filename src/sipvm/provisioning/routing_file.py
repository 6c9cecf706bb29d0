"""Routing in the directory file: hours, holidays, routes and IVR menus (README "Routing and the
auto receptionist").

``directory_file`` hands each call queue, auto receptionist and shared line group to
``RoutingReader`` once every extension is known, because routes name other entries (a
transfer's ``to``, a voicemail ``inbox``). Problems go to the same collector as the rest of the
file, worded the same way; ``routing_document`` writes a ``Routing`` back in the same format.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from types import MappingProxyType
from typing import Any

from sipvm.domain.menu import MENU_KEY_ORDER
from sipvm.domain.model import Kind
from sipvm.domain.routing import (
    WEEKDAYS,
    Back,
    DialByExtension,
    Holiday,
    Menu,
    MenuAction,
    Operator,
    PlayMessage,
    Repeat,
    Route,
    Routing,
    RunMenu,
    Submenu,
    TimeRange,
    Transfer,
    Voicemail,
    WeeklyHours,
    action_name,
)
from sipvm.domain.schedule import format_time_range, parse_holiday_dates, parse_time_range
from sipvm.provisioning.checks import Checks, non_empty

ROUTING_KEYS: Mapping[Kind, frozenset[str]] = MappingProxyType(
    {
        Kind.CALL_QUEUE: frozenset({"hours", "holidays", "business", "closed"}),
        Kind.AUTO_RECEPTIONIST: frozenset(
            {"hours", "holidays", "business", "closed", "menu", "submenus"}
        ),
        Kind.SHARED_LINE_GROUP: frozenset({"hours", "holidays", "business", "closed"}),
    }
)
"""Keys of an entry's table that belong to its routing, by kind."""


def key_hints(kind: Kind) -> Mapping[str, str]:
    """Why a routing key is unknown for ``kind`` (said after "unknown key 'x'")."""
    if kind.has_owner:
        why = "only call queues, auto receptionists and shared line groups have hours and routes"
        return {key: why for key in ROUTING_KEYS[Kind.AUTO_RECEPTIONIST]}
    if kind is not Kind.AUTO_RECEPTIONIST:
        why = "only auto receptionists have IVR menus; give this entry a route instead"
        return {"menu": why, "submenus": why}
    return {}


EXTERNAL_MIN_DIGITS = 7
"""A transfer target that is not an extension must have at least this many digits, so that a
mistyped extension ("2020" for "2002") is not taken for an outside number."""

_TO_RE = re.compile(r"^(?=.{1,20}\Z)\+?[0-9]+\Z")
_SUBMENU_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}\Z")
_MENU_SETTINGS = ("timeout_s", "attempts", "fallback")

_ROUTE_ACTIONS = ("menu", "voicemail", "transfer", "operator", "message")
_MENU_ACTIONS = (
    "voicemail",
    "transfer",
    "operator",
    "dial_by_extension",
    "submenu",
    "repeat",
    "back",
)
# A fallback must end the menu: anything else would keep a silent caller (a fax, a robot)
# going round the menus for ever.
_FALLBACK_ACTIONS = ("voicemail", "transfer", "operator")

_ACTION_KEYS: Mapping[str, set[str]] = MappingProxyType(
    {
        "voicemail": {"action", "inbox", "operator"},
        "transfer": {"action", "to"},
        "operator": {"action"},
        "message": {"action"},
        "menu": {"action", "menu"},
        "dial_by_extension": {"action"},
        "submenu": {"action", "menu"},
        "repeat": {"action"},
        "back": {"action"},
    }
)

_NOT_A_ROUTE = {
    "dial_by_extension": "works only as a menu key",
    "repeat": "works only as a menu key",
    "back": "works only as a menu key",
    "submenu": (
        'works only as a menu key; to start in a submenu write action = "menu", menu = "NAME"'
    ),
}
_NOT_A_MENU_ACTION = {
    "message": "is a route, not a menu key action; use voicemail, transfer or operator",
    "menu": 'is a route, not a menu key action; use action = "submenu", menu = "NAME"',
}


@dataclass(frozen=True)
class Targets:
    """What routes may name."""

    extensions: frozenset[str]
    """Every extension of the file (also those with problems, so they are not blamed twice)."""
    voicemail_off: frozenset[str]
    """Extensions whose owner policy turns voicemail off."""
    operator: str
    """``[defaults] operator``."""


@dataclass(frozen=True)
class _Entry:
    """The entry whose routing is being read."""

    kind: Kind
    ext: str | None
    where: str
    has_menu: bool
    submenus: frozenset[str]


class RoutingReader:
    """Reads and checks the routing tables of entries; ``checks`` collects the problems."""

    def __init__(self, checks: Checks, targets: Targets) -> None:
        self.checks = checks
        self.targets = targets

    def read(
        self, kind: Kind, table: Mapping[str, Any], where: str, ext: str | None
    ) -> Routing | None:
        """The routing of one entry, or None when its table has no routing keys.

        Problems are collected; the result is meaningless when there were any."""
        if not any(key in table for key in ROUTING_KEYS[kind]):
            return None
        submenu_tables = self.submenu_tables(table.get("submenus"), kind, where)
        entry = _Entry(kind, ext, where, "menu" in table, frozenset(submenu_tables))
        menu = None
        if kind is Kind.AUTO_RECEPTIONIST and "menu" in table:
            menu = self.menu(table["menu"], entry, f"{where} menu")
        submenus: dict[str, Menu] = {}
        for name, value in submenu_tables.items():
            built = self.menu(value, entry, f"{where} submenu {name!r}")
            if built is not None:
                submenus[name] = built

        def route(key: str) -> Route | None:
            return self.route(table[key], entry, key) if key in table else None

        hours = WeeklyHours(always_open=True)
        if "hours" in table:
            hours = self.hours(table["hours"], where)
        routing = Routing(
            hours=hours,
            holidays=self.holidays(table.get("holidays", []), entry),
            business=route("business"),
            closed=route("closed"),
            menu=menu,
            submenus=MappingProxyType(submenus),
        )
        # Keys that say nothing (an empty holidays list) give the same as no routing at all,
        # which is what export writes back.
        return None if routing == Routing() else routing

    # -- hours and holidays ---------------------------------------------------------------

    def hours(self, value: Any, where: str) -> WeeklyHours:
        w = f"{where} hours"
        table = self.checks.table(value, w, example='{ mon = ["09:00-17:00"] }')
        if table is None:
            return WeeklyHours(always_open=True)
        days: dict[int, tuple[TimeRange, ...]] = {}
        written: list[tuple[int, str, TimeRange]] = []
        for day, ranges in table.items():
            if day not in WEEKDAYS:
                self.checks.problem(w, f"unknown day {day!r}; days are {', '.join(WEEKDAYS)}")
                continue
            example = f'{day} = ["09:00-12:00", "13:00-17:30"]'
            if not isinstance(ranges, list) or not all(isinstance(r, str) for r in ranges):
                self.checks.problem(
                    w, f"{day!r} must be a list of time ranges in quotes, e.g. {example}"
                )
                continue
            parsed: list[TimeRange] = []
            for text in ranges:
                try:
                    parsed.append(parse_time_range(text))
                except ValueError as exc:
                    self.checks.problem(w, f"{day!r}: {exc}")
                    continue
                written.append((WEEKDAYS.index(day), text, parsed[-1]))
            if parsed:
                days[WEEKDAYS.index(day)] = tuple(parsed)
        self.overlaps(written, w)
        return WeeklyHours(days=MappingProxyType(days), always_open=False)

    def overlaps(self, written: list[tuple[int, str, TimeRange]], where: str) -> None:
        """Ranges that share a minute (also one running over midnight into the next day)."""
        week = 7 * 1440
        spans: list[tuple[int, int, int]] = []  # (start, end, index into written)
        for i, (day, _, r) in enumerate(written):
            start = day * 1440 + r.start.hour * 60 + r.start.minute
            end = day * 1440 + r.end.hour * 60 + r.end.minute + (1440 if r.over_midnight else 0)
            spans.append((start, min(end, week), i))
            if end > week:  # Sunday night into Monday
                spans.append((0, end - week, i))
        reported: set[tuple[int, int]] = set()
        for a_start, a_end, a in spans:
            for b_start, b_end, b in spans:
                if a < b and (a, b) not in reported and a_start < b_end and b_start < a_end:
                    reported.add((a, b))
                    (day_a, text_a, _), (day_b, text_b, _) = written[a], written[b]
                    self.checks.problem(
                        where,
                        f"{WEEKDAYS[day_a]} {text_a!r} overlaps {WEEKDAYS[day_b]} {text_b!r}; "
                        "merge them into one range",
                    )

    def holidays(self, value: Any, entry: _Entry) -> tuple[Holiday, ...]:
        out: list[Holiday] = []
        header = f"{entry.kind.value}.holidays"
        for i, table in enumerate(
            self.checks.tables(value, f"{entry.where} holidays", header=header), 1
        ):
            w = f"{entry.where} holidays #{i}"
            self.checks.keys(table, {"name", "dates", "route"}, w)
            name = self.checks.get(table, "name", str, w, required=True, check=non_empty)
            dates = table.get("dates")
            ranges: list[tuple[date, date]] = []
            example = 'dates = ["2026-12-25", "2026-12-31..2027-01-01"]'
            if (
                not isinstance(dates, list)
                or not dates
                or not all(isinstance(d, str) for d in dates)
            ):
                self.checks.problem(w, f"'dates' must be a non-empty list of dates, e.g. {example}")
            else:
                for text in dates:
                    try:
                        ranges.append(parse_holiday_dates(text))
                    except ValueError as exc:
                        self.checks.problem(w, f"'dates': {exc}")
            route = (
                self.route(table["route"], entry, f"holidays #{i} route")
                if ("route" in table)
                else None
            )
            out.append(Holiday(name=name or "", ranges=tuple(ranges), route=route))
        return tuple(out)

    # -- menus ----------------------------------------------------------------------------

    def submenu_tables(self, value: Any, kind: Kind, where: str) -> dict[str, Any]:
        """The submenus by name (names checked; each menu is read later)."""
        if kind is not Kind.AUTO_RECEPTIONIST or value is None:
            return {}
        example = '{ support = { "1" = { action = "voicemail" } } }'
        table = self.checks.table(value, f"{where} submenus", example=example)
        if table is None:
            return {}
        for name in table:
            if name == "main":
                self.checks.problem(
                    f"{where} submenu 'main'",
                    "the name 'main' is the main menu's ([auto_receptionist.menu]); rename it",
                )
            elif not _SUBMENU_RE.match(name):
                self.checks.problem(
                    f"{where} submenu {name!r}",
                    "a submenu name must be 1 to 32 letters, digits, '-' or '_'; rename it",
                )
        return dict(table)

    def menu(self, value: Any, entry: _Entry, where: str) -> Menu | None:
        table = self.checks.table(value, where, example='{ "1" = { action = "operator" } }')
        if table is None:
            return None
        base = Menu()
        timeout_s = self.timeout(table, where, base.timeout_s)
        attempts = self.checks.get(
            table,
            "attempts",
            int,
            where,
            base.attempts,
            check=lambda v: None if 1 <= v <= 10 else "must be 1 to 10",
        )
        fallback = base.fallback
        if "fallback" in table:
            found = self.menu_action(
                table["fallback"], entry, f"{where} fallback", _FALLBACK_ACTIONS
            )
            fallback = found or fallback
        options: dict[str, MenuAction] = {}
        for key, item in table.items():
            if key in _MENU_SETTINGS:
                continue
            if len(key) != 1 or key not in MENU_KEY_ORDER:
                self.checks.problem(
                    where,
                    f"unknown key {key!r}; menu keys are 0-9, * and #, "
                    f"settings are {', '.join(_MENU_SETTINGS)}",
                )
                continue
            action = self.menu_action(item, entry, f"{where} key {key!r}", _MENU_ACTIONS)
            if action is not None:
                options[key] = action
        if not any(key in MENU_KEY_ORDER for key in table if len(key) == 1):
            self.checks.problem(
                where, 'has no keys; give at least one, e.g. "0" = { action = "operator" }'
            )
        return Menu(
            options=MappingProxyType({k: options[k] for k in MENU_KEY_ORDER if k in options}),
            timeout_s=timeout_s,
            attempts=attempts,
            fallback=fallback,
        )

    def timeout(self, table: Mapping[str, Any], where: str, default: float) -> float:
        if "timeout_s" not in table:
            return default
        value = table["timeout_s"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.checks.problem(where, "'timeout_s' must be a number of seconds, e.g. 5")
            return default
        if not 1 <= value <= 60:
            self.checks.problem(where, "'timeout_s' must be 1 to 60 seconds")
            return default
        return float(value)

    # -- routes and actions ---------------------------------------------------------------

    def route(self, value: Any, entry: _Entry, what: str) -> Route | None:
        """A period's route (``business``, ``closed``, a holiday's ``route``)."""
        found = self.action(value, entry, f"{entry.where} {what}", _ROUTE_ACTIONS)
        assert found is None or isinstance(found, Route)  # only route words are allowed
        return found

    def menu_action(
        self, value: Any, entry: _Entry, where: str, allowed: tuple[str, ...]
    ) -> MenuAction | None:
        """A menu key's action, or a menu's fallback."""
        found = self.action(value, entry, where, allowed)
        assert found is None or isinstance(found, MenuAction)  # only menu words are allowed
        return found

    def action(
        self, value: Any, entry: _Entry, where: str, allowed: tuple[str, ...]
    ) -> Route | MenuAction | None:
        """A route or menu action; ``allowed``: the action words this place takes."""
        table = self.checks.table(value, where, example='{ action = "voicemail" }')
        if table is None:
            return None
        name = self.checks.get(table, "action", str, where, required=True)
        if name is None:
            return None
        if name not in allowed:
            self.checks.problem(where, self.refusal(name, allowed))
            return None
        self.checks.keys(table, _ACTION_KEYS[name], where)
        c = self.checks
        if name == "voicemail":
            inbox = c.get(table, "inbox", str, where, check=self.inbox_problem)
            operator = c.get(table, "operator", bool, where, True)
            return Voicemail(inbox=inbox, operator=operator)
        if name == "transfer":
            to = c.get(table, "to", str, where, required=True, check=self.transfer_problem(entry))
            return Transfer(to) if to is not None else None
        if name == "operator":
            return Operator()
        if name == "message":
            return PlayMessage()
        if name == "dial_by_extension":
            return DialByExtension()
        if name == "repeat":
            return Repeat()
        if name == "back":
            return Back()
        if name == "submenu":
            menu = c.get(
                table, "menu", str, where, required=True, check=self.submenu_problem(entry)
            )
            return Submenu(menu) if menu is not None else None
        # "menu": the IVR of an auto receptionist
        if entry.kind is not Kind.AUTO_RECEPTIONIST:
            self.checks.problem(
                where,
                "action 'menu' is for auto receptionists only; "
                "use voicemail, transfer, operator or message",
            )
            return None
        if not entry.has_menu:
            self.checks.problem(
                where, "action 'menu' needs a main menu: add an [auto_receptionist.menu] table"
            )
            return None
        start = c.get(table, "menu", str, where, "main", check=self.start_problem(entry))
        return RunMenu(start) if start is not None else None

    def refusal(self, name: str, allowed: tuple[str, ...]) -> str:
        choices = ", ".join(allowed)
        if name not in _ACTION_KEYS:
            return f"unknown action {name!r}; actions here are {choices}"
        if allowed is _ROUTE_ACTIONS and name in _NOT_A_ROUTE:
            return f"action {name!r} {_NOT_A_ROUTE[name]}; a route is one of {choices}"
        if allowed is _MENU_ACTIONS and name in _NOT_A_MENU_ACTION:
            return f"action {name!r} {_NOT_A_MENU_ACTION[name]}"
        return (
            f"action {name!r} cannot be a fallback: it must end the menu ({choices}), "
            "or a caller who presses nothing would go round for ever"
        )

    def inbox_problem(self, inbox: str) -> str | None:
        if inbox not in self.targets.extensions:
            return f"{inbox!r} is not an extension of this directory; name an existing inbox"
        if inbox in self.targets.voicemail_off:
            return f"{inbox!r} has voicemail turned off (policy voicemail = false); name another"
        return None

    def transfer_problem(self, entry: _Entry) -> Callable[[str], str | None]:
        def check(to: str) -> str | None:
            if not _TO_RE.match(to):
                return "must be digits, optionally after a '+', up to 20 characters"
            if to == entry.ext:
                return f"{to!r} is this entry itself; the call would come straight back here"
            if to in self.targets.extensions or to == self.targets.operator:
                return None
            if len(to.lstrip("+")) < EXTERNAL_MIN_DIGITS:
                return (
                    f"{to!r} is not an extension of this directory, and an outside number needs "
                    f"{EXTERNAL_MIN_DIGITS} digits or more (e.g. +15551230000); check the number"
                )
            return None

        return check

    def submenu_problem(self, entry: _Entry) -> Callable[[str], str | None]:
        def check(name: str) -> str | None:
            if name in entry.submenus:
                return None
            return f"names no submenu {name!r}; {_submenus_hint(entry)}"

        return check

    def start_problem(self, entry: _Entry) -> Callable[[str], str | None]:
        def check(name: str) -> str | None:
            if name == "main" or name in entry.submenus:
                return None
            return f"names no menu {name!r}; use 'main' or a submenu ({_submenus_hint(entry)})"

        return check


def _submenus_hint(entry: _Entry) -> str:
    known = ", ".join(repr(n) for n in sorted(entry.submenus))
    if known:
        return f"submenus are {known}"
    return f"define it as [{entry.kind.value}.submenus.NAME]"


# -- export --------------------------------------------------------------------------------


def routing_document(routing: Routing) -> dict[str, Any]:
    """The routing keys of an entry's table, as the file writes them (defaults left out)."""
    out: dict[str, Any] = {}
    if not routing.hours.always_open:
        out["hours"] = {
            WEEKDAYS[day]: [format_time_range(r) for r in ranges]
            for day, ranges in sorted(routing.hours.days.items())
            if ranges
        }
    if routing.holidays:
        out["holidays"] = [_holiday_document(h) for h in routing.holidays]
    if routing.business is not None:
        out["business"] = action_document(routing.business)
    if routing.closed is not None:
        out["closed"] = action_document(routing.closed)
    if routing.menu is not None:
        out["menu"] = _menu_document(routing.menu)
    if routing.submenus:
        out["submenus"] = {name: _menu_document(m) for name, m in routing.submenus.items()}
    return out


def format_dates(first: date, last: date) -> str:
    """``YYYY-MM-DD``, or ``first..last`` for several days."""
    return first.isoformat() if first == last else f"{first.isoformat()}..{last.isoformat()}"


def action_document(action: Route | MenuAction) -> dict[str, Any]:
    """A route or menu action as its inline table."""
    out: dict[str, Any] = {"action": action_name(action)}
    if isinstance(action, Voicemail):
        if action.inbox is not None:
            out["inbox"] = action.inbox
        if not action.operator:
            out["operator"] = False
    elif isinstance(action, Transfer):
        out["to"] = action.to
    elif isinstance(action, Submenu):
        out["menu"] = action.name
    elif isinstance(action, RunMenu) and action.menu != "main":
        out["menu"] = action.menu
    return out


def _holiday_document(h: Holiday) -> dict[str, Any]:
    out: dict[str, Any] = {"name": h.name, "dates": [format_dates(a, b) for a, b in h.ranges]}
    if h.route is not None:
        out["route"] = action_document(h.route)
    return out


def _menu_document(menu: Menu) -> dict[str, Any]:
    base = Menu()
    out: dict[str, Any] = {}
    if menu.timeout_s != base.timeout_s:
        out["timeout_s"] = int(menu.timeout_s) if menu.timeout_s.is_integer() else menu.timeout_s
    if menu.attempts != base.attempts:
        out["attempts"] = menu.attempts
    if menu.fallback != base.fallback:
        out["fallback"] = action_document(menu.fallback)
    for key in sorted(menu.options, key=MENU_KEY_ORDER.index):
        out[key] = action_document(menu.options[key])
    return out
