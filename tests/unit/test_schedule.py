"""``domain.schedule``: parsing hours and holidays, and which period a moment falls in.

Moments are built in UTC where the conversion is the point (that is what the server has),
and on the site's clock where the weekly table is.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipvm.domain.routing import (
    WEEKDAYS,
    Holiday,
    Override,
    Period,
    Routing,
    TimeRange,
    WeeklyHours,
)
from sipvm.domain.schedule import (
    format_time_range,
    holiday_on,
    is_open,
    next_change,
    parse_holiday_dates,
    parse_time_range,
    period_at,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def week(**days: str) -> WeeklyHours:
    """``week(mon="09:00-12:00 13:00-17:30")``: ranges as the directory file writes them."""
    return WeeklyHours(
        days=MappingProxyType(
            {WEEKDAYS.index(d): tuple(map(parse_time_range, rs.split())) for d, rs in days.items()}
        )
    )


def ny(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, *, fold: int = 0) -> datetime:
    """A New York wall-clock moment."""
    return datetime(y, mo, d, h, mi, s, tzinfo=NY, fold=fold)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


OFFICE = week(mon="09:00-12:00 13:00-17:30", tue="09:00-17:30")
NIGHT = week(mon="22:00-02:00", tue="09:00-10:00")
WHOLE_MONDAY = week(mon="00:00-24:00")
EVENINGS = week(mon="17:00-24:00")
EARLY_SUNDAY = week(sun="01:00-02:00")
WEEKDAYS_9_TO_5 = week(**dict.fromkeys(WEEKDAYS[:5], "09:00-17:00"))
# 2026-11-30 is a Monday; New York is on EST (UTC-5) then.


@pytest.mark.parametrize(
    ("hours", "moment", "expected"),
    [
        pytest.param(OFFICE, ny(2026, 11, 30, 10, 0), True, id="weekday-inside"),
        pytest.param(OFFICE, ny(2026, 11, 30, 8, 59), False, id="weekday-before-opening"),
        pytest.param(OFFICE, ny(2026, 11, 30, 9, 0), True, id="start-is-inclusive"),
        pytest.param(OFFICE, ny(2026, 11, 30, 17, 29, 59), True, id="last-second"),
        pytest.param(OFFICE, ny(2026, 11, 30, 17, 30), False, id="end-is-exclusive"),
        pytest.param(OFFICE, ny(2026, 11, 30, 12, 0), False, id="lunch-starts"),
        pytest.param(OFFICE, ny(2026, 11, 30, 12, 59), False, id="lunch"),
        pytest.param(OFFICE, ny(2026, 11, 30, 13, 0), True, id="after-lunch"),
        pytest.param(OFFICE, ny(2026, 12, 1, 12, 30), True, id="tuesday-has-no-lunch"),
        pytest.param(OFFICE, ny(2026, 12, 2, 10, 0), False, id="day-absent"),
        pytest.param(NIGHT, ny(2026, 11, 30, 22, 0), True, id="night-starts-monday"),
        pytest.param(NIGHT, ny(2026, 11, 30, 23, 0), True, id="night-monday-23"),
        pytest.param(NIGHT, ny(2026, 12, 1, 0, 0), True, id="night-tuesday-midnight"),
        pytest.param(NIGHT, ny(2026, 12, 1, 1, 0), True, id="night-spills-into-tuesday"),
        pytest.param(NIGHT, ny(2026, 12, 1, 2, 0), False, id="night-ends-tuesday-02"),
        pytest.param(NIGHT, ny(2026, 12, 1, 9, 30), True, id="tuesdays-own-range"),
        pytest.param(NIGHT, ny(2026, 12, 1, 22, 30), False, id="tuesday-night-is-not-mondays"),
        pytest.param(NIGHT, ny(2026, 11, 29, 23, 0), False, id="sunday-23"),
        pytest.param(NIGHT, ny(2026, 11, 30, 1, 0), False, id="monday-01-no-sunday-night"),
        pytest.param(WHOLE_MONDAY, ny(2026, 11, 30, 0, 0), True, id="whole-day-midnight"),
        pytest.param(WHOLE_MONDAY, ny(2026, 11, 30, 23, 59, 59), True, id="whole-day-last"),
        pytest.param(WHOLE_MONDAY, ny(2026, 12, 1, 0, 0), False, id="whole-day-no-spill"),
        pytest.param(EVENINGS, ny(2026, 11, 30, 23, 59), True, id="until-24"),
        pytest.param(EVENINGS, ny(2026, 12, 1, 0, 0), False, id="until-24-no-spill"),
        pytest.param(EARLY_SUNDAY, ny(2026, 11, 1, 1, 30), True, id="repeated-hour-first"),
        pytest.param(EARLY_SUNDAY, ny(2026, 11, 1, 1, 30, fold=1), True, id="repeated-hour-again"),
        pytest.param(WeeklyHours(always_open=True), ny(2026, 12, 2, 3), True, id="always-open"),
        pytest.param(WeeklyHours(), ny(2026, 11, 30, 10, 0), False, id="no-hours-closed"),
    ],
)
def test_is_open(hours: WeeklyHours, moment: datetime, expected: bool) -> None:
    assert is_open(hours, moment) is expected


# New York: 2026-03-08 (Sunday) 02:00 EST jumps to 03:00 EDT (07:00Z);
# 2026-11-01 (Sunday) 02:00 EDT falls back to 01:00 EST (06:00Z), so 01:00-01:59 happens twice.
SUNDAY_01_03 = Routing(hours=week(sun="01:00-03:00"))
SUNDAY_01_02 = Routing(hours=week(sun="01:00-02:00"))
OFFICE_ROUTING = Routing(hours=OFFICE)


@pytest.mark.parametrize(
    ("routing", "now", "zone", "expected"),
    [
        pytest.param(OFFICE_ROUTING, utc(2026, 11, 30, 13, 59), NY, Period.CLOSED, id="ny-13:59Z"),
        pytest.param(OFFICE_ROUTING, utc(2026, 11, 30, 14, 0), NY, Period.BUSINESS, id="ny-14:00Z"),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 6, 1, 12, 59), NY, Period.CLOSED, id="ny-edt-12:59Z"
        ),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 6, 1, 13, 0), NY, Period.BUSINESS, id="ny-edt-13:00Z"
        ),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 12, 1, 4, 0), NY, Period.CLOSED, id="ny-date-behind"
        ),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 11, 30, 9, 0), LONDON, Period.BUSINESS, id="gmt-09Z"
        ),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 6, 1, 7, 59), LONDON, Period.CLOSED, id="bst-07:59Z"
        ),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 6, 1, 8, 0), LONDON, Period.BUSINESS, id="bst-08:00Z"
        ),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 6, 1, 16, 29), LONDON, Period.BUSINESS, id="bst-close"
        ),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 6, 1, 16, 30), LONDON, Period.CLOSED, id="bst-closed"
        ),
        pytest.param(SUNDAY_01_03, utc(2026, 3, 8, 6, 59), NY, Period.BUSINESS, id="spring-01:59"),
        pytest.param(SUNDAY_01_03, utc(2026, 3, 8, 7, 0), NY, Period.CLOSED, id="spring-03:00"),
        pytest.param(SUNDAY_01_02, utc(2026, 11, 1, 4, 59), NY, Period.CLOSED, id="fall-00:59"),
        pytest.param(
            SUNDAY_01_02, utc(2026, 11, 1, 5, 30), NY, Period.BUSINESS, id="fall-01:30-edt"
        ),
        pytest.param(
            SUNDAY_01_02, utc(2026, 11, 1, 6, 30), NY, Period.BUSINESS, id="fall-01:30-est"
        ),
        pytest.param(SUNDAY_01_02, utc(2026, 11, 1, 7, 0), NY, Period.CLOSED, id="fall-02:00-est"),
    ],
)
def test_utc_moments_are_judged_on_the_sites_wall_clock(
    routing: Routing, now: datetime, zone: ZoneInfo, expected: Period
) -> None:
    assert period_at(routing, now, zone) == (expected, None)


def _open_minutes(routing: Routing, day: date, zone: ZoneInfo) -> int:
    """How many real minutes of the local ``day`` are business hours."""
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    minutes = int((end - start) / timedelta(minutes=1))
    return sum(
        period_at(routing, start + timedelta(minutes=m), zone)[0] is Period.BUSINESS
        for m in range(minutes)
    )


@pytest.mark.parametrize(
    ("text", "day", "minutes"),
    [
        pytest.param("02:00-03:00", date(2026, 3, 8), 0, id="spring-gap-never-open"),
        pytest.param("01:00-03:00", date(2026, 3, 8), 60, id="spring-range-loses-an-hour"),
        pytest.param("02:30-04:00", date(2026, 3, 8), 60, id="spring-opens-at-the-jump"),
        pytest.param("01:00-02:00", date(2026, 11, 1), 120, id="fall-hour-open-twice"),
        pytest.param("01:00-03:00", date(2026, 11, 1), 180, id="fall-range-gains-an-hour"),
        pytest.param("09:00-17:00", date(2026, 3, 8), 480, id="spring-day-hours-unchanged"),
    ],
)
def test_dst_days_in_new_york(text: str, day: date, minutes: int) -> None:
    assert _open_minutes(Routing(hours=week(sun=text)), day, NY) == minutes


CHRISTMAS = Holiday("Christmas", (parse_holiday_dates("2026-12-25"),))
NEW_YEAR = Holiday("New year", (parse_holiday_dates("2026-12-31..2027-01-01"),))
STOCKTAKE = Holiday("Stocktake", (parse_holiday_dates("2027-01-29..2027-02-01"),))
HOLIDAYS = Routing(hours=WEEKDAYS_9_TO_5, holidays=(CHRISTMAS, NEW_YEAR, STOCKTAKE))


@pytest.mark.parametrize(
    ("now", "override", "expected"),
    [
        pytest.param(
            utc(2026, 12, 25, 15), Override.AUTO, (Period.HOLIDAY, CHRISTMAS), id="single-date"
        ),
        pytest.param(
            utc(2026, 12, 25, 5), Override.AUTO, (Period.HOLIDAY, CHRISTMAS), id="local-midnight"
        ),
        pytest.param(
            utc(2026, 12, 25, 4, 59), Override.AUTO, (Period.CLOSED, None), id="day-before-local"
        ),
        pytest.param(
            utc(2026, 12, 24, 15), Override.AUTO, (Period.BUSINESS, None), id="christmas-eve"
        ),
        pytest.param(
            utc(2026, 12, 26, 4, 59), Override.AUTO, (Period.HOLIDAY, CHRISTMAS), id="last-minute"
        ),
        pytest.param(
            utc(2027, 1, 1, 15), Override.AUTO, (Period.HOLIDAY, NEW_YEAR), id="across-year-end"
        ),
        pytest.param(
            utc(2026, 12, 31, 3), Override.AUTO, (Period.CLOSED, None), id="year-end-not-yet"
        ),
        pytest.param(
            utc(2027, 2, 1, 15), Override.AUTO, (Period.HOLIDAY, STOCKTAKE), id="across-month-end"
        ),
        pytest.param(utc(2027, 2, 2, 15), Override.AUTO, (Period.BUSINESS, None), id="after-range"),
        pytest.param(
            utc(2026, 12, 25, 15), Override.OPEN, (Period.BUSINESS, None), id="open-beats-holiday"
        ),
        pytest.param(
            utc(2026, 12, 25, 15), Override.CLOSED, (Period.CLOSED, None), id="closed-on-holiday"
        ),
        pytest.param(
            utc(2026, 12, 29, 15), Override.CLOSED, (Period.CLOSED, None), id="closed-in-hours"
        ),
        pytest.param(
            utc(2026, 12, 27, 3), Override.OPEN, (Period.BUSINESS, None), id="open-at-night"
        ),
    ],
)
def test_holidays_and_overrides(
    now: datetime, override: Override, expected: tuple[Period, Holiday | None]
) -> None:
    assert period_at(HOLIDAYS, now, NY, override) == expected


def test_the_first_matching_holiday_wins() -> None:
    eve = Holiday("Christmas week", (parse_holiday_dates("2026-12-21..2026-12-27"),))
    assert holiday_on((CHRISTMAS, eve), date(2026, 12, 25)) is CHRISTMAS
    assert holiday_on((eve, CHRISTMAS), date(2026, 12, 25)) is eve
    assert holiday_on((CHRISTMAS, eve), date(2026, 12, 28)) is None


def test_a_moment_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        period_at(OFFICE_ROUTING, datetime(2026, 11, 30, 14), NY)
    with pytest.raises(ValueError, match="has no time zone"):
        next_change(OFFICE_ROUTING, datetime(2026, 11, 30, 14), NY)


@pytest.mark.parametrize(
    ("routing", "now", "expected"),
    [
        pytest.param(OFFICE_ROUTING, utc(2026, 11, 28, 15), utc(2026, 11, 30, 14), id="weekend"),
        pytest.param(
            OFFICE_ROUTING, utc(2026, 11, 30, 15), utc(2026, 11, 30, 17), id="until-lunch"
        ),
        pytest.param(OFFICE_ROUTING, utc(2026, 11, 30, 17, 30), utc(2026, 11, 30, 18), id="lunch"),
        pytest.param(OFFICE_ROUTING, utc(2026, 11, 30, 14), utc(2026, 11, 30, 17), id="at-opening"),
        pytest.param(Routing(hours=NIGHT), utc(2026, 12, 1, 4), utc(2026, 12, 1, 7), id="night"),
        pytest.param(Routing(), utc(2026, 11, 28, 15), None, id="always-open"),
        pytest.param(Routing(hours=WeeklyHours()), utc(2026, 11, 28, 15), None, id="never-open"),
        pytest.param(HOLIDAYS, utc(2026, 12, 24, 20), utc(2026, 12, 24, 22), id="closing-eve"),
        pytest.param(HOLIDAYS, utc(2026, 12, 24, 22), utc(2026, 12, 25, 5), id="holiday-starts"),
        pytest.param(HOLIDAYS, utc(2026, 12, 25, 15), utc(2026, 12, 26, 5), id="holiday-ends"),
        pytest.param(
            Routing(holidays=(CHRISTMAS,)),
            utc(2026, 12, 20),
            utc(2026, 12, 25, 5),
            id="open-till-holiday",
        ),
        pytest.param(
            Routing(holidays=(Holiday("Summer", ((date(2026, 7, 1), date(2026, 7, 31)),)),)),
            utc(2026, 7, 2),
            None,
            id="beyond-8-days",
        ),
        # DST: the change is where the wall clock reaches or jumps past a boundary.
        pytest.param(
            SUNDAY_01_02, utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 7), id="fall-open-twice"
        ),
        pytest.param(
            Routing(hours=week(sun="00:00-01:30")),
            utc(2026, 11, 1, 5, 40),
            utc(2026, 11, 1, 6),
            id="fall-reopens",
        ),
        pytest.param(
            Routing(hours=week(sun="01:00-01:30")),
            utc(2026, 11, 1, 6, 15),
            utc(2026, 11, 1, 6, 30),
            id="fall-est",
        ),
        pytest.param(
            Routing(hours=week(sun="02:30-04:00")),
            utc(2026, 3, 8, 6),
            utc(2026, 3, 8, 7),
            id="spring-jump-opens",
        ),
        pytest.param(
            Routing(hours=week(sun="01:00-02:30")),
            utc(2026, 3, 8, 6, 30),
            utc(2026, 3, 8, 7),
            id="spring-jump-closes",
        ),
    ],
)
def test_next_change(routing: Routing, now: datetime, expected: datetime | None) -> None:
    found = next_change(routing, now, NY)
    assert found == expected
    assert found is None or found.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("09:00-17:00", TimeRange(time(9), time(17)), id="day"),
        pytest.param("22:00-02:00", TimeRange(time(22), time(2)), id="over-midnight"),
        pytest.param("17:00-24:00", TimeRange(time(17), time(0)), id="until-midnight"),
        pytest.param("00:00-24:00", TimeRange(time(0), time(0)), id="whole-day"),
        pytest.param("23:59-00:00", TimeRange(time(23, 59), time(0)), id="00:00-as-an-end"),
        pytest.param(" 09:00-17:00 ", TimeRange(time(9), time(17)), id="spaces-around"),
    ],
)
def test_time_ranges(text: str, expected: TimeRange) -> None:
    assert parse_time_range(text) == expected


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        pytest.param("9-17", 'write it as "09:00-17:00"', id="bare-hours"),
        pytest.param("9:00-17:00", 'write it as "09:00-17:00"', id="one-digit-hour"),
        pytest.param("09:00 - 17:00", 'write it as "09:00-17:00"', id="spaces-inside"),
        pytest.param("09:00", 'write it as "09:00-17:00"', id="no-end"),
        pytest.param("", 'write it as "09:00-17:00"', id="empty"),
        pytest.param(
            "\u0660\u0669:\u0660\u0660-\u0661\u0667:\u0660\u0660",
            'write it as "09:00-17:00"',
            id="non-ascii-digits",
        ),
        pytest.param("09:00-17:60", "minutes 00-59", id="minute-60"),
        pytest.param("09:75-17:00", "minutes 00-59", id="minute-75"),
        pytest.param("25:00-26:00", "hours 00-23", id="hour-25"),
        pytest.param("24:00-01:00", "24:00 only as an end", id="24-as-a-start"),
        pytest.param("09:00-24:30", "24:00 only as an end", id="after-24"),
        pytest.param("09:00-09:00", '"00:00-24:00" for the whole day', id="empty-range"),
        pytest.param("00:00-00:00", '"00:00-24:00" for the whole day', id="00-00"),
    ],
)
def test_bad_time_ranges_name_the_input_and_the_fix(text: str, fix: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_time_range(text)
    assert f'"{text}"' in str(raised.value)
    assert fix in str(raised.value)


@pytest.mark.parametrize(
    "text", ["09:00-17:30", "22:00-02:00", "17:00-24:00", "00:00-24:00", "00:00-00:30"]
)
def test_ranges_format_back_as_written(text: str) -> None:
    assert format_time_range(parse_time_range(text)) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-12-25", (date(2026, 12, 25), date(2026, 12, 25)), id="one-day"),
        pytest.param("2026-12-31..2027-01-01", (date(2026, 12, 31), date(2027, 1, 1)), id="range"),
        pytest.param("2026-12-25..2026-12-25", (date(2026, 12, 25),) * 2, id="one-day-range"),
    ],
)
def test_holiday_dates(text: str, expected: tuple[date, date]) -> None:
    assert parse_holiday_dates(text) == expected


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        pytest.param("25/12/2026", 'write "2026-12-25"', id="day-first"),
        pytest.param("2026-2-3", 'write "2026-12-25"', id="one-digit-month"),
        pytest.param("2026-12-24..", 'write "2026-12-25"', id="open-range"),
        pytest.param("2026-12-24 - 2026-12-26", '"2026-12-24..2026-12-26"', id="dash-range"),
        pytest.param("2026-12-24..2026-12-25..2026-12-26", 'write "2026-12-25"', id="three"),
        pytest.param("", 'write "2026-12-25"', id="empty"),
        pytest.param("2026-02-30", "check the month (01-12) and the day", id="february-30"),
        pytest.param("2026-13-01", "check the month (01-12) and the day", id="month-13"),
        pytest.param(
            "2026-12-26..2026-12-24",
            'earlier date first, as in "2026-12-24..2026-12-26"',
            id="back",
        ),
    ],
)
def test_bad_holiday_dates_name_the_input_and_the_fix(text: str, fix: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_holiday_dates(text)
    assert f'"{text}"' in str(raised.value)
    assert fix in str(raised.value)


# Properties. Ranges are drawn at minute resolution, often in the small hours, where the
# DST changes are; moments are whole minutes within a few days of a New York change.
_DAY_MINUTES = 24 * 60
_MINUTE = st.one_of(st.integers(60, 3 * 60), st.integers(0, _DAY_MINUTES - 1))
_DST_CHANGES = (utc(2026, 3, 8, 7), utc(2026, 11, 1, 6))


def _at(minute: int) -> time:
    return time(minute // 60, minute % 60)


@st.composite
def _weeks(draw: st.DrawFn) -> WeeklyHours:
    days = {}
    # Sunday, the day New York changes, in about half the weeks.
    for day in draw(st.sets(st.integers(0, 6), max_size=3)) | draw(st.sets(st.just(6))):
        ranges = []
        for _ in range(draw(st.integers(1, 2))):
            start, end = draw(_MINUTE), draw(_MINUTE)
            if start != end or start == 0:  # 00:00-00:00 is how "00:00-24:00" is held
                ranges.append(TimeRange(_at(start), _at(end)))
        days[day] = tuple(ranges)
    return WeeklyHours(days=MappingProxyType(days))


_NEAR_A_DST_CHANGE = st.builds(
    lambda change, minutes: change + timedelta(minutes=minutes),
    st.sampled_from(_DST_CHANGES),
    st.one_of(st.integers(-3 * 60, 2 * 60), st.integers(-3 * _DAY_MINUTES, 3 * _DAY_MINUTES)),
)


def _reference_open(hours: WeeklyHours, weekday: int, minute: int) -> bool:
    """Each range marks the minutes of the week it covers, spilling into the next day."""
    for day, ranges in hours.days.items():
        for r in ranges:
            start = r.start.hour * 60 + r.start.minute
            end = r.end.hour * 60 + r.end.minute
            if end <= start:
                end += _DAY_MINUTES
            covered = day * _DAY_MINUTES + start, day * _DAY_MINUTES + end
            at = weekday * _DAY_MINUTES + minute
            if any(covered[0] <= t < covered[1] for t in (at, at + 7 * _DAY_MINUTES)):
                return True
    return False


@given(_weeks(), _NEAR_A_DST_CHANGE)
def test_is_open_matches_a_minute_by_minute_reference(hours: WeeklyHours, now: datetime) -> None:
    local = now.astimezone(NY)
    expected = _reference_open(hours, local.weekday(), local.hour * 60 + local.minute)
    assert is_open(hours, local) is expected


@settings(max_examples=60, deadline=None)
@given(_weeks(), st.booleans(), _NEAR_A_DST_CHANGE)
def test_next_change_matches_stepping_minute_by_minute(
    hours: WeeklyHours, with_holiday: bool, now: datetime
) -> None:
    # A holiday on the local date of the DST change nearest ``now``.
    change_day = min(_DST_CHANGES, key=lambda c: abs(c - now)).astimezone(NY).date()
    holidays = (Holiday("h", ((change_day, change_day),)),) if with_holiday else ()
    routing = Routing(hours=hours, holidays=holidays)
    window = 2 * _DAY_MINUTES  # stepping the whole 8 days would make this slow
    current = period_at(routing, now, NY)
    expected = next(
        (
            now + timedelta(minutes=m)
            for m in range(1, window + 1)
            if period_at(routing, now + timedelta(minutes=m), NY) != current
        ),
        None,
    )
    found = next_change(routing, now, NY)
    if expected is not None:
        assert found == expected
    else:
        assert found is None or found > now + timedelta(minutes=window)
