"""Routing in the directory file: hours, holidays, routes and IVR menus; checks and export."""

from __future__ import annotations

import dataclasses
import json
import textwrap
import tomllib
from datetime import date, time
from pathlib import Path
from types import MappingProxyType

import pytest

from sipvm.domain.model import Directory
from sipvm.domain.routing import (
    Back,
    DialByExtension,
    Holiday,
    Menu,
    Operator,
    Period,
    PlayMessage,
    Repeat,
    Routing,
    RunMenu,
    Submenu,
    TimeRange,
    Transfer,
    Voicemail,
    WeeklyHours,
)
from sipvm.domain.transfers import transfer_destinations
from sipvm.errors import DirectoryError
from sipvm.provisioning.directory_file import (
    directory_document,
    dump_directory,
    parse_directory,
    read_directory_file,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "provisioning" / "examples" / "small-office.toml"

#: A valid directory without routing; the cases append one entry to it.
BASE = """\
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Alice"
site = "HQ"

[[user]]
ext = "1002"
name = "Bob"
site = "HQ"
[user.policy]
voicemail = false

[[call_queue]]
ext = "2001"
name = "Sales"
site = "HQ"
"""

QUEUE = '[[call_queue]]\next = "2002"\nname = "Support"\nsite = "HQ"\n'
AR = '[[auto_receptionist]]\next = "3002"\nname = "Main"\nsite = "HQ"\n'
GROUP = '[[shared_line_group]]\next = "4002"\nname = "Desk"\nsite = "HQ"\n'
AR_MENU = AR + '[auto_receptionist.menu]\n"0" = { action = "operator" }\n'

WEEKDAYS_9_TO_5 = {d: (TimeRange(time(9), time(17)),) for d in range(5)}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "directory.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(DirectoryError) as info:
        read_directory_file(path)
    return info.value.problems


def round_trips(d: Directory) -> None:
    """Export then read back gives the same directory, the same text and the same document."""
    text = dump_directory(d)
    again = parse_directory(tomllib.loads(text), source="export")
    assert again == d
    assert dump_directory(again) == text
    assert directory_document(again) == directory_document(d)
    stored = json.loads(json.dumps(directory_document(d), sort_keys=True))
    assert parse_directory(stored, source="store") == d


# -- the shipped example ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def example() -> Directory:
    return read_directory_file(EXAMPLE)


def test_example_queue_routing(example: Directory) -> None:
    assert example.extensions["2001"].routing == Routing(
        hours=WeeklyHours(days=WEEKDAYS_9_TO_5),
        business=Voicemail(operator=True),
        closed=Voicemail(),
    )


def test_example_auto_receptionist_routing(example: Directory) -> None:
    routing = example.extensions["3001"].routing
    assert routing is not None
    open_ = (TimeRange(time(8, 30), time(18)),)
    assert routing.hours == WeeklyHours(days=dict.fromkeys(range(5), open_))
    assert routing.holidays == (
        Holiday("Christmas", ((date(2026, 12, 24), date(2026, 12, 26)),), PlayMessage()),
    )
    assert (routing.business, routing.closed) == (RunMenu(), Voicemail())
    assert routing.menu == Menu(
        options={
            "1": Transfer("2001"),
            "2": DialByExtension(),
            "3": Voicemail(inbox="1002"),
            "4": Submenu("branch"),
            "9": Repeat(),
            "0": Operator(),
        }
    )
    assert dict(routing.submenus) == {
        "branch": Menu(options={"1": Transfer("4001"), "2": Voicemail(inbox="4001"), "*": Back()})
    }


def test_example_group_routing(example: Directory) -> None:
    assert example.extensions["4001"].routing == Routing(
        hours=WeeklyHours(days=WEEKDAYS_9_TO_5), closed=Transfer("1101")
    )
    assert example.sites["Branch"].timezone == "Europe/London"


def test_example_routing_round_trips(example: Directory) -> None:
    round_trips(example)


def test_example_exports_routing_in_the_file_format(example: Directory) -> None:
    ar = next(e for e in directory_document(example)["auto_receptionist"] if e["ext"] == "3001")
    assert ar["hours"]["mon"] == ["08:30-18:00"]
    assert set(ar["hours"]) == {"mon", "tue", "wed", "thu", "fri"}
    assert ar["holidays"] == [
        {"name": "Christmas", "dates": ["2026-12-24..2026-12-26"], "route": {"action": "message"}}
    ]
    assert ar["business"] == {"action": "menu"}
    assert ar["closed"] == {"action": "voicemail"}
    assert list(ar["menu"]) == ["1", "2", "3", "4", "9", "0"]
    assert ar["menu"]["3"] == {"action": "voicemail", "inbox": "1002"}
    assert ar["submenus"] == {
        "branch": {
            "1": {"action": "transfer", "to": "4001"},
            "2": {"action": "voicemail", "inbox": "4001"},
            "*": {"action": "back"},
        }
    }


def test_users_have_no_routing(example: Directory) -> None:
    assert all(e.routing is None for e in example.extensions.values() if e.kind.has_owner)


# -- a file using every feature --------------------------------------------------------------

FULL = """
[[auto_receptionist]]
ext = "3002"
name = "Main"
site = "HQ"
[auto_receptionist.hours]
mon = ["09:00-12:00", "13:00-17:30"]
fri = ["22:00-02:00"]
sat = ["17:00-24:00"]
sun = ["23:00-01:00"]
[[auto_receptionist.holidays]]
name = "Christmas"
dates = ["2026-12-25", "2026-12-31..2027-01-01"]
route = { action = "message" }
[[auto_receptionist.holidays]]
name = "Inventory"
dates = ["2026-07-01"]
[auto_receptionist.business]
action = "menu"
menu = "support"
[auto_receptionist.closed]
action = "voicemail"
operator = false
inbox = "1001"
[auto_receptionist.menu]
timeout_s = 7.5
attempts = 2
fallback = { action = "transfer", to = "+15551230000" }
"1" = { action = "transfer", to = "2001" }
"2" = { action = "voicemail", inbox = "1001" }
"3" = { action = "dial_by_extension" }
"4" = { action = "submenu", menu = "support" }
"5" = { action = "transfer", to = "+15551230000" }
"6" = { action = "transfer", to = "0" }
"9" = { action = "repeat" }
"0" = { action = "operator" }
"#" = { action = "back" }
[auto_receptionist.submenus.support]
timeout_s = 10
"1" = { action = "voicemail" }
"2" = { action = "submenu", menu = "loop" }
"*" = { action = "back" }
[auto_receptionist.submenus.loop]
"1" = { action = "submenu", menu = "support" }

[[call_queue]]
ext = "2002"
name = "Support"
site = "HQ"
[call_queue.hours]
[call_queue.business]
action = "transfer"
to = "015551230000"
[call_queue.closed]
action = "operator"

[[shared_line_group]]
ext = "4002"
name = "Desk"
site = "HQ"
[[shared_line_group.holidays]]
name = "Founders' day"
dates = ["2026-03-02"]
route = { action = "voicemail", inbox = "2001" }
"""


@pytest.fixture
def full(tmp_path: Path) -> Directory:
    return read_directory_file(write(tmp_path, BASE + FULL))


def test_every_feature_is_read(full: Directory) -> None:
    r = full.extensions["3002"].routing
    assert r is not None
    assert r.hours == WeeklyHours(
        days={
            0: (TimeRange(time(9), time(12)), TimeRange(time(13), time(17, 30))),
            4: (TimeRange(time(22), time(2)),),
            5: (TimeRange(time(17), time(0)),),
            6: (TimeRange(time(23), time(1)),),
        }
    )
    assert r.holidays == (
        Holiday(
            "Christmas",
            ((date(2026, 12, 25), date(2026, 12, 25)), (date(2026, 12, 31), date(2027, 1, 1))),
            PlayMessage(),
        ),
        Holiday("Inventory", ((date(2026, 7, 1), date(2026, 7, 1)),)),
    )
    assert r.business == RunMenu("support")
    assert r.closed == Voicemail(inbox="1001", operator=False)
    assert r.menu is not None
    assert (r.menu.timeout_s, r.menu.attempts) == (7.5, 2)
    assert r.menu.fallback == Transfer("+15551230000")
    assert r.menu.options["#"] == Back()
    assert list(r.menu.options) == ["1", "2", "3", "4", "5", "6", "9", "0", "#"]
    assert r.submenus["support"] == Menu(
        options={"1": Voicemail(), "2": Submenu("loop"), "*": Back()}, timeout_s=10.0
    )
    queue = full.extensions["2002"].routing
    assert queue == Routing(
        hours=WeeklyHours(), business=Transfer("015551230000"), closed=Operator()
    )
    group = full.extensions["4002"].routing
    assert group == Routing(
        holidays=(
            Holiday(
                "Founders' day",
                ((date(2026, 3, 2), date(2026, 3, 2)),),
                Voicemail(inbox="2001"),
            ),
        )
    )
    assert full.extensions["2001"].routing is None


def test_every_feature_round_trips(full: Directory) -> None:
    round_trips(full)


def test_export_writes_the_file_format(full: Directory) -> None:
    doc = directory_document(full)
    ar = doc["auto_receptionist"][0]
    assert ar["hours"] == {
        "mon": ["09:00-12:00", "13:00-17:30"],
        "fri": ["22:00-02:00"],
        "sat": ["17:00-24:00"],
        "sun": ["23:00-01:00"],
    }
    assert ar["holidays"][0]["dates"] == ["2026-12-25", "2026-12-31..2027-01-01"]
    assert "route" not in ar["holidays"][1]
    assert ar["business"] == {"action": "menu", "menu": "support"}
    assert ar["closed"] == {"action": "voicemail", "inbox": "1001", "operator": False}
    assert ar["menu"]["timeout_s"] == 7.5
    assert ar["menu"]["fallback"] == {"action": "transfer", "to": "+15551230000"}
    assert ar["submenus"]["support"]["timeout_s"] == 10  # whole seconds stay whole
    queue = doc["call_queue"][1]
    assert queue["hours"] == {}  # a table with no days: closed all week
    assert "menu" not in queue and "holidays" not in queue


def test_transfer_targets_written_in_the_file_pass_the_guard(full: Directory) -> None:
    allowed = transfer_destinations(full)
    assert {"+15551230000", "015551230000", "2001", "0"} <= allowed


def test_keys_that_say_nothing_give_no_routing(tmp_path: Path) -> None:
    d = read_directory_file(write(tmp_path, BASE + QUEUE + "holidays = []\n"))
    assert d.extensions["2002"].routing is None
    round_trips(d)


def test_defaults_of_routes_and_menus(tmp_path: Path) -> None:
    d = read_directory_file(write(tmp_path, BASE + AR_MENU))
    r = d.extensions["3002"].routing
    assert r == Routing(menu=Menu(options={"0": Operator()}))
    assert r is not None and r.hours.always_open
    assert r.route_for(Period.BUSINESS) == RunMenu()  # a menu: business hours run it
    assert r.route_for(Period.CLOSED) == Voicemail()
    assert r.menu is not None and r.menu.fallback == Operator()
    assert (r.menu.timeout_s, r.menu.attempts) == (5.0, 3)


# -- every validation rule -------------------------------------------------------------------


def _hours(*lines: str, kind: str = "call_queue") -> str:
    head = {"call_queue": QUEUE, "auto_receptionist": AR, "shared_line_group": GROUP}[kind]
    return head + f"[{kind}.hours]\n" + "".join(f"{line}\n" for line in lines)


def _route(route: str, *, head: str = QUEUE, kind: str = "call_queue", key: str = "closed") -> str:
    return head + f"[{kind}.{key}]\n{route}\n"


def _menu(*lines: str) -> str:
    return AR + "[auto_receptionist.menu]\n" + "".join(f"{line}\n" for line in lines)


def _holiday(*lines: str) -> str:
    return QUEUE + "[[call_queue.holidays]]\n" + "".join(f"{line}\n" for line in lines)


Q, A = "call_queue 2002", "auto_receptionist 3002"

# (id, text appended to BASE, entry named, fragments of the problem)
RULE_CASES: list[tuple[str, str, str, tuple[str, ...]]] = [
    # keys that do not belong
    (
        "hours on a user",
        '[[user]]\next = "1003"\nname = "Carol"\n[user.hours]\nmon = ["09:00-17:00"]\n',
        "user 1003",
        ("unknown key 'hours'", "only call queues, auto receptionists and shared line groups"),
    ),
    (
        "business on a common area",
        '[[common_area]]\next = "1900"\nname = "L"\n[common_area.business]\naction = "message"\n',
        "common_area 1900",
        ("unknown key 'business'",),
    ),
    (
        "menu on a call queue",
        QUEUE + '[call_queue.menu]\n"1" = { action = "operator" }\n',
        Q,
        ("unknown key 'menu'", "only auto receptionists have IVR menus"),
    ),
    (
        "submenus on a shared line group",
        GROUP + '[shared_line_group.submenus.x]\n"1" = { action = "operator" }\n',
        "shared_line_group 4002",
        ("unknown key 'submenus'", "only auto receptionists"),
    ),
    ("unknown routing key", QUEUE + "overflow = true\n", Q, ("unknown key 'overflow'",)),
    # hours
    ("hours not a table", QUEUE + 'hours = "9-5"\n', f"{Q} hours", ("must be a table",)),
    (
        "unknown day",
        _hours('monday = ["09:00-17:00"]'),
        f"{Q} hours",
        ("unknown day 'monday'", "days are mon, tue, wed, thu, fri, sat, sun"),
    ),
    (
        "day not a list",
        _hours('mon = "09:00-17:00"'),
        f"{Q} hours",
        ("'mon' must be a list of time ranges in quotes", 'mon = ["09:00-12:00"'),
    ),
    (
        "range not a string",
        _hours("tue = [9]"),
        f"{Q} hours",
        ("'tue' must be a list of time ranges in quotes",),
    ),
    (
        "bad time range",
        _hours('wed = ["9 to 5"]'),
        f"{Q} hours",
        ("'wed': \"9 to 5\" is not a time range", '"09:00-17:00"'),
    ),
    (
        "hour out of range",
        _hours('thu = ["09:00-25:00"]'),
        f"{Q} hours",
        ("'thu': \"09:00-25:00\" is not a time of day",),
    ),
    (
        "a range that starts where it ends",
        _hours('sat = ["09:00-09:00"]'),
        f"{Q} hours",
        ("'sat': \"09:00-09:00\" starts and ends at the same time",),
    ),
    (
        "overlapping ranges on one day",
        _hours('mon = ["09:00-12:00", "11:30-17:00"]'),
        f"{Q} hours",
        ("mon '09:00-12:00' overlaps mon '11:30-17:00'", "merge them into one range"),
    ),
    (
        "the same range twice",
        _hours('fri = ["09:00-17:00", "09:00-17:00"]'),
        f"{Q} hours",
        ("fri '09:00-17:00' overlaps fri '09:00-17:00'",),
    ),
    (
        "a range over midnight overlapping the next day",
        _hours('tue = ["22:00-02:00"]', 'wed = ["01:00-05:00"]'),
        f"{Q} hours",
        ("tue '22:00-02:00' overlaps wed '01:00-05:00'",),
    ),
    (
        "sunday night into monday",
        _hours('mon = ["00:00-08:00"]', 'sun = ["20:00-01:00"]'),
        f"{Q} hours",
        ("mon '00:00-08:00' overlaps sun '20:00-01:00'",),
    ),
    # holidays
    (
        "holidays not an array of tables",
        QUEUE + 'holidays = "2026-12-25"\n',
        f"{Q} holidays",
        ("must be an array of tables ([[call_queue.holidays]])",),
    ),
    (
        "holiday without a name",
        _holiday('dates = ["2026-12-25"]'),
        f"{Q} holidays #1",
        ("'name' is required",),
    ),
    (
        "holiday without dates",
        _holiday('name = "X"'),
        f"{Q} holidays #1",
        ("'dates' must be a non-empty list of dates", "2026-12-31..2027-01-01"),
    ),
    (
        "holiday with no dates",
        _holiday('name = "X"', "dates = []"),
        f"{Q} holidays #1",
        ("'dates' must be a non-empty list",),
    ),
    (
        "holiday dates as a string",
        _holiday('name = "X"', 'dates = "2026-12-25"'),
        f"{Q} holidays #1",
        ("'dates' must be a non-empty list",),
    ),
    (
        "holiday with a bad date",
        _holiday('name = "X"', 'dates = ["2026-12-25", "2026-13-01"]'),
        f"{Q} holidays #1",
        ("'dates': \"2026-13-01\" names a day that does not exist",),
    ),
    (
        "holiday range ending before it starts",
        _holiday('name = "X"', 'dates = ["2027-01-01..2026-12-31"]'),
        f"{Q} holidays #1",
        ("'dates': \"2027-01-01..2026-12-31\" ends before it starts",),
    ),
    (
        "holiday with an unknown key",
        _holiday('name = "X"', 'dates = ["2026-12-25"]', 'greeting = "xmas"'),
        f"{Q} holidays #1",
        ("unknown key 'greeting'", "allowed keys: dates, name, route"),
    ),
    (
        "holiday route back",
        _holiday('name = "X"', 'dates = ["2026-12-25"]', 'route = { action = "back" }'),
        f"{Q} holidays #1 route",
        ("action 'back' works only as a menu key", "a route is one of menu, voicemail"),
    ),
    # routes
    (
        "route not a table",
        QUEUE + 'business = "voicemail"\n',
        f"{Q} business",
        ("must be a table, not a string", 'e.g. { action = "voicemail" }'),
    ),
    ("route without an action", _route('to = "2001"'), f"{Q} closed", ("'action' is required",)),
    (
        "unknown action",
        _route('action = "hangup"'),
        f"{Q} closed",
        (
            "unknown action 'hangup'",
            "actions here are menu, voicemail, transfer, operator, message",
        ),
    ),
    ("action not a string", _route("action = 1"), f"{Q} closed", ("'action' must be a string",)),
    (
        "repeat as a route",
        _route('action = "repeat"'),
        f"{Q} closed",
        ("action 'repeat' works only as a menu key",),
    ),
    (
        "back as a route",
        _route('action = "back"', key="business"),
        f"{Q} business",
        ("action 'back' works only",),
    ),
    (
        "dial by extension as a route",
        _route('action = "dial_by_extension"'),
        f"{Q} closed",
        ("action 'dial_by_extension' works only as a menu key",),
    ),
    (
        "submenu as a route",
        _route('action = "submenu"\nmenu = "x"', head=AR_MENU, kind="auto_receptionist"),
        f"{A} closed",
        ("action 'submenu' works only as a menu key", 'action = "menu", menu = "NAME"'),
    ),
    (
        "menu route on a call queue",
        _route('action = "menu"', key="business"),
        f"{Q} business",
        ("action 'menu' is for auto receptionists only",),
    ),
    (
        "menu route without a menu",
        _route('action = "menu"', head=AR, kind="auto_receptionist", key="business"),
        f"{A} business",
        ("action 'menu' needs a main menu", "[auto_receptionist.menu]"),
    ),
    (
        "menu route starting in an unknown submenu",
        _route('action = "menu"\nmenu = "sales"', head=AR_MENU, kind="auto_receptionist"),
        f"{A} closed",
        ("'menu' names no menu 'sales'", "define it as [auto_receptionist.submenus.NAME]"),
    ),
    (
        "unknown key in a route",
        _route('action = "voicemail"\nto = "2001"'),
        f"{Q} closed",
        ("unknown key 'to'", "allowed keys: action, inbox, operator"),
    ),
    (
        "key of another action",
        _route('action = "operator"\ninbox = "1001"'),
        f"{Q} closed",
        ("unknown key 'inbox'", "allowed keys: action"),
    ),
    # transfers
    ("transfer without to", _route('action = "transfer"'), f"{Q} closed", ("'to' is required",)),
    (
        "transfer to a number given as a number",
        _route('action = "transfer"\nto = 15551230000'),
        f"{Q} closed",
        ("'to' must be a string, not a number", "in quotes"),
    ),
    (
        "transfer to a SIP URI",
        _route('action = "transfer"\nto = "sip:bob@example.com"'),
        f"{Q} closed",
        ("'to' must be digits, optionally after a '+', up to 20 characters",),
    ),
    (
        "transfer to a dial string",
        _route('action = "transfer"\nto = "9,,15551230000"'),
        f"{Q} closed",
        ("'to' must be digits",),
    ),
    (
        "transfer to 21 digits",
        _route('action = "transfer"\nto = "+' + "1" * 20 + '"'),
        f"{Q} closed",
        ("'to' must be digits", "up to 20 characters"),
    ),
    (
        "transfer to a missing extension",
        _route('action = "transfer"\nto = "2020"'),
        f"{Q} closed",
        ("'to' '2020' is not an extension of this directory", "7 digits or more"),
    ),
    (
        "transfer to a short plus number",
        _route('action = "transfer"\nto = "+123456"'),
        f"{Q} closed",
        ("'to' '+123456' is not an extension",),
    ),
    (
        "transfer to itself",
        _route('action = "transfer"\nto = "2002"'),
        f"{Q} closed",
        ("'to' '2002' is this entry itself",),
    ),
    # voicemail
    (
        "voicemail to a missing inbox",
        _route('action = "voicemail"\ninbox = "1999"'),
        f"{Q} closed",
        ("'inbox' '1999' is not an extension of this directory",),
    ),
    (
        "voicemail to an inbox with voicemail off",
        _route('action = "voicemail"\ninbox = "1002"'),
        f"{Q} closed",
        ("'inbox' '1002' has voicemail turned off",),
    ),
    (
        "voicemail operator not a boolean",
        _route('action = "voicemail"\noperator = "yes"'),
        f"{Q} closed",
        ("'operator' must be true or false, not a string",),
    ),
    # menus
    ("menu not a table", AR + 'menu = "main"\n', f"{A} menu", ("must be a table, not a string",)),
    (
        "menu with no keys",
        _menu("attempts = 2"),
        f"{A} menu",
        ("has no keys", '"0" = { action = "operator" }'),
    ),
    (
        "menu key that is no phone key",
        _menu('"1" = { action = "operator" }', 'A = { action = "operator" }'),
        f"{A} menu",
        ("unknown key 'A'", "menu keys are 0-9, * and #", "timeout_s, attempts, fallback"),
    ),
    (
        "menu key of two digits",
        _menu('"10" = { action = "operator" }', '"1" = { action = "operator" }'),
        f"{A} menu",
        ("unknown key '10'",),
    ),
    (
        "menu option not a table",
        _menu('"1" = "operator"'),
        f"{A} menu key '1'",
        ("must be a table, not a string",),
    ),
    (
        "timeout not a number",
        _menu('timeout_s = "5"', '"0" = { action = "operator" }'),
        f"{A} menu",
        ("'timeout_s' must be a number of seconds",),
    ),
    (
        "timeout a boolean",
        _menu("timeout_s = true", '"0" = { action = "operator" }'),
        f"{A} menu",
        ("'timeout_s' must be a number of seconds",),
    ),
    (
        "timeout too long",
        _menu("timeout_s = 61", '"0" = { action = "operator" }'),
        f"{A} menu",
        ("'timeout_s' must be 1 to 60 seconds",),
    ),
    (
        "timeout nan",
        _menu("timeout_s = nan", '"0" = { action = "operator" }'),
        f"{A} menu",
        ("'timeout_s' must be 1 to 60 seconds",),
    ),
    (
        "no attempts",
        _menu("attempts = 0", '"0" = { action = "operator" }'),
        f"{A} menu",
        ("'attempts' must be 1 to 10",),
    ),
    (
        "attempts as a decimal",
        _menu("attempts = 2.5", '"0" = { action = "operator" }'),
        f"{A} menu",
        ("'attempts' must be a whole number",),
    ),
    (
        "repeat as the fallback",
        _menu('fallback = { action = "repeat" }', '"0" = { action = "operator" }'),
        f"{A} menu fallback",
        ("action 'repeat' cannot be a fallback", "voicemail, transfer, operator"),
    ),
    (
        "submenu as the fallback",
        _menu('fallback = { action = "submenu", menu = "x" }', '"0" = { action = "operator" }'),
        f"{A} menu fallback",
        ("action 'submenu' cannot be a fallback",),
    ),
    (
        "message as a menu key",
        _menu('"1" = { action = "message" }'),
        f"{A} menu key '1'",
        ("action 'message' is a route, not a menu key action",),
    ),
    (
        "menu as a menu key",
        _menu('"1" = { action = "menu" }'),
        f"{A} menu key '1'",
        ("action 'menu' is a route", 'action = "submenu"'),
    ),
    (
        "submenu without a name",
        _menu('"1" = { action = "submenu" }'),
        f"{A} menu key '1'",
        ("'menu' is required",),
    ),
    (
        "submenu that is not defined",
        _menu('"1" = { action = "submenu", menu = "sales" }')
        + '[auto_receptionist.submenus.support]\n"*" = { action = "back" }\n',
        f"{A} menu key '1'",
        ("'menu' names no submenu 'sales'", "submenus are 'support'"),
    ),
    (
        "transfer in a menu to a missing extension",
        _menu('"1" = { action = "transfer", to = "2003" }'),
        f"{A} menu key '1'",
        ("'to' '2003' is not an extension",),
    ),
    (
        "unknown key in a menu action",
        _menu('"1" = { action = "dial_by_extension", max_digits = 4 }'),
        f"{A} menu key '1'",
        ("unknown key 'max_digits'",),
    ),
    # submenus
    (
        "submenus not a table",
        AR + 'submenus = ["support"]\n',
        f"{A} submenus",
        ("must be a table, not a list",),
    ),
    (
        "submenu not a table",
        AR + '[auto_receptionist.submenus]\nsupport = "x"\n',
        f"{A} submenu 'support'",
        ("must be a table, not a string",),
    ),
    (
        "submenu named main",
        AR + '[auto_receptionist.submenus.main]\n"1" = { action = "operator" }\n',
        f"{A} submenu 'main'",
        ("the name 'main' is the main menu's",),
    ),
    (
        "submenu name with a space",
        AR + '[auto_receptionist.submenus."after hours"]\n"1" = { action = "operator" }\n',
        f"{A} submenu 'after hours'",
        ("letters, digits, '-' or '_'",),
    ),
    (
        "empty submenu",
        AR + "[auto_receptionist.submenus.support]\n",
        f"{A} submenu 'support'",
        ("has no keys",),
    ),
    (
        "back as a route in a submenu's fallback",
        AR + '[auto_receptionist.submenus.support]\n"1" = { action = "operator" }\n'
        'fallback = { action = "back" }\n',
        f"{A} submenu 'support' fallback",
        ("action 'back' cannot be a fallback",),
    ),
]


@pytest.mark.parametrize(
    ("appended", "entry", "fragments"),
    [pytest.param(text, entry, frags, id=name) for name, text, entry, frags in RULE_CASES],
)
def test_each_rule_names_file_entry_and_problem(
    tmp_path: Path, appended: str, entry: str, fragments: tuple[str, ...]
) -> None:
    path = write(tmp_path, BASE + "\n" + appended)
    problems = problems_of(path)
    prefix = f"{path}: {entry}: "
    hits = [p for p in problems if p.startswith(prefix) and all(f in p for f in fragments)]
    assert hits, f"no problem {prefix!r} with {fragments!r} in:\n" + "\n".join(problems)
    # nothing else in the (otherwise valid) file is blamed, and each problem is said once
    owner = " ".join(entry.split()[:2])
    assert all(p.startswith(f"{path}: {owner}") for p in problems), problems
    assert len(problems) == len(set(problems)), problems


def test_every_routing_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        AR
        + '[auto_receptionist.hours]\nmon = ["09:00-12:00", "11:00-13:00"]\ntue = ["x"]\n'
        + '[auto_receptionist.business]\naction = "menu"\n'
        + '[auto_receptionist.closed]\naction = "transfer"\nto = "12"\n'
        + '[[auto_receptionist.holidays]]\nname = "X"\ndates = ["tomorrow"]\n'
        + GROUP
        + '[shared_line_group.closed]\naction = "repeat"\n'
    )
    path = write(tmp_path, BASE + text)
    problems = problems_of(path)
    expected = [
        (f"{A} hours", "overlaps"),
        (f"{A} hours", "'tue': \"x\" is not a time range"),
        (f"{A} business", "needs a main menu"),
        (f"{A} closed", "'12' is not an extension"),
        (f"{A} holidays #1", "'dates': \"tomorrow\" is not a date"),
        ("shared_line_group 4002 closed", "works only as a menu key"),
    ]
    for entry, fragment in expected:
        assert any(p.startswith(f"{path}: {entry}: ") and fragment in p for p in problems), (
            entry,
            fragment,
            problems,
        )
    assert len(problems) == len(expected), problems


