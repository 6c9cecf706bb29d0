"""Schedules as the server sees them: periods from the hours in force, overrides set by an
admin from the CLI (a stored row the running server reads on every call)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType

import pytest

from sipvm.app import App
from sipvm.domain.routing import (
    Holiday,
    Override,
    Period,
    PlayMessage,
    Routing,
    Transfer,
    Voicemail,
    WeeklyHours,
)
from sipvm.domain.schedule import parse_time_range
from sipvm.errors import InvalidInputError, NotFoundError
from sipvm.testing.clock import FakeClock

from .test_cli import sipvm

NINE_TO_FIVE = WeeklyHours(
    days=MappingProxyType({d: (parse_time_range("09:00-17:00"),) for d in range(5)})
)
ROUTING = Routing(
    hours=NINE_TO_FIVE,
    holidays=(Holiday("Christmas", ((datetime(2026, 12, 25).date(),) * 2,), PlayMessage()),),
    business=Voicemail(),
    closed=Transfer("1101"),
)


@pytest.fixture
async def routed(app: App) -> App:
    directory = app.directory.current
    queue = replace(directory.extensions["2001"], routing=ROUTING)
    await app.directory.apply(
        replace(directory, extensions={**directory.extensions, "2001": queue}), source="test"
    )
    return app


@pytest.mark.parametrize(
    ("utc", "period", "route"),
    [
        (datetime(2026, 11, 30, 13, 59, tzinfo=UTC), Period.CLOSED, Transfer("1101")),  # 08:59
        (datetime(2026, 11, 30, 14, 0, tzinfo=UTC), Period.BUSINESS, Voicemail()),  # 09:00 NY
        (datetime(2026, 11, 28, 15, 0, tzinfo=UTC), Period.CLOSED, Transfer("1101")),  # Saturday
        (datetime(2026, 12, 25, 15, 0, tzinfo=UTC), Period.HOLIDAY, PlayMessage()),
    ],
    ids=["before-opening", "opening", "weekend", "christmas"],
)
async def test_period_and_route_follow_the_site_clock(
    routed: App, clock: FakeClock, utc: datetime, period: Period, route: object
) -> None:
    clock.now = utc
    now = await routed.routing.now("2001")
    assert (now.period, now.route) == (period, route)
    assert now.zone == "America/New_York"


async def test_overrides_beat_the_schedule_until_set_back(routed: App, clock: FakeClock) -> None:
    clock.now = datetime(2026, 12, 25, 15, 0, tzinfo=UTC)  # a holiday
    forced = await routed.routing.set_override("2001", Override.OPEN, by="1001")
    assert (forced.period, forced.override, forced.until) == (Period.BUSINESS, Override.OPEN, None)
    assert (await routed.routing.set_override("2001", Override.CLOSED)).period is Period.CLOSED
    back = await routed.routing.set_override("2001", Override.AUTO)
    assert back.period is Period.HOLIDAY and back.holiday is not None


async def test_hours_only_for_routed_entries(routed: App) -> None:
    with pytest.raises(InvalidInputError, match="1001 is a user"):
        await routed.routing.now("1001")
    with pytest.raises(NotFoundError):
        await routed.routing.set_override("9999", Override.OPEN)


def test_cli_show_and_set(tmp_path: Path, example_directory_file: Path) -> None:
    data = tmp_path / "data"
    assert sipvm(data, "directory", "apply", str(example_directory_file)).returncode == 0
    forced = sipvm(data, "hours", "set", "--inbox", "3001", "closed")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith("3001: closed (forced closed); route: ")
    shown = json.loads(sipvm(data, "hours", "show", "--inbox", "3001", "--json").stdout)
    assert (shown["period"], shown["override"], shown["until"]) == ("closed", "closed", None)
    assert shown["timezone"] == "America/New_York"
    assert sipvm(data, "hours", "set", "--inbox", "3001", "auto").returncode == 0
    auto = json.loads(sipvm(data, "hours", "show", "--inbox", "3001", "--json").stdout)
    assert auto["override"] == "auto" and auto["until"] is not None
    user = sipvm(data, "hours", "show", "--inbox", "1001")
    assert user.returncode == 2
    assert user.stderr == (
        "sipvm: 1001 is a user: only call queues, auto receptionists and shared line groups "
        "have hours\n"
    )
    missing = sipvm(data, "hours", "set", "--inbox", "9999", "open")
    assert missing.returncode == 4
