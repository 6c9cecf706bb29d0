"""Which period a moment falls in: hours per weekday, over midnight, DST, holidays, overrides."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sipvm.domain.routing import Holiday, Override, Period, Routing, TimeRange, WeeklyHours
from sipvm.domain.schedule import (
    format_time_range,
    is_open,
    next_change,
    parse_holiday_dates,
    parse_time_range,
    period_at,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def hours(**days: list[str]) -> WeeklyHours:
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return WeeklyHours(
        days=MappingProxyType(
            {names.index(d): tuple(parse_time_range(r) for r in rs) for d, rs in days.items()}
        )
    )


OFFICE = hours(mon=["09:00-12:00", "13:00-17:30"], tue=["09:00-17:30"])
NIGHT = hours(mon=["22:00-02:00"])
EARLY = hours(sun=["01:00-03:00"])  # around the DST changes (both on Sundays)


def at(zone: ZoneInfo, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone, fold=fold)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("week", "moment", "expected"),
    [
        (OFFICE, at(NY, 2026, 11, 30, 8, 59), False),  # Monday before opening
        (OFFICE, at(NY, 2026, 11, 30, 9, 0), True),  # start is inclusive
        (OFFICE, at(NY, 2026, 11, 30, 12, 0), False),  # lunch: end is exclusive
        (OFFICE, at(NY, 2026, 11, 30, 12, 59), False),
        (OFFICE, at(NY, 2026, 11, 30, 13, 0), True),
        (OFFICE, at(NY, 2026, 11, 30, 17, 29), True),
        (OFFICE, at(NY, 2026, 11, 30, 17, 30), False),
        (OFFICE, at(NY, 2026, 12, 2, 10, 0), False),  # Wednesday: not listed
        (NIGHT, at(NY, 2026, 11, 30, 23, 0), True),  # Monday night
        (NIGHT, at(NY, 2026, 12, 1, 1, 59), True),  # spills into Tuesday
        (NIGHT, at(NY, 2026, 12, 1, 2, 0), False),
        (NIGHT, at(NY, 2026, 11, 30, 1, 0), False),  # Sunday's night is not Monday's
        (NIGHT, at(NY, 2026, 11, 29, 23, 0), False),  # Sunday 23:00
        (hours(mon=["00:00-24:00"]), at(NY, 2026, 11, 30, 0, 0), True),
        (hours(mon=["00:00-24:00"]), at(NY, 2026, 11, 30, 23, 59), True),
        (hours(mon=["00:00-24:00"]), at(NY, 2026, 12, 1, 0, 0), False),
        (hours(mon=["17:00-24:00"]), at(NY, 2026, 11, 30, 23, 59), True),
        (hours(mon=["17:00-24:00"]), at(NY, 2026, 12, 1, 0, 30), False),
        (WeeklyHours(always_open=True), at(NY, 2026, 12, 2, 3, 0), True),
        (WeeklyHours(), at(NY, 2026, 12, 2, 3, 0), False),
        # DST, New York: 2026-03-08 02:00 jumps to 03:00; 2026-11-01 01:00-02:00 happens twice.
        (EARLY, at(NY, 2026, 3, 8, 1, 30), True),
        (EARLY, at(NY, 2026, 3, 8, 3, 30), False),
        (EARLY, at(NY, 2026, 11, 1, 1, 30), True),
        (EARLY, at(NY, 2026, 11, 1, 1, 30, fold=1), True),  # the repeated hour, open again
    ],
)
def test_is_open(week: WeeklyHours, moment: datetime, expected: bool) -> None:
    assert is_open(week, moment) is expected


def test_utc_moments_are_judged_on_the_sites_clock() -> None:
    routing = Routing(hours=OFFICE)
    # Winter: New York is UTC-5, so 09:00 there is 14:00Z.
    before = period_at(routing, datetime(2026, 11, 30, 13, 59, tzinfo=UTC), NY)
    opening = period_at(routing, datetime(2026, 11, 30, 14, 0, tzinfo=UTC), NY)
    assert (before[0], opening[0]) == (Period.CLOSED, Period.BUSINESS)
    # Summer: UTC-4, so 09:00 is 13:00Z; the same UTC instant in London is afternoon.
    summer = datetime(2026, 6, 1, 13, 0, tzinfo=UTC)  # a Monday
    assert period_at(routing, summer, NY)[0] is Period.BUSINESS
    assert period_at(routing, summer, LONDON)[0] is Period.BUSINESS  # 14:00 BST
    assert period_at(routing, datetime(2026, 6, 1, 17, 0, tzinfo=UTC), LONDON)[0] is (
        Period.CLOSED  # 18:00 BST
    )


CHRISTMAS = Holiday("Christmas", (parse_holiday_dates("2026-12-24..2026-12-26"),))
NEW_YEAR = Holiday("New year", (parse_holiday_dates("2026-12-31..2027-01-01"),))
HOLIDAYS = Routing(hours=OFFICE, holidays=(CHRISTMAS, NEW_YEAR))


@pytest.mark.parametrize(
    ("utc", "override", "expected"),
    [
        (datetime(2026, 12, 24, 15, 0, tzinfo=UTC), Override.AUTO, (Period.HOLIDAY, CHRISTMAS)),
        (datetime(2026, 12, 27, 4, 59, tzinfo=UTC), Override.AUTO, (Period.HOLIDAY, CHRISTMAS)),
        (datetime(2026, 12, 27, 5, 0, tzinfo=UTC), Override.AUTO, (Period.CLOSED, None)),
        (datetime(2027, 1, 1, 12, 0, tzinfo=UTC), Override.AUTO, (Period.HOLIDAY, NEW_YEAR)),
        (datetime(2026, 12, 29, 15, 0, tzinfo=UTC), Override.AUTO, (Period.BUSINESS, None)),
        (datetime(2026, 12, 24, 15, 0, tzinfo=UTC), Override.OPEN, (Period.BUSINESS, None)),
        (datetime(2026, 12, 29, 15, 0, tzinfo=UTC), Override.CLOSED, (Period.CLOSED, None)),
    ],
    ids=[
        "christmas-eve",
        "last-minute-of-the-26th-local",
        "after-the-holiday-local",
        "range-over-the-year-end",
        "ordinary-tuesday",
        "forced-open-beats-holiday",
        "forced-closed-in-business-hours",
    ],
)
def test_holidays_and_overrides(
    utc: datetime, override: Override, expected: tuple[Period, Holiday | None]
) -> None:
    assert period_at(HOLIDAYS, utc, NY, override) == expected


def test_next_change() -> None:
    routing = Routing(hours=OFFICE)
    saturday = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
    assert next_change(routing, saturday, NY) == datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    lunch = datetime(2026, 11, 30, 17, 30, tzinfo=UTC)  # 12:30 NY
    assert next_change(routing, lunch, NY) == datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    assert next_change(Routing(), saturday, NY) is None  # always open


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9-17", '"9-17" is not a time range: write it as "09:00-17:00"'),
        ("09:00-17:60", "minutes 00-59"),
        ("24:00-01:00", "24:00 only as an end"),
        ("09:00-09:00", "starts and ends at the same time"),
        ("09:00 to 17:00", "is not a time range"),
    ],
)
def test_bad_time_ranges_say_what_to_write(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")) as info:
        parse_time_range(text)
    assert text in str(info.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("25/12/2026", "is not a date or a date range"),
        ("2026-02-30", "does not exist"),
        ("2026-12-26..2026-12-24", "ends before it starts"),
        ("2026-12-24..2026-12-25..2026-12-26", "is not a date or a date range"),
    ],
)
def test_bad_holiday_dates_say_what_to_write(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_holiday_dates(text)


def test_ranges_format_back_as_written() -> None:
    for text in ("09:00-17:30", "22:00-02:00", "17:00-24:00", "00:00-24:00"):
        assert format_time_range(parse_time_range(text)) == text


def _reference_open(week: WeeklyHours, day: int, minute: int) -> bool:
    """Minute by minute: each range marks its minutes, spilling into the next day."""
    marked: set[tuple[int, int]] = set()
    for d, ranges in week.days.items():
        for r in ranges:
            start = r.start.hour * 60 + r.start.minute
            end = r.end.hour * 60 + r.end.minute
            if end <= start:
                end += 24 * 60
            for m in range(start, end):
                marked.add(((d + m // (24 * 60)) % 7, m % (24 * 60)))
    return (day, minute) in marked


_MINUTE = st.integers(0, 24 * 60 - 1)


@st.composite
def _weeks(draw: st.DrawFn) -> WeeklyHours:
    days = {}
    for d in draw(st.sets(st.integers(0, 6), max_size=3)):
        a, b = draw(_MINUTE), draw(_MINUTE)
        if a == b:
            continue
        days[d] = (TimeRange(time(a // 60, a % 60), time(b // 60, b % 60)),)
    return WeeklyHours(days=MappingProxyType(days))


@given(_weeks(), st.integers(0, 6), _MINUTE)
def test_is_open_matches_a_minute_by_minute_reference(
    week: WeeklyHours, day: int, minute: int
) -> None:
    monday = datetime(2026, 11, 30, tzinfo=UTC)
    moment = monday + timedelta(days=day, minutes=minute)
    assert moment.weekday() == day
    assert is_open(week, moment) is _reference_open(week, day, minute)


def test_a_holiday_is_a_whole_local_day() -> None:
    assert parse_holiday_dates("2026-12-25") == (date(2026, 12, 25), date(2026, 12, 25))
