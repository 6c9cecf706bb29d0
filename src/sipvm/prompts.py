"""Prompts: a prompt id from the manifest → the sound files to play, all checked at startup.

The manifest (``prompts/manifest.toml``) maps each prompt id, per language, to a list of sound
names and ``{placeholders}``. :func:`load_prompts` finds every sound any prompt of the language
needs — and every sound its number and date sayer can use — and refuses to start with a
:class:`PromptError` that lists each missing or unusable file and how to fix it, so a missing
sound never turns into silence in a call.

A sound name is looked up, first match wins, as ``<name>.wav`` in:
1. the overrides folder (an admin's own recording of the same name),
2. ``<extra_dir>/<lang>/`` (our espeak-ng phrases, all named ``sipvm-*``),
3. ``<sounds_dir>/<lang>/`` (the Asterisk core sounds of the Debian package
   ``asterisk-core-sounds-<lang>-wav``).
Every file must be 8 kHz 16-bit mono PCM WAV: a pjmedia playlist plays one format only.

Placeholders are filled by :meth:`PromptSet.get` according to the value's type: ``str`` is
spelled key by key, ``int`` is said as a number, a ``datetime`` as date and time (relative to
the ``now`` keyword when given), a ``Path`` is played as it is. ``None``, an empty string or no
value at all plays the prompt ``fallback.<placeholder>`` when the manifest has one.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from sipvm.audio.wav import FORMAT_PCM, read_wav_info
from sipvm.errors import CorruptAudioError, StorageError

DEFAULT_SOUNDS_DIR = Path("/usr/share/asterisk/sounds")
"""Where the Debian ``asterisk-core-sounds-<lang>-wav`` packages install (``<lang>/`` below)."""

EXTRA_PREFIX = "sipvm-"
"""Names of our generated phrases start with this, so they never shadow an Asterisk sound."""

SAMPLE_RATE = 8000
SAMPLE_BITS = 16

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_SOUND_NAME = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
_PROMPT_ID = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_FALLBACK = "fallback."
_NOW = "now"  # a keyword of get(), not a placeholder: the reference for "today"/"yesterday"


class PromptError(StorageError):
    """A prompt cannot be played: a sound file is missing or unusable, or the id is unknown."""

    def __init__(self, message: str, problems: Sequence[str] = (), fix: str = "") -> None:
        self.problems = list(problems)
        listed = "".join(f"\n  - {p}" for p in self.problems)
        super().__init__(message + (":" if listed else "") + listed + fix)


class Sayer(Protocol):
    """How one language says keys, numbers and dates, as sound names."""

    @property
    def sounds(self) -> frozenset[str]:
        """Every sound name this sayer may return (checked at load time)."""
        ...

    def digits(self, keys: str) -> list[str]: ...

    def number(self, n: int) -> list[str]: ...

    def datetime(self, when: _dt.datetime, now: _dt.datetime | None) -> list[str]: ...


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
        alone; otherwise the full date, with the year when it is not ``now``'s year.
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
                day = full + (self.number(when.year) if when.year != local_now.year else [])
        hour = f"digits/{when.hour % 12 or 12}"
        if when.minute == 0:
            minute = ["digits/oclock"]
        elif when.minute < 10:
            minute = ["digits/oh", f"digits/{when.minute}"]
        else:
            minute = self.number(when.minute)
        return [*day, "digits/at", hour, *minute, "digits/a-m" if when.hour < 12 else "digits/p-m"]


# Languages whose numbers and dates we can say; the manifest may name others only once a
# sayer for them exists here.
_sayers: Mapping[str, Sayer] = MappingProxyType({"en": EnglishSayer()})


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
            match = _PLACEHOLDER.fullmatch(item)
            if match is None:
                out.append(self.files[item])
            else:
                out += self._fill(prompt_id, match.group(1), fill)
        return out

    def _fill(self, prompt_id: str, key: str, fill: Mapping[str, object]) -> list[Path]:
        value = fill.get(key)
        if value is None or value == "":
            if _FALLBACK + key in self.prompts:  # load_prompts rules out fallback loops
                return self.get(_FALLBACK + key, **fill)
            raise PromptError(f"prompt {prompt_id!r} needs a value for {{{key}}}")
        if isinstance(value, Path):
            return [value]
        if isinstance(value, str):
            return self.digits(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.number(value)
        if isinstance(value, _dt.datetime):
            now = fill.get(_NOW)
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


def load_prompts(
    manifest: Path,
    sounds_dir: Path,
    extra_dir: Path,
    language: str = "en",
    overrides_dir: Path | None = None,
) -> PromptSet:
    """Read the manifest's ``[language]`` table and find every sound it and its sayer need.

    Raises:
        PromptError: the manifest is unreadable or malformed, the language has no sayer, or
            sounds are missing or not 8 kHz 16-bit mono PCM WAV — every problem listed, with
            what to do about it.
    """
    sayer = _sayers.get(language)
    if sayer is None:
        raise PromptError(
            f"prompts in language {language!r} are not supported yet (sipvm can say numbers and "
            f"dates in: {', '.join(sorted(_sayers))}); set the directory's language to one of these"
        )
    prompts = _read_manifest(manifest, language)
    users: dict[str, list[str]] = {
        name: [f"the {language} number/date sayer"] for name in sayer.sounds
    }
    for prompt_id, items in prompts.items():
        for item in items:
            if _PLACEHOLDER.fullmatch(item) is None:
                users.setdefault(item, []).append(prompt_id)
    folders = [
        *([overrides_dir] if overrides_dir is not None else []),
        extra_dir / language,
        sounds_dir / language,
    ]
    files: dict[str, Path] = {}
    missing: list[str] = []
    problems: list[str] = []
    for name in sorted(users):
        found = next((f / f"{name}.wav" for f in folders if (f / f"{name}.wav").is_file()), None)
        used_by = ", ".join(users[name][:3]) + (", ..." if len(users[name]) > 3 else "")
        if found is None:
            missing.append(name)
            problems.append(f"missing sound {name!r} (used by {used_by})")
        elif (bad := _format_problem(found)) is not None:
            problems.append(f"unusable sound {found}: {bad} (used by {used_by})")
        else:
            files[name] = found
    if problems:
        raise PromptError(
            f"cannot load the {language} prompts of {manifest}: "
            f"{len(problems)} sound file{'s' if len(problems) != 1 else ''} missing or unusable "
            f"(looked in {', '.join(str(f) for f in folders)})",
            problems,
            _how_to_fix(missing, language, sounds_dir, extra_dir, overrides_dir),
        )
    return PromptSet(
        language=language,
        prompts=MappingProxyType(prompts),
        files=MappingProxyType(files),
        sayer=sayer,
    )


def _read_manifest(manifest: Path, language: str) -> dict[str, tuple[str, ...]]:
    try:
        doc = tomllib.loads(manifest.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PromptError(f"cannot read the prompt manifest {manifest}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PromptError(f"the prompt manifest {manifest} is not valid TOML: {exc}") from exc
    table = doc.get(language)
    if not isinstance(table, dict):
        raise PromptError(
            f"the prompt manifest {manifest} has no [{language}] table "
            f"(it has: {', '.join(sorted(doc)) or 'none'})"
        )
    prompts: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    for prompt_id, items in table.items():
        if not _PROMPT_ID.fullmatch(prompt_id):
            problems.append(f"{prompt_id!r}: ids are dotted lowercase words, e.g. 'menu.deleted'")
        elif not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
            problems.append(f"{prompt_id!r}: must be a non-empty list of sound names")
        else:
            prompts[prompt_id] = tuple(items)
            problems += [f"{prompt_id!r}: {p}" for p in _item_problems(items)]
    for prompt_id, items in prompts.items():
        if prompt_id.startswith(_FALLBACK):
            for item in items:
                match = _PLACEHOLDER.fullmatch(item)
                if match and _FALLBACK + match.group(1) in table:
                    problems.append(f"{prompt_id!r}: a fallback cannot use {item}, which has one")
    if problems:
        raise PromptError(f"the prompt manifest {manifest} [{language}] is invalid", problems)
    return prompts


def _item_problems(items: list[str]) -> list[str]:
    problems = []
    for item in items:
        match = _PLACEHOLDER.fullmatch(item)
        if match is not None and match.group(1) == _NOW:
            problems.append("{now} is reserved (the reference time for dates)")
        elif match is None and not _SOUND_NAME.fullmatch(item):
            problems.append(
                f"{item!r} is neither a sound name (like 'digits/1') nor a {{placeholder}}"
            )
    return problems


def _format_problem(path: Path) -> str | None:
    """Why ``path`` cannot go in a playlist of 8 kHz 16-bit mono PCM, or None."""
    try:
        info = read_wav_info(path)
    except (CorruptAudioError, OSError) as exc:
        return str(exc)
    wanted = (FORMAT_PCM, SAMPLE_RATE, 1, SAMPLE_BITS)
    if (info.format_tag, info.sample_rate, info.channels, info.bits_per_sample) != wanted:
        return (
            f"{info.sample_rate} Hz, {info.bits_per_sample}-bit, {info.channels} channel(s), "
            f"format {info.format_tag}; it must be 8000 Hz 16-bit mono PCM "
            f"(sox IN.wav -r 8000 -c 1 -b 16 -e signed-integer OUT.wav)"
        )
    return None


def _how_to_fix(
    missing: list[str], language: str, sounds_dir: Path, extra_dir: Path, overrides: Path | None
) -> str:
    fixes = []
    if any(not name.startswith(EXTRA_PREFIX) for name in missing):
        package = f"asterisk-core-sounds-{language}-wav"
        fixes.append(
            f"install the Debian package {package} (apt-get install {package}), which puts the "
            f"Asterisk sounds in {sounds_dir / language}, or correct a misspelt name"
        )
    if any(name.startswith(EXTRA_PREFIX) for name in missing):
        fixes.append(
            f"run the generator for our {EXTRA_PREFIX}* phrases: python "
            f"{extra_dir.parent / 'generate_extra.py'} --lang {language} "
            f"(it writes {extra_dir / language})"
        )
    if overrides is not None:
        either = "or " if fixes else ""
        fixes.append(f"{either}put your own 8 kHz 16-bit mono WAV of that name in {overrides}")
    return "".join(f"\nTo fix: {fix}" if i == 0 else f"\n    {fix}" for i, fix in enumerate(fixes))


def _prompt_files() -> Path:
    # src/sipvm/prompt_files is a symlink to the repository's prompts/ folder; resolved so
    # that error messages name the real folder.
    return Path(str(resources.files("sipvm") / "prompt_files")).resolve()


def default_manifest() -> Path:
    """The shipped manifest, ``prompts/manifest.toml``."""
    return _prompt_files() / "manifest.toml"


def default_extra_dir() -> Path:
    """The shipped generated phrases, ``prompts/extra/`` (one folder per language)."""
    return _prompt_files() / "extra"
