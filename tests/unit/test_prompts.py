"""Prompt manifest, sound lookup and the English sayers (sipvm.prompts), on the real sounds.

Needs the Debian package asterisk-core-sounds-en-wav (as the server does).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import struct
import tomllib
import wave
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from sipvm.errors import StorageError
from sipvm.prompts import (
    DEFAULT_SOUNDS_DIR,
    PromptError,
    PromptSet,
    default_extra_dir,
    default_manifest,
    load_prompts,
)

REPO = Path(__file__).resolve().parents[2]
SOUNDS_EN = DEFAULT_SOUNDS_DIR / "en"
EXTRA_EN = default_extra_dir() / "en"
MANIFEST_EN: dict[str, list[str]] = tomllib.loads(default_manifest().read_text())["en"]
# Values for every placeholder the shipped manifest uses.
FILL: dict[str, object] = {
    "name": None,
    "ext": "1001",
    "n": 3,
    "new": 2,
    "saved": 1,
    "when": datetime(2024, 3, 5, 15, 7),
    "caller": "5551234",
    "key": "1",
}
RMS_FLOOR = 500  # speech in these files sits around 3,000; silence or a broken file near 0


@pytest.fixture(scope="module")
def prompts() -> PromptSet:
    return load_prompts(default_manifest(), DEFAULT_SOUNDS_DIR, default_extra_dir())


def names(paths: list[Path], *bases: Path) -> list[str]:
    """Sound names ("digits/1") of resolved files, relative to whichever base holds them."""
    out = []
    for path in paths:
        for base in (*bases, SOUNDS_EN, EXTRA_EN):
            if path.is_relative_to(base):
                out.append(path.relative_to(base).with_suffix("").as_posix())
                break
        else:
            out.append(str(path))
    return out


def write_manifest(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "manifest.toml"
    path.write_text(body, encoding="utf-8")
    return path


def rms(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        frames = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return math.sqrt(sum(s * s for s in samples) / len(samples))


# --- The shipped manifest ---------------------------------------------------------------------


@pytest.mark.parametrize("prompt_id", sorted(MANIFEST_EN))
def test_every_prompt_resolves_to_existing_files(prompts: PromptSet, prompt_id: str) -> None:
    files = prompts.get(prompt_id, **FILL)
    assert len(files) >= len(MANIFEST_EN[prompt_id])
    missing = [f for f in files if not f.is_file()]
    assert missing == []


def test_ids_are_grouped() -> None:
    groups = {prompt_id.split(".")[0] for prompt_id in MANIFEST_EN}
    assert groups == {"deposit", "login", "menu", "ar", "common", "fallback"}


def test_every_prompt_id_the_flows_use_is_in_the_manifest(prompts: PromptSet) -> None:
    used = set()
    for source in (REPO / "src" / "sipvm" / "flows").glob("*.py"):
        used |= set(
            re.findall(r'"((?:deposit|login|menu|ar|common)\.[a-z_]+)"', source.read_text())
        )
    assert "deposit.review" in used  # the scan finds what it is meant to find
    assert sorted(used - set(prompts.prompt_ids)) == []


def test_default_greeting_spells_the_extension_without_a_recorded_name(prompts: PromptSet) -> None:
    # "Extension 1 0 0 1 is unavailable. Leave a message after the tone."
    assert names(prompts.get("deposit.greeting", name=None, ext="1001")) == [
        "vm-extension", "digits/1", "digits/0", "digits/0", "digits/1", "vm-isunavail",
    ]  # fmt: skip
    assert names(prompts.get("deposit.greeting_busy", ext="2001")) == [
        "vm-extension", "digits/2", "digits/0", "digits/0", "digits/1", "vm-isonphone",
    ]  # fmt: skip
    assert names(prompts.get("deposit.instructions")) == ["sipvm-leave-after-tone"]


def test_recorded_name_is_played_as_given(prompts: PromptSet, tmp_path: Path) -> None:
    recorded = tmp_path / "name.wav"
    files = prompts.get("deposit.greeting", name=recorded, ext="1001")
    assert files == [recorded, SOUNDS_EN / "vm-isunavail.wav"]


def test_review_menu_offers_urgent(prompts: PromptSet) -> None:
    assert names(prompts.get("deposit.review")) == ["vm-review", "vm-review-urgent"]
    assert names(prompts.get("deposit.beep")) == ["beep"]


def test_counts_and_envelope_fill_numbers_and_dates(prompts: PromptSet) -> None:
    assert names(prompts.get("menu.new_count", n=12)) == ["digits/12", "vm-INBOX"]  # "twelve new"
    assert names(prompts.get("menu.saved_count", n=3)) == ["digits/3", "vm-saved"]
    when = datetime(2024, 3, 5, 9, 30)
    assert names(prompts.get("menu.received", when=when, now=datetime(2024, 3, 5, 18, 0))) == [
        "digits/today", "digits/at", "digits/9", "digits/30", "digits/a-m",
    ]  # fmt: skip
    assert names(prompts.get("menu.from_extension", name=None, ext="1002")) == [
        "vm-from", "vm-extension", "digits/1", "digits/0", "digits/0", "digits/2",
    ]  # fmt: skip


def test_missing_placeholder_value_without_fallback_raises(prompts: PromptSet) -> None:
    with pytest.raises(PromptError, match=r"'menu\.inbox' needs a value for \{ext\}"):
        prompts.get("menu.inbox")
    with pytest.raises(PromptError, match=r"needs a value for \{caller\}"):
        prompts.get("menu.from", caller="")


def test_placeholder_of_unsayable_type_raises(prompts: PromptSet) -> None:
    with pytest.raises(PromptError, match=r"cannot say \{n\}=True"):
        prompts.get("menu.message_number", n=True)
    with pytest.raises(PromptError, match=r"cannot say \{n\}=2\.5"):
        prompts.get("menu.message_number", n=2.5)
    with pytest.raises(PromptError, match="now='yesterday' must be a datetime"):
        prompts.get("menu.received", when=datetime(2024, 1, 1), now="yesterday")


def test_unknown_id_raises_and_suggests(prompts: PromptSet) -> None:
    with pytest.raises(PromptError, match=r"unknown prompt id 'menu\.delted'.*menu\.deleted"):
        prompts.get("menu.delted")
    assert issubclass(PromptError, StorageError)


# --- Loading: missing sounds, bad files, bad manifests ----------------------------------------


def test_missing_sounds_are_all_listed_with_the_fix(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        '[en]\n"deposit.x" = ["beep", "vm-no-such-sound"]\n"menu.y" = ["sipvm-no-such-phrase"]\n',
    )
    with pytest.raises(PromptError) as caught:
        load_prompts(manifest, DEFAULT_SOUNDS_DIR, default_extra_dir(), overrides_dir=tmp_path)
    assert caught.value.problems == [
        "missing sound 'sipvm-no-such-phrase' (used by menu.y)",
        "missing sound 'vm-no-such-sound' (used by deposit.x)",
    ]
    message = str(caught.value)
    assert "install the Debian package asterisk-core-sounds-en-wav" in message
    assert "generate_extra.py --lang en" in message
    assert f"WAV of that name in {tmp_path}" in message
    assert caught.value.exit_code == 1


def test_missing_sayer_sound_is_reported(tmp_path: Path) -> None:
    sounds = tmp_path / "sounds"
    shutil.copytree(SOUNDS_EN, sounds / "en", copy_function=os.symlink)  # links, not 25 MB
    (sounds / "en" / "digits" / "h-30.wav").unlink()
    manifest = write_manifest(tmp_path, '[en]\n"common.beep" = ["beep"]\n')
    with pytest.raises(PromptError) as caught:
        load_prompts(manifest, sounds, default_extra_dir())
    assert caught.value.problems == [
        "missing sound 'digits/h-30' (used by the en number/date sayer)"
    ]
    assert "asterisk-core-sounds-en-wav" in str(caught.value)


def test_sound_in_the_wrong_format_is_refused(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides"
    overrides.mkdir()
    with wave.open(str(overrides / "beep.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\x00\x10" * 1600)
    manifest = write_manifest(tmp_path, '[en]\n"deposit.beep" = ["beep"]\n')
    with pytest.raises(PromptError) as caught:
        load_prompts(manifest, DEFAULT_SOUNDS_DIR, default_extra_dir(), overrides_dir=overrides)
    (problem,) = caught.value.problems
    assert problem.startswith(f"unusable sound {overrides / 'beep.wav'}: 16000 Hz, 16-bit, 1 ")
    assert "it must be 8000 Hz 16-bit mono PCM" in problem


def test_unsupported_language_fails_at_load_time(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[fr]\n"common.goodbye" = ["vm-goodbye"]\n')
    with pytest.raises(PromptError, match=r"language 'fr' are not supported yet .*: en\)"):
        load_prompts(manifest, DEFAULT_SOUNDS_DIR, default_extra_dir(), language="fr")


def test_manifest_without_the_language_fails(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, '[fr]\n"common.goodbye" = ["vm-goodbye"]\n')
    with pytest.raises(PromptError, match=r"has no \[en\] table \(it has: fr\)"):
        load_prompts(manifest, DEFAULT_SOUNDS_DIR, default_extra_dir())


def test_malformed_manifest_entries_are_all_listed(tmp_path: Path) -> None:
    manifest = write_manifest(
        tmp_path,
        "[en]\n"
        '"Bad Id" = ["beep"]\n'
        '"menu.empty" = []\n'
        '"menu.odd" = ["../etc/passwd", "{now}"]\n'
        '"fallback.name" = ["{name}"]\n',
    )
    with pytest.raises(PromptError) as caught:
        load_prompts(manifest, DEFAULT_SOUNDS_DIR, default_extra_dir())
    assert caught.value.problems == [
        "'Bad Id': ids are dotted lowercase words, e.g. 'menu.deleted'",
        "'menu.empty': must be a non-empty list of sound names",
        "'menu.odd': '../etc/passwd' is neither a sound name (like 'digits/1') nor a {placeholder}",
        "'menu.odd': {now} is reserved (the reference time for dates)",
        "'fallback.name': a fallback cannot use {name}, which has one",
    ]


def test_unreadable_manifest_fails(tmp_path: Path) -> None:
    with pytest.raises(PromptError, match="cannot read the prompt manifest"):
        load_prompts(tmp_path / "absent.toml", DEFAULT_SOUNDS_DIR, default_extra_dir())
    broken = write_manifest(tmp_path, "[en\n")
    with pytest.raises(PromptError, match="is not valid TOML"):
        load_prompts(broken, DEFAULT_SOUNDS_DIR, default_extra_dir())


def test_overrides_take_precedence(tmp_path: Path) -> None:
    overrides = tmp_path / "overrides"
    (overrides / "digits").mkdir(parents=True)
    for name in ("vm-goodbye", "sipvm-inbox", "digits/7"):
        shutil.copyfile(SOUNDS_EN / "beep.wav", overrides / f"{name}.wav")
    prompts = load_prompts(
        default_manifest(), DEFAULT_SOUNDS_DIR, default_extra_dir(), overrides_dir=overrides
    )
    assert prompts.get("common.goodbye") == [overrides / "vm-goodbye.wav"]
    assert prompts.get("menu.inbox", ext="70") == [
        overrides / "sipvm-inbox.wav", overrides / "digits/7.wav", SOUNDS_EN / "digits/0.wav",
    ]  # fmt: skip
    assert prompts.number(17) == [SOUNDS_EN / "digits/17.wav"]
    assert prompts.number(27) == [SOUNDS_EN / "digits/20.wav", overrides / "digits/7.wav"]
    # Without overrides, our extra phrase comes before the Asterisk set.
    plain = load_prompts(default_manifest(), DEFAULT_SOUNDS_DIR, default_extra_dir())
    assert plain.get("menu.next_page") == [EXTRA_EN / "sipvm-next-page.wav"]


# --- Sayers ----------------------------------------------------------------------------------


def test_digits_are_spelled_one_by_one(prompts: PromptSet) -> None:
    assert names(prompts.digits("1001")) == ["digits/1", "digits/0", "digits/0", "digits/1"]
    assert names(prompts.digits("*97#")) == ["digits/star", "digits/9", "digits/7", "digits/pound"]
    assert names(prompts.digits("+1-5")) == ["letters/plus", "digits/1", "digits/minus", "digits/5"]
    with pytest.raises(PromptError, match=r"cannot spell '12a': 'a' is not a phone key"):
        prompts.digits("12a")


@pytest.mark.parametrize(
    ("n", "sounds"),
    [
        (0, ["0"]),
        (7, ["7"]),
        (13, ["13"]),
        (20, ["20"]),
        (21, ["20", "1"]),
        (100, ["1", "hundred"]),
        (105, ["1", "hundred", "5"]),
        (999, ["9", "hundred", "90", "9"]),
        (1000, ["1", "thousand"]),
        (1234, ["1", "thousand", "2", "hundred", "30", "4"]),
        (1000000, ["1", "million"]),
        (20_000_310, ["20", "million", "3", "hundred", "10"]),
        (999_999_999, ["9", "hundred", "90", "9", "million", "9", "hundred", "90", "9",
                       "thousand", "9", "hundred", "90", "9"]),
    ],
)  # fmt: skip
def test_numbers_follow_asterisk_english(prompts: PromptSet, n: int, sounds: list[str]) -> None:
    assert names(prompts.number(n)) == [f"digits/{s}" for s in sounds]


@pytest.mark.parametrize("n", [-1, 1_000_000_000])
def test_numbers_out_of_range_raise(prompts: PromptSet, n: int) -> None:
    with pytest.raises(PromptError, match=f"cannot say the number {n}: only 0 to 999,999,999"):
        prompts.number(n)


def test_datetime_without_reference_says_the_full_date(prompts: PromptSet) -> None:
    # Tuesday 5 March 2024, 15:07 → "Tuesday March fifth at three oh seven P.M."
    assert names(prompts.datetime(datetime(2024, 3, 5, 15, 7))) == [
        "digits/day-2", "digits/mon-2", "digits/h-5",
        "digits/at", "digits/3", "digits/oh", "digits/7", "digits/p-m",
    ]  # fmt: skip
    # Thursday 21 November 2024, midnight → "Thursday November twenty first at twelve o'clock A.M."
    assert names(prompts.datetime(datetime(2024, 11, 21, 0, 0))) == [
        "digits/day-4", "digits/mon-10", "digits/20", "digits/h-1",
        "digits/at", "digits/12", "digits/oclock", "digits/a-m",
    ]  # fmt: skip
    # Sunday 30 June 2024, 12:45 → "... thirtieth at twelve forty five P.M."
    assert names(prompts.datetime(datetime(2024, 6, 30, 12, 45))) == [
        "digits/day-0", "digits/mon-5", "digits/h-30",
        "digits/at", "digits/12", "digits/40", "digits/5", "digits/p-m",
    ]  # fmt: skip


def test_datetime_relative_to_now(prompts: PromptSet) -> None:
    when = datetime(2024, 3, 5, 15, 7)
    time = ["digits/at", "digits/3", "digits/oh", "digits/7", "digits/p-m"]
    assert names(prompts.datetime(when, now=datetime(2024, 3, 5, 23, 59))) == [
        "digits/today", *time,
    ]  # fmt: skip
    assert names(prompts.datetime(when, now=datetime(2024, 3, 6, 0, 1))) == [
        "digits/yesterday", *time,
    ]  # fmt: skip
    assert names(prompts.datetime(when, now=datetime(2024, 3, 9, 8, 0))) == [
        "digits/day-2", *time,
    ]  # fmt: skip
    assert names(prompts.datetime(when, now=datetime(2024, 3, 20))) == [
        "digits/mon-2", "digits/h-5", *time,
    ]  # fmt: skip
    assert names(prompts.datetime(when, now=datetime(2025, 1, 2))) == [
        "digits/mon-2", "digits/h-5",
        "digits/2", "digits/thousand", "digits/20", "digits/4", *time,
    ]  # fmt: skip


def test_datetime_is_said_in_its_own_zone(prompts: PromptSet) -> None:
    new_york = timezone(timedelta(hours=-5))
    when = datetime(2024, 3, 5, 22, 0, tzinfo=new_york)  # 03:00 UTC on the 6th
    now = datetime(2024, 3, 6, 4, 0, tzinfo=UTC)  # still the 5th in New York
    assert names(prompts.datetime(when, now=now)) == [
        "digits/today", "digits/at", "digits/10", "digits/oclock", "digits/p-m",
    ]  # fmt: skip
    with pytest.raises(PromptError, match="naive datetime with an aware one"):
        prompts.datetime(datetime(2024, 3, 5, 22, 0), now=now)


# --- The generated extra phrases --------------------------------------------------------------


def test_extras_match_their_table() -> None:
    table = tomllib.loads((default_extra_dir().parent / "extra.toml").read_text())
    listed = set(table["en"]["phrases"]) | set(table["en"]["silences"])
    assert {p.stem for p in EXTRA_EN.glob("*.wav")} == listed
    used = {item for items in MANIFEST_EN.values() for item in items if item.startswith("sipvm-")}
    assert used == listed


SILENCES_EN = tomllib.loads((default_extra_dir().parent / "extra.toml").read_text())["en"][
    "silences"
]
PHRASES_EN = sorted(p for p in EXTRA_EN.glob("*.wav") if p.stem not in SILENCES_EN)


@pytest.mark.parametrize("wav", PHRASES_EN, ids=lambda p: p.stem)
def test_extras_are_8khz_16bit_mono_and_not_silent(wav: Path) -> None:
    with wave.open(str(wav), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        assert 0.5 < w.getnframes() / 8000 < 15.0
    assert rms(wav) > RMS_FLOOR


@pytest.mark.parametrize("name", sorted(SILENCES_EN))
def test_pauses_are_silence_of_their_length(name: str) -> None:
    with wave.open(str(EXTRA_EN / f"{name}.wav"), "rb") as w:
        assert (w.getframerate(), w.getsampwidth(), w.getnchannels()) == (8000, 2, 1)
        assert w.getnframes() == 8 * SILENCES_EN[name]
        assert not any(w.readframes(w.getnframes()))


def test_default_paths_point_into_the_repository() -> None:
    assert default_manifest() == REPO / "prompts" / "manifest.toml"
    assert default_extra_dir() == REPO / "prompts" / "extra"
    link = REPO / "src" / "sipvm" / "prompt_files"
    assert link.is_symlink() and str(link.readlink()) == "../../prompts"
