"""English numbers, dates and phone keys as Asterisk sound names (Asterisk's ``say.c``)."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from sipvm.errors import PromptError


@dataclass(frozen=True)
class EnglishSayer:
    """Asterisk's English rules (``say.c``): "one hundred five", "twenty first", "oh five"."""

    @property
    def sounds(self) -> frozenset[str]:
        numbers = [*range(21), *range(30, 100, 10)]
        names = [f"digits/{n}" for n in numbers]
        names += [f"digits/day-{d}" for d in range(7)] + [f"digits/mon-{m}" for m in range(12)]
        names += [f"digits/h-{n}" for n in [*range(1, 21), 30]]
        words = "hundred thousand million star pound minus oh oclock a-m p-m at today yesterday"
        names += [f"digits/{w}" for w in [*words.split(), "tomorrow"]]
        return frozenset([*names, "letters/plus"])

    def digits(self, keys: str) -> list[str]:
        """One sound per key: 0-9, ``*`` star, ``#`` pound, ``-`` minus, ``+`` plus."""
        special = {
            "*": "digits/star",
            "#": "digits/pound",
            "-": "digits/minus",
            "+": "letters/plus",
        }
        out = []
        for key in keys:
            if key in "0123456789":
                out.append(f"digits/{key}")
            elif key in special:
                out.append(special[key])
            else:
                raise PromptError(f"cannot spell {keys!r}: {key!r} is not a phone key")
        return out

    def phone(self, number: str) -> list[str]:
        """A phone number in groups, as people read one out: 5550100 → "five five five, zero
        one hundred"; 15550100 → "one, five five five, zero one hundred".

        Up to four keys (an extension) are spelled one by one. Longer numbers of digits are
        grouped from the end: the last four, then threes, the first group taking what is
        left (2125550100 → 212 555 0100). Groups are spelled key by key, except that a last
        group ending in "00" is said the way people say it: 0100 "zero one hundred", 1200
        "twelve hundred", 5000 "five thousand". Anything else (``+``, ``*``, ``#``) is
        spelled key by key as :meth:`digits` does.
        """
        if len(number) <= 4 or not number.isascii() or not number.isdigit():
            return self.digits(number)
        head, last = number[:-4], number[-4:]
        groups = [head[: len(head) % 3]] if len(head) % 3 else []
        groups += [head[i : i + 3] for i in range(len(head) % 3, len(head), 3)]
        out = [name for group in groups for name in self.digits(group)]
        return out + self._last_group(last)

    def _last_group(self, group: str) -> list[str]:
        """The last four keys of a phone number: round hundreds said as a number."""
        if group.endswith("000") and group[0] != "0":
            return self.number(int(group))  # 5000: "five thousand"
        if group.endswith("00") and group[:2] != "00":
            leading = ["digits/0"] if group[0] == "0" else []
            return leading + self.number(int(group[:2])) + ["digits/hundred"]
        return self.digits(group)

    def number(self, n: int) -> list[str]:
        """0 .. 999,999,999 the way Asterisk says it in English (no "and")."""
        if not 0 <= n <= 999_999_999:
            raise PromptError(f"cannot say the number {n}: only 0 to 999,999,999")
        if n == 0:
            return ["digits/0"]
        out: list[str] = []
        for size, word in ((1_000_000, "digits/million"), (1000, "digits/thousand")):
            if n >= size:
                out += [*self._below_thousand(n // size), word]
                n %= size
        return out + self._below_thousand(n)

    @staticmethod
    def _below_thousand(n: int) -> list[str]:
        out = []
        if n >= 100:
            out += [f"digits/{n // 100}", "digits/hundred"]
            n %= 100
        if n >= 20:
            out.append(f"digits/{n - n % 10}")
            n %= 10
        if n:
            out.append(f"digits/{n}")
        return out

    @staticmethod
    def _ordinal(day: int) -> list[str]:
        """1st .. 31st: "twenty" + "first" for 21 (the set has h-1..h-20 and the tens)."""
        if day <= 20 or day % 10 == 0:
            return [f"digits/h-{day}"]
        return [f"digits/{day - day % 10}", f"digits/h-{day % 10}"]

    def datetime(self, when: _dt.datetime, now: _dt.datetime | None) -> list[str]:
        """Asterisk's envelope: "Tuesday March fifth at 3 oh 7 P.M." in ``when``'s own zone.

        With ``now``: "today", "yesterday" or "tomorrow"; within the past week the weekday
        alone; otherwise the date without the weekday ("March fifth"), with the year when it
        is not ``now``'s year.
        """
        weekday = f"digits/day-{(when.weekday() + 1) % 7}"  # Asterisk's day-0 is Sunday
        full = [weekday, f"digits/mon-{when.month - 1}", *self._ordinal(when.day)]
        if now is None:
            day = full
        else:
            if (when.tzinfo is None) != (now.tzinfo is None):
                raise PromptError("cannot compare a naive datetime with an aware one")
            local_now = now.astimezone(when.tzinfo) if when.tzinfo is not None else now
            ago = (local_now.date() - when.date()).days
            relative = {0: ["digits/today"], 1: ["digits/yesterday"], -1: ["digits/tomorrow"]}
            if ago in relative:
                day = relative[ago]
            elif 2 <= ago <= 6:
                day = [weekday]
            else:
                year = self.number(when.year) if when.year != local_now.year else []
                day = full[1:] + year
        hour = f"digits/{when.hour % 12 or 12}"
        if when.minute == 0:
            minute = ["digits/oclock"]
        elif when.minute < 10:
            minute = ["digits/oh", f"digits/{when.minute}"]
        else:
            minute = self.number(when.minute)
        return [*day, "digits/at", hour, *minute, "digits/a-m" if when.hour < 12 else "digits/p-m"]