def test_a_broken_entry_named_by_a_route_is_not_blamed_twice(tmp_path: Path) -> None:
    broken = '[[user]]\next = "1003"\nname = ""\n'  # a problem of its own
    path = write(tmp_path, BASE + broken + _route('action = "voicemail"\ninbox = "1003"'))
    problems = problems_of(path)
    assert problems == [f"{path}: user 1003: 'name' must not be empty"]


def test_transfer_to_the_operator_and_to_outside_numbers(tmp_path: Path) -> None:
    for to in ("0", "1001", "4001", "5551234", "+15551230000", "00441234567890"):
        text = BASE + _route(f'action = "transfer"\nto = "{to}"')
        if to == "4001":  # an extension defined after the route that names it
            text += GROUP.replace("4002", "4001")
        d = read_directory_file(write(tmp_path, text))
        assert d.extensions["2002"].routing == Routing(closed=Transfer(to)), to


def test_a_submenu_loop_and_an_unreachable_submenu_are_fine(tmp_path: Path) -> None:
    text = _menu('"1" = { action = "submenu", menu = "a" }') + (
        '[auto_receptionist.submenus.a]\n"1" = { action = "submenu", menu = "b" }\n'
        '[auto_receptionist.submenus.b]\n"1" = { action = "submenu", menu = "a" }\n'
        '[auto_receptionist.submenus.never]\n"*" = { action = "back" }\n'
    )
    r = read_directory_file(write(tmp_path, BASE + text)).extensions["3002"].routing
    assert r is not None and sorted(r.submenus) == ["a", "b", "never"]


