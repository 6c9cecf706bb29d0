"""Business hours, closed hours and holidays (pure): which period a moment falls in.

Times are wall-clock times in the site's zone (zoneinfo): on a spring-forward day a range
that does not exist on the clock is never open; on a fall-back day the repeated hour is open
twice if it is in a range. A range whose end is not after its start runs over midnight, and
its spill-over belongs to the day it started on. An override beats holidays and hours.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sipvm.domain.routing import Holiday, Override, Period, Routing, TimeRange, WeeklyHours

_RANGE = re.compile(r"(\d{2}):(\d{2})-(\d{2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SEARCH_DAYS = 8


def parse_time_range(text: str) -> TimeRange:
    """ "09:00-17:00" → TimeRange; "24:00" may end a range (midnight). ValueError explains."""
    match = _RANGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'"{text}" is not a time range: write it as "09:00-17:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(
            f'"{text}" is not a time of day: hours 00-23 (24:00 only as an end), minutes 00-59'
        )
    start, end = time(h1, m1), time(0) if h2 == 24 else time(h2, m2)
    if start == end and not (h1 == 0 and m1 == 0 and h2 == 24):
        raise ValueError(f'"{text}" starts and ends at the same time: give a real range')
    return TimeRange(start, end)


def parse_holiday_dates(text: str) -> tuple[date, date]:
    """ "2026-12-25" or "2026-12-31..2027-01-01" (inclusive) → (first, last)."""
    parts = text.strip().split("..")
    if len(parts) > 2 or not all(_DATE.fullmatch(p) for p in parts):
        raise ValueError(
            f'"{text}" is not a date or a date range: write "2026-12-25" or '
            '"2026-12-24..2026-12-26"'
        )
    try:
        first, last = date.fromisoformat(parts[0]), date.fromisoformat(parts[-1])
    except ValueError:
        raise ValueError(f'"{text}" names a day that does not exist') from None
    if last < first:
        raise ValueError(f'"{text}" ends before it starts: put the earlier date first')
    return first, last


def format_time_range(r: TimeRange) -> str:
    """The directory file's form of a range ("24:00" for a midnight end)."""
    end = "24:00" if r.end == time(0) else r.end.strftime("%H:%M")
    return f"{r.start.strftime('%H:%M')}-{end}"


def _covers(r: TimeRange, t: time, *, spill: bool) -> bool:
    """Whether ``t`` is in ``r`` on its own day (``spill``: on the day after it started)."""
    if spill:
        return r.over_midnight and r.end != time(0) and t < r.end
    if r.end == time(0) or r.over_midnight:
        return t >= r.start
    return r.start <= t < r.end


def is_open(hours: WeeklyHours, local: datetime) -> bool:
    """Whether a site-local moment is inside business hours."""
    if hours.always_open:
        return True
    day, t = local.weekday(), local.time().replace(tzinfo=None)
    if any(_covers(r, t, spill=False) for r in hours.days.get(day, ())):
        return True
    return any(_covers(r, t, spill=True) for r in hours.days.get((day - 1) % 7, ()))


def holiday_on(holidays: Sequence[Holiday], local_date: date) -> Holiday | None:
    """The first holiday that includes ``local_date``."""
    for holiday in holidays:
        if any(first <= local_date <= last for first, last in holiday.ranges):
            return holiday
    return None


def period_at(
    routing: Routing, now: datetime, zone: ZoneInfo, override: Override = Override.AUTO
) -> tuple[Period, Holiday | None]:
    """The period of an aware moment ``now`` for an entry whose site is in ``zone``."""
    if override is Override.OPEN:
        return Period.BUSINESS, None
    if override is Override.CLOSED:
        return Period.CLOSED, None
    local = now.astimezone(zone)
    holiday = holiday_on(routing.holidays, local.date())
    if holiday is not None:
        return Period.HOLIDAY, holiday
    return (Period.BUSINESS if is_open(routing.hours, local) else Period.CLOSED), None


def next_change(routing: Routing, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The next moment (UTC) the scheduled period changes, within 8 days; None if never."""
    start = period_at(routing, now, zone)
    local = now.astimezone(zone)
    candidates: set[datetime] = set()
    for offset in range(_SEARCH_DAYS + 1):
        day = local.date() + timedelta(days=offset)
        candidates.add(datetime.combine(day, time(0), zone))
        for ranges in routing.hours.days.values():
            for r in ranges:
                for t in (r.start, r.end):
                    candidates.add(datetime.combine(day, t, zone))
    for moment in sorted(c for c in candidates if c > local):
        if period_at(routing, moment, zone)[0] != start[0] or period_at(
            routing, moment, zone
        )[1] is not start[1]:
            return moment.astimezone(UTC)
    return None
