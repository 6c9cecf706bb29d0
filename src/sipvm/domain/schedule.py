"""Business hours, closed hours and holidays (pure): which period a moment falls in.

Times are wall-clock times in the site's zone (zoneinfo): on a spring-forward day a range
that does not exist on the clock is never open; on a fall-back day the repeated hour is open
twice if it is in a range. A range whose end is not after its start runs over midnight, and
its spill-over belongs to the day it started on. An override beats holidays and hours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sipvm.domain.routing import Holiday, Override, Period, Routing, TimeRange, WeeklyHours

# ASCII only: \d would also take other scripts' digits, which no directory file means.
_RANGE = re.compile(r"([0-9]{2}):([0-9]{2})-([0-9]{2}):([0-9]{2})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SEARCH = timedelta(days=8)
# Zones change their offset at most a few times a year, never twice within this step.
_OFFSET_SCAN_STEP = timedelta(hours=6)


def parse_time_range(text: str) -> TimeRange:
    """ "09:00-17:00" → TimeRange; "24:00" may end a range (midnight). ValueError explains."""
    match = _RANGE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f'"{text}" is not a time range: write it as "09:00-17:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise ValueError(
            f'"{text}" is not a time of day: hours 00-23 (24:00 only as an end), minutes 00-59, '
            'as in "09:00-17:00" or "17:00-24:00"'
        )
    start, end = time(h1, m1), time(0) if h2 == 24 else time(h2, m2)
    if start == end and not (h1 == 0 and m1 == 0 and h2 == 24):
        raise ValueError(
            f'"{text}" starts and ends at the same time: write "00:00-24:00" for the whole '
            "day, or leave the day out to close it"
        )
    return TimeRange(start, end)


def parse_holiday_dates(text: str) -> tuple[date, date]:
    """ "2026-12-25" or "2026-12-31..2027-01-01" (inclusive) → (first, last). ValueError
    explains."""
    parts = text.strip().split("..")
    if len(parts) > 2 or not all(_DATE.fullmatch(p) for p in parts):
        raise ValueError(
            f'"{text}" is not a date or a date range: write "2026-12-25" or '
            '"2026-12-24..2026-12-26"'
        )
    try:
        first, last = date.fromisoformat(parts[0]), date.fromisoformat(parts[-1])
    except ValueError:
        raise ValueError(
            f'"{text}" names a day that does not exist: check the month (01-12) and the day'
        ) from None
    if last < first:
        raise ValueError(
            f'"{text}" ends before it starts: put the earlier date first, as in '
            f'"{parts[-1]}..{parts[0]}"'
        )
    return first, last


def format_time_range(r: TimeRange) -> str:
    """The directory file's form of a range ("24:00" for a midnight end)."""
    end = "24:00" if r.end == time(0) else r.end.strftime("%H:%M")
    return f"{r.start.strftime('%H:%M')}-{end}"


def _covers(r: TimeRange, t: time, *, spill: bool) -> bool:
    """Whether ``t`` is in ``r`` on its own day (``spill``: on the day after it started)."""
    if spill:
        # A midnight end ("17:00-24:00", "00:00-24:00") stops exactly at the day's end.
        return r.over_midnight and r.end != time(0) and t < r.end
    if r.over_midnight:
        return t >= r.start
    return r.start <= t < r.end


def is_open(hours: WeeklyHours, local: datetime) -> bool:
    """Whether a moment, given on the site's wall clock, is inside business hours."""
    if hours.always_open:
        return True
    day, t = local.weekday(), local.time()  # naive; fold is ignored when times compare
    if any(_covers(r, t, spill=False) for r in hours.days.get(day, ())):
        return True
    return any(_covers(r, t, spill=True) for r in hours.days.get((day - 1) % 7, ()))


def holiday_on(holidays: Sequence[Holiday], local_date: date) -> Holiday | None:
    """The first holiday that includes ``local_date`` (a date of the site's calendar)."""
    for holiday in holidays:
        if any(first <= local_date <= last for first, last in holiday.ranges):
            return holiday
    return None


def period_at(
    routing: Routing, now: datetime, zone: ZoneInfo, override: Override = Override.AUTO
) -> tuple[Period, Holiday | None]:
    """The period of an aware moment ``now`` for an entry whose site is in ``zone``.

    An override beats everything; then a holiday on the site's date; then the hours."""
    _require_aware(now)
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
    """The next moment (UTC) the scheduled (AUTO) period or holiday changes, within 8 days
    of ``now``; None if it does not change in that time.

    The period only depends on the site's date and wall-clock time, so it can only change
    where the wall clock reaches a range's start or end or midnight, or where it jumps
    (a zone's offset change). Those instants are the candidates, tried in order."""
    now = _require_aware(now).astimezone(UTC)
    horizon = now + _SEARCH
    walls = {time(0)}
    if not routing.hours.always_open:
        walls |= {t for rs in routing.hours.days.values() for r in rs for t in (r.start, r.end)}
    candidates = set(_offset_changes(zone, now, horizon))
    first_day = now.astimezone(zone).date()
    for offset in range(_SEARCH.days + 2):  # +2: the horizon's local date may be a day on
        day = first_day + timedelta(days=offset)
        for wall in walls:
            # fold 1 is the repeated hour's second pass on a fall-back day; elsewhere the
            # same instant as fold 0. A wall time in a spring-forward gap maps to no real
            # crossing: the clock passes it at the offset change, already a candidate.
            for fold in (0, 1):
                local = datetime.combine(day, wall, zone).replace(fold=fold)
                candidates.add(local.astimezone(UTC))
    current = period_at(routing, now, zone)
    # Compared in UTC: aware datetimes sharing one tzinfo compare by wall clock, fold ignored.
    for moment in sorted(c for c in candidates if now < c <= horizon):
        if period_at(routing, moment, zone) != current:
            return moment
    return None


def _offset_changes(zone: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The instants (UTC, whole seconds) in (start, end] at which ``zone``'s offset changes."""
    found = []
    lo = start
    while lo < end:
        hi = min(lo + _OFFSET_SCAN_STEP, end)
        if hi.astimezone(zone).utcoffset() != lo.astimezone(zone).utcoffset():
            found.append(_first_second_with_offset_of(zone, lo, hi))
        lo = hi
    return found


def _first_second_with_offset_of(zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """The first whole second after ``lo`` that has ``hi``'s offset (one change between)."""
    target = hi.astimezone(zone).utcoffset()
    # Offsets change on whole seconds (tzdata has no finer), so bisect on epoch seconds.
    a, b = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    while b - a > 1:
        mid = (a + b) // 2
        if datetime.fromtimestamp(mid, zone).utcoffset() == target:
            b = mid
        else:
            a = mid
    return datetime.fromtimestamp(b, UTC)


def _require_aware(moment: datetime) -> datetime:
    # A naive moment would be read on the server's own clock, silently off by hours.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone: give an aware (UTC) moment")
    return moment