def test_adjacent_ranges_do_not_overlap(tmp_path: Path) -> None:
    text = _hours('mon = ["09:00-12:00", "12:00-17:00", "22:00-24:00"]', 'tue = ["00:00-02:00"]')
    r = read_directory_file(write(tmp_path, BASE + text)).extensions["2002"].routing
    assert r is not None and len(r.hours.days[0]) == 3


def test_a_whole_day_written_two_ways(tmp_path: Path) -> None:
    text = _hours('mon = ["00:00-24:00"]')
    d = read_directory_file(write(tmp_path, BASE + text))
    assert directory_document(d)["call_queue"][1]["hours"] == {"mon": ["00:00-24:00"]}
    round_trips(d)


def test_menu_options_are_exported_in_key_order(tmp_path: Path) -> None:
    text = _menu('"#" = { action = "repeat" }', '"0" = { action = "operator" }') + (
        '"1" = { action = "dial_by_extension" }\n'
    )
    d = read_directory_file(write(tmp_path, BASE + text))
    assert list(directory_document(d)["auto_receptionist"][0]["menu"]) == ["1", "0", "#"]


def test_routing_built_in_code_round_trips(example: Directory) -> None:
    """What other code builds (tests, tools) is written and read back the same."""
    routing = Routing(
        hours=WeeklyHours(days={6: (TimeRange(time(22, 15), time(6, 45)),)}),
        menu=Menu(
            options=MappingProxyType({"5": Transfer("+15551230000"), "*": Back()}),
            fallback=Voicemail(operator=False),
        ),
    )
    ar = dataclasses.replace(example.extensions["3001"], routing=routing)
    changed = dataclasses.replace(example, extensions={**example.extensions, "3001": ar})
    round_trips(changed)
