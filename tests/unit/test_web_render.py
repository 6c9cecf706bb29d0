"""How the portal's pages write times, lengths and members (sipvm.web.render)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sipvm.domain.model import Directory, Extension, Kind, Site
from sipvm.web.render import length_text, local_time, member_name, site_zone

NEW_YORK = ZoneInfo("America/New_York")


def test_a_time_is_written_in_the_sites_zone_without_this_years_year() -> None:
    moment = datetime(2026, 3, 3, 19, 5, tzinfo=UTC)  # 14:05 in New York (EST)
    assert local_time(moment, NEW_YORK, now=datetime(2026, 6, 1, tzinfo=UTC)) == "Tue 3 Mar, 14:05"
    assert local_time(moment, NEW_YORK, now=datetime(2027, 1, 2, tzinfo=UTC)) == (
        "Tue 3 Mar 2026, 14:05"
    )
    assert local_time(moment, ZoneInfo("Europe/London")) == "Tue 3 Mar 2026, 19:05"


def test_the_year_is_the_one_in_the_sites_zone() -> None:
    # 03:00 UTC on New Year's Day is still the old year in New York
    moment = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)
    assert local_time(moment, NEW_YORK, now=moment) == "Thu 31 Dec, 22:00"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0:00"), (7.4, "0:07"), (59.6, "1:00"), (155, "2:35"), (3600, "60:00")],
)
def test_lengths_are_minutes_and_seconds(seconds: float, text: str) -> None:
    assert length_text(seconds) == text


def _directory() -> Directory:
    carol = Extension(ext="1003", kind=Kind.USER, name="Carol White", site="HQ")
    lobby = Extension(ext="1900", kind=Kind.COMMON_AREA, name="Lobby phone", site="Nowhere")
    return Directory(
        sites={"HQ": Site(name="HQ", timezone="America/New_York")},
        extensions={"1003": carol, "1900": lobby},
    )


def test_members_are_named_with_their_extension() -> None:
    directory = _directory()
    assert member_name(directory, "1003") == "Carol White (1003)"
    assert member_name(directory, "1099") == "1099"  # left the directory since
    assert member_name(directory, None) == "someone"


def test_an_inbox_is_in_its_sites_zone_or_utc() -> None:
    directory = _directory()
    assert site_zone(directory, directory.extensions["1003"]) == NEW_YORK
    assert site_zone(directory, directory.extensions["1900"]) == ZoneInfo("UTC")
