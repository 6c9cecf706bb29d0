"""Directory names spoken by espeak-ng for inboxes with no recorded name: made once, prepared like
every prompt, looked up without speaking; the greetings' "name" falls back to them."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sipvm.prompts.prepare import DEFAULT, loud_bounds, read_segment
from sipvm.prompts.spoken_names import MAX_CHARS, SpokenNames, clean_name
from sipvm.services.spoken_names import SpokenNameGreetings

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs espeak-ng (apt-get install espeak-ng)"
)


@needs_espeak
def test_a_name_is_made_once_as_a_prepared_sound_of_speech(tmp_path: Path) -> None:
    names = SpokenNames(tmp_path / "names")
    assert names.path_for("Sales") is None  # nothing is spoken by a lookup
    assert names.make(["Sales", "Sales", "", "  "]) == (1, 1)
    path = names.path_for("Sales")
    assert path is not None and path.parent == tmp_path / "names"
    sound = read_segment(path)
    assert (sound.frame_rate, sound.channels, sound.sample_width) == (8000, 1, 2)
    first, last = loud_bounds(sound, DEFAULT.threshold_db) or (0, 0)
    assert (last - first) / sound.frame_rate > 0.2
    assert len(sound) / 1000 < 1.5
    assert abs(sound.dBFS - DEFAULT.target_dbfs) < 1.5  # levelled like the prompts
    assert names.make(["Sales"]) == (1, 0)
    assert names.make(["Sales", "Support"]) == (2, 1)
    assert not [p for p in (tmp_path / "names").iterdir() if p.name.startswith(".")]


@needs_espeak
def test_names_like_options_or_with_control_characters_are_spoken_as_text(
    tmp_path: Path,
) -> None:
    names = SpokenNames(tmp_path / "names")
    hostile = ["-x --help", "--version", "Front\x00 Desk\x1b[31m\r\n", "A" * 200]
    assert names.make(hostile) == (4, 4)
    for text in hostile:
        path = names.path_for(text)
        assert path is not None and len(read_segment(path)) > 200


def test_names_are_cleaned_before_they_are_spoken() -> None:
    assert clean_name("Front\x00Desk\x1b[31m\r\n\tTwo") == "Front Desk [31m Two"
    assert clean_name("-x") == "-x"
    assert clean_name("\x07\n ") == ""
    assert len(clean_name("B" * 500)) == MAX_CHARS


def test_without_espeak_nothing_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    names = SpokenNames(tmp_path / "names")
    assert not names.available
    assert names.make(["Sales"]) == (0, 0)
    assert names.path_for("Sales") is None


class FakeGreetings:
    def __init__(self, recorded: dict[tuple[str, str], Path]) -> None:
        self.recorded = recorded
        self.calls: list[tuple[Any, ...]] = []

    async def path_for(self, inbox: str, kind: str) -> Path | None:
        return self.recorded.get((inbox, kind))

    async def upload(self, inbox: str, kind: str, src: Path, *, by: str = "admin") -> object:
        self.calls.append(("upload", inbox, kind, src, by))
        return "uploaded"

    async def remove(self, inbox: str, kind: str) -> object:
        self.calls.append(("remove", inbox, kind))
        return "removed"


class FakeNames:
    def __init__(self, made: dict[str, Path]) -> None:
        self.made = made

    def path_for(self, text: str) -> Path | None:
        return self.made.get(text)


class FakeDirectory:
    def __init__(self, names: dict[str, str]) -> None:
        self.current = SimpleNamespace(
            get=lambda ext: SimpleNamespace(name=names[ext]) if ext in names else None
        )


def adapter(
    recorded: dict[tuple[str, str], Path], made: dict[str, Path]
) -> tuple[SpokenNameGreetings, FakeGreetings]:
    greetings = FakeGreetings(recorded)
    directory = FakeDirectory({"2001": "Sales", "2002": "Support", "1001": "Alice Smith"})
    return SpokenNameGreetings(greetings, FakeNames(made), directory), greetings  # type: ignore[arg-type]


async def test_a_recorded_name_wins_over_the_spoken_one() -> None:
    greetings, _ = adapter({("2001", "name"): Path("/rec/2001.wav")}, {"Sales": Path("/s.wav")})
    assert await greetings.path_for("2001", "name") == Path("/rec/2001.wav")


async def test_an_unrecorded_name_is_the_spoken_directory_name_once_made() -> None:
    greetings, _ = adapter({}, {"Sales": Path("/spoken/sales.wav")})
    assert await greetings.path_for("2001", "name") == Path("/spoken/sales.wav")
    assert await greetings.path_for("2002", "name") is None  # not made yet: spelled
    assert await greetings.path_for("9999", "name") is None  # not in the directory


async def test_other_kinds_and_changes_are_the_wrapped_service_s() -> None:
    greetings, inner = adapter(
        {("2001", "unavailable"): Path("/rec/u.wav")}, {"Sales": Path("/s.wav")}
    )
    assert await greetings.path_for("2001", "unavailable") == Path("/rec/u.wav")
    assert await greetings.path_for("2001", "busy") is None  # never a spoken name
    assert await greetings.upload("1001", "name", Path("/tmp/x.wav"), by="1001") == "uploaded"
    assert await greetings.remove("1001", "temporary") == "removed"
    assert inner.calls == [
        ("upload", "1001", "name", Path("/tmp/x.wav"), "1001"),
        ("remove", "1001", "temporary"),
    ]
