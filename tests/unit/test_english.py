"""The English sayer's phone numbers and relative times (sound names, no files needed)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from sipvm.prompts import EnglishSayer

SAY = EnglishSayer()


def words(names: list[str]) -> str:
    return " ".join(name.split("/")[1] for name in names)


@pytest.mark.parametrize(
    ("number", "said"),
    [
        ("5550100", "5 5 5 0 1 hundred"),  # 555-0100: "five five five, zero one hundred"
        ("15550100", "1 5 5 5 0 1 hundred"),  # 1-555-0100
        ("2125550100", "2 1 2 5 5 5 0 1 hundred"),  # 212-555-0100
        ("5551200", "5 5 5 12 hundred"),  # "twelve hundred"
        ("5555000", "5 5 5 5 thousand"),  # "five thousand"
        ("5554567", "5 5 5 4 5 6 7"),  # other groups key by key
        ("5550000", "5 5 5 0 0 0 0"),
        ("1002", "1 0 0 2"),  # an extension: key by key
        ("+15550100", "plus 1 5 5 5 0 1 0 0"),  # not only digits: key by key
    ],
)
def test_phone_numbers_are_said_in_groups(number: str, said: str) -> None:
    assert words(SAY.phone(number)) == said
    assert set(SAY.phone(number)) <= SAY.sounds


def test_counts_are_said_as_numbers() -> None:
    assert words(SAY.number(12)) == "12"  # "twelve", one sound
    assert words(SAY.number(45)) == "40 5"


ZONE = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 4, 16, 0, tzinfo=ZONE)  # a Friday afternoon


@pytest.mark.parametrize(
    ("when", "said"),
    [
        (datetime(2026, 12, 4, 11, 45, tzinfo=ZONE), "today at 11 40 5 a-m"),
        (datetime(2026, 12, 3, 18, 5, tzinfo=ZONE), "yesterday at 6 oh 5 p-m"),
        (datetime(2026, 11, 30, 9, 0, tzinfo=ZONE), "day-1 at 9 oclock a-m"),  # Monday
        (datetime(2026, 11, 20, 9, 0, tzinfo=ZONE), "mon-10 h-20 at 9 oclock a-m"),
        (
            datetime(2025, 11, 20, 9, 0, tzinfo=ZONE),
            "mon-10 h-20 2 thousand 20 5 at 9 oclock a-m",
        ),
    ],
)
def test_times_are_relative_to_now_in_the_sites_zone(when: datetime, said: str) -> None:
    assert words(SAY.datetime(when, NOW)) == said


def test_a_phone_number_value_is_said_in_groups_a_plain_string_key_by_key() -> None:
    from sipvm.domain.caller_id import PhoneNumber
    from sipvm.prompts import DEFAULT_SOUNDS_DIR, default_extra_dir, default_manifest, load_prompts

    prompts = load_prompts(default_manifest(), DEFAULT_SOUNDS_DIR, default_extra_dir())
    grouped = [p.stem for p in prompts.get("menu.from", caller=PhoneNumber("5550100"))]
    spelled = [p.stem for p in prompts.get("menu.from", caller="5550100")]
    assert grouped[-2:] == ["1", "hundred"]
    assert spelled[-4:] == ["0", "1", "0", "0"]
