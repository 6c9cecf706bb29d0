"""The prompt manifest: load a language's prompts and find every sound they need on disk.

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
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from sipvm.audio.wav import FORMAT_PCM, read_wav_info
from sipvm.errors import CorruptAudioError, PromptError
from sipvm.prompts.english import EnglishSayer
from sipvm.prompts.prompt_set import FALLBACK, NOW, PLACEHOLDER, PromptSet, Sayer

DEFAULT_SOUNDS_DIR = Path("/usr/share/asterisk/sounds")
"""Where the Debian ``asterisk-core-sounds-<lang>-wav`` packages install (``<lang>/`` below)."""

EXTRA_PREFIX = "sipvm-"
"""Names of our generated phrases start with this, so they never shadow an Asterisk sound."""

SAMPLE_RATE = 8000
SAMPLE_BITS = 16

_SOUND_NAME = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
_PROMPT_ID = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")


# Languages whose numbers and dates we can say; the manifest may name others only once a
# sayer for them exists here.
_sayers: Mapping[str, Sayer] = MappingProxyType({"en": EnglishSayer()})


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
            if PLACEHOLDER.fullmatch(item) is None:
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
        if prompt_id.startswith(FALLBACK):
            for item in items:
                match = PLACEHOLDER.fullmatch(item)
                if match and FALLBACK + match.group(1) in table:
                    problems.append(f"{prompt_id!r}: a fallback cannot use {item}, which has one")
    if problems:
        raise PromptError(f"the prompt manifest {manifest} [{language}] is invalid", problems)
    return prompts


def _item_problems(items: list[str]) -> list[str]:
    problems = []
    for item in items:
        match = PLACEHOLDER.fullmatch(item)
        if match is not None and match.group(1) == NOW:
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
