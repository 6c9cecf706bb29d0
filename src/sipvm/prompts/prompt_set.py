"""A language's prompts, ready to play: prompt id and values → the sound files, in order.

Placeholders are filled by :meth:`PromptSet.get` according to the value's type: ``str`` is
spelled key by key (a ``PhoneNumber`` is said in groups, as a phone number is read out),
``int`` is said as a number, a ``datetime`` as date and time (relative to the ``now`` keyword
when given), a ``Path`` is played as it is. ``None``, an empty string or no value at all plays
the prompt ``fallback.<placeholder>`` when the manifest has one.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sipvm.domain.caller_id import PhoneNumber
from sipvm.errors import PromptError

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
"""A manifest item that is a ``{placeholder}``, not a sound name."""
FALLBACK = "fallback."
"""Prefix of the prompt played for a placeholder given no value."""
NOW = "now"
"""A keyword of :meth:`PromptSet.get`, not a placeholder: the reference for "today"."""


class Sayer(Protocol):
    """How one language says keys, numbers and dates, as sound names."""

    @property
    def sounds(self) -> frozenset[str]:
        """Every sound name this sayer may return (checked at load time)."""
        ...

    def digits(self, keys: str) -> list[str]: ...

    def number(self, n: int) -> list[str]: ...

    def phone(self, number: str) -> list[str]: ...

    def datetime(self, when: _dt.datetime, now: _dt.datetime | None) -> list[str]: ...


@dataclass(frozen=True)
class PromptSet:
    """Every prompt of one language, each sound already found on disk (see :func:`load_prompts`)."""

    language: str
    prompts: Mapping[str, tuple[str, ...]]
    """Prompt id → its items: sound names and ``{placeholders}``."""
    files: Mapping[str, Path]
    """Sound name → the file that plays it (override, extra phrase or Asterisk sound)."""
    sayer: Sayer

    @property
    def prompt_ids(self) -> tuple[str, ...]:
        """Every prompt id, sorted."""
        return tuple(sorted(self.prompts))

    def get(self, prompt_id: str, **fill: object) -> list[Path]:
        """The files of ``prompt_id``, placeholders filled from ``fill`` (see the module doc).

        ``now`` (a datetime) is not a placeholder: datetimes are said relative to it.
        """
        items = self.prompts.get(prompt_id)
        if items is None:
            close = difflib.get_close_matches(prompt_id, self.prompts, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise PromptError(f"unknown prompt id {prompt_id!r} ({self.language}){hint}")
        out: list[Path] = []
        for item in items:
            match = PLACEHOLDER.fullmatch(item)
            if match is None:
                out.append(self.files[item])
            else:
                out += self._fill(prompt_id, match.group(1), fill)
        return out

    def _fill(self, prompt_id: str, key: str, fill: Mapping[str, object]) -> list[Path]:
        value = fill.get(key)
        if value is None or value == "":
            if FALLBACK + key in self.prompts:  # load_prompts rules out fallback loops
                return self.get(FALLBACK + key, **fill)
            raise PromptError(f"prompt {prompt_id!r} needs a value for {{{key}}}")
        if isinstance(value, Path):
            return [value]
        if isinstance(value, PhoneNumber):
            return self._paths(self.sayer.phone(value))
        if isinstance(value, str):
            return self.digits(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.number(value)
        if isinstance(value, _dt.datetime):
            now = fill.get(NOW)
            if now is not None and not isinstance(now, _dt.datetime):
                raise PromptError(f"now={now!r} must be a datetime")
            return self.datetime(value, now=now)
        raise PromptError(
            f"prompt {prompt_id!r}: cannot say {{{key}}}={value!r}; give a str (spelled key by "
            "key), an int (a number), a datetime or a Path (played as it is)"
        )

    def _paths(self, names: list[str]) -> list[Path]:
        return [self.files[name] for name in names]

    def digits(self, keys: str) -> list[Path]:
        """Spell phone keys one by one: "10#" → digits/1, digits/0, digits/pound."""
        return self._paths(self.sayer.digits(keys))

    def number(self, n: int) -> list[Path]:
        """Say 0 .. 999,999,999: 1234 → 1, thousand, 2, hundred, 30, 4."""
        return self._paths(self.sayer.number(n))

    def datetime(self, when: _dt.datetime, now: _dt.datetime | None = None) -> list[Path]:
        """Say a message's received time (see :meth:`EnglishSayer.datetime`)."""
        return self._paths(self.sayer.datetime(when, now))
