"""Greetings over a real store: every format, the refusals, replacing, crashes, the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
import wave
from array import array
from pathlib import Path

import pytest

import sipvm
from sipvm.app import App
from sipvm.audio.greeting import GreetingInfo
from sipvm.errors import InvalidInputError, NotFoundError, StorageError
from sipvm.services.greetings import ORPHAN_AGE_S, GreetingService
from sipvm.storage.greetings import SqliteGreetingRepo
from sipvm.testing.clock import FakeClock
from tests.conftest import EXAMPLE_DIRECTORY
from tests.support.tones import (
    read_pcm_mono,
    seconds_with_tone,
    tone_present,
    write_silence_wav,
    write_tone_wav,
)

RATE = 8000
NOT_AUDIO = "is not an audio file sipvm can read: upload WAV, MP3, OGG, M4A or FLAC"
# The subprocesses run the sipvm these tests import, wherever it was installed from.
SIPVM_PATH = str(Path(sipvm.__file__).resolve().parents[1])


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def run_python(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SIPVM_PATH}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def sipvm_cli(data: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "sipvm", *map(str, args), "--data", str(data))


def listed(data: Path, inbox: str) -> list[dict[str, object]]:
    result = sipvm_cli(data, "greeting", "list", "--inbox", inbox, "--json")
    assert result.returncode == 0, result.stderr
    found: list[dict[str, object]] = json.loads(result.stdout)
    return found


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file in ``folder`` (hidden temporary files too) with its content hash."""
    return {p.name: digest(p) for p in sorted(folder.iterdir())} if folder.exists() else {}


def padded_tone(tmp: Path, freq: float = 800.0) -> Path:
    """2 s silence + 3 s tone + 2 s silence, quiet (so levelling has work to do)."""
    silence = write_silence_wav(tmp / "silence.wav", 2.0)
    tone = write_tone_wav(tmp / "tone.wav", freq, 3.0, amplitude=0.05)
    out = tmp / "padded.wav"
    ffmpeg(
        *("-i", str(silence), "-i", str(tone), "-i", str(silence)),
        *("-filter_complex", "[0][1][2]concat=n=3:v=0:a=1", str(out)),
    )
    return out


def rms_dbfs(samples: array[int]) -> float:
    return 20 * math.log10(math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768)


# --- every format, through the service ----------------------------------------------------

FORMATS = {
    "pcm24-44k1-stereo.wav": ["-ar", "44100", "-ac", "2", "-c:a", "pcm_s24le"],
    "alaw-8k.wav": ["-ar", "8000", "-c:a", "pcm_alaw"],
    "greeting.mp3": ["-ar", "22050", "-b:a", "64k"],
    "vorbis.ogg": ["-c:a", "libvorbis", "-ar", "16000"],
    "greeting.m4a": ["-c:a", "aac", "-ar", "16000"],
    "greeting.flac": ["-ar", "48000", "-ac", "2"],
}


@pytest.mark.parametrize("name", sorted(FORMATS))
async def test_each_format_uploads_as_an_8k_mono_levelled_trimmed_greeting(
    app: App, clock: FakeClock, tmp_path: Path, name: str
) -> None:
    src = tmp_path / name
    ffmpeg("-i", str(padded_tone(tmp_path)), *FORMATS[name], str(src))
    greeting = await app.greetings.upload("2001", "unavailable", src)
    path = await app.greetings.path_for("2001", "unavailable")
    assert path == app.data_dir.resolve() / "greetings" / "2001" / Path(greeting.audio).name
    assert greeting.audio.startswith("greetings/2001/unavailable-")
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        length = w.getnframes() / RATE
    assert length == pytest.approx(3.0, abs=0.3)
    assert greeting.duration_ms == round(length * 1000)
    samples = read_pcm_mono(path)
    assert seconds_with_tone(samples, RATE, 800.0) >= 2.9
    assert tone_present(samples, RATE, 800.0, min_ratio=0.9)
    assert rms_dbfs(samples) == pytest.approx(-20.0, abs=2.0)
    assert [(g.kind, g.uploaded_at, g.uploaded_by) for g in await app.greetings.list("2001")] == [
        ("unavailable", clock(), "admin")
    ]


async def test_a_new_greeting_replaces_the_old_file(app: App, tmp_path: Path) -> None:
    first = await app.greetings.upload("2001", "busy", write_tone_wav(tmp_path / "a.wav", 500, 2))
    old = app.data_dir / first.audio
    assert old.is_file()
    second = await app.greetings.upload("2001", "busy", write_tone_wav(tmp_path / "b.wav", 900, 2))
    assert not old.exists()
    path = await app.greetings.path_for("2001", "busy")
    assert path == (app.data_dir / second.audio).resolve()
    assert seconds_with_tone(read_pcm_mono(path), RATE, 900.0) >= 1.5
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


async def test_concurrent_uploads_leave_one_greeting_and_one_file(app: App, tmp_path: Path) -> None:
    sources = [write_tone_wav(tmp_path / f"{f}.wav", f, 2.0) for f in (500, 700, 900)]
    done = await asyncio.gather(*(app.greetings.upload("1001", "name", s) for s in sources))
    path = await app.greetings.path_for("1001", "name")
    assert path is not None
    assert path.name in {Path(g.audio).name for g in done}
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


async def test_kinds_are_separate_and_listed_in_order(app: App, tmp_path: Path) -> None:
    for kind, freq in (("name", 400), ("temporary", 600), ("unavailable", 800), ("busy", 1000)):
        await app.greetings.upload("1002", kind, write_tone_wav(tmp_path / f"{kind}.wav", freq, 1))
    assert [g.kind for g in await app.greetings.list("1002")] == [
        "unavailable",
        "busy",
        "temporary",
        "name",
    ]
    busy = await app.greetings.path_for("1002", "busy")
    assert busy is not None and tone_present(read_pcm_mono(busy), RATE, 1000.0)
    removed = await app.greetings.remove("1002", "busy")
    assert removed.kind == "busy" and not busy.exists()
    assert await app.greetings.path_for("1002", "busy") is None
    assert [g.kind for g in await app.greetings.list("1002")] == [
        "unavailable",
        "temporary",
        "name",
    ]
    assert await app.greetings.list("1003") == []


async def test_service_errors(app: App, tmp_path: Path) -> None:
    tone = write_tone_wav(tmp_path / "x.wav", 500, 1)
    with pytest.raises(InvalidInputError, match="unknown greeting kind 'weekend': use one of"):
        await app.greetings.upload("2001", "weekend", tone)
    with pytest.raises(NotFoundError, match="there is no inbox 9999"):
        await app.greetings.upload("9999", "busy", tone)
    with pytest.raises(NotFoundError, match="there is no inbox 9999"):
        await app.greetings.list("9999")
    with pytest.raises(NotFoundError, match="inbox 2001 has no busy greeting"):
        await app.greetings.remove("2001", "busy")
    assert await app.greetings.path_for("2001", "busy") is None
    assert not (app.data_dir / "greetings").exists()  # nothing was written for any of these


async def test_a_missing_file_is_no_greeting(app: App, tmp_path: Path) -> None:
    greeting = await app.greetings.upload(
        "2001", "temporary", write_tone_wav(tmp_path / "t", 600, 1)
    )
    (app.data_dir / greeting.audio).unlink()  # lost from disk (restored from an old backup...)
    assert await app.greetings.path_for("2001", "temporary") is None


# --- failures and crashes keep the old greeting -------------------------------------------


async def test_a_conversion_failing_after_partial_output_keeps_the_old_greeting(
    app: App, clock: FakeClock, tmp_path: Path
) -> None:
    old = await app.greetings.upload("2001", "unavailable", write_tone_wav(tmp_path / "o", 650, 2))
    old_path = app.data_dir / old.audio
    before = snapshot(old_path.parent)

    def fails_half_way(src: Path, dst: Path) -> GreetingInfo:
        dst.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt half a greeting")
        raise StorageError(f"cannot write the greeting {dst}: No space left on device")

    failing = GreetingService(
        app.directory, SqliteGreetingRepo(app.db), app.data_dir, clock, convert=fails_half_way
    )
    with pytest.raises(StorageError, match="No space left on device"):
        await failing.upload("2001", "unavailable", write_tone_wav(tmp_path / "n", 900, 2))
    assert snapshot(old_path.parent) == before
    assert await app.greetings.path_for("2001", "unavailable") == old_path.resolve()
    assert [g.audio for g in await app.greetings.list("2001")] == [old.audio]


CRASHING_UPLOAD = """
import asyncio, os, signal, sys
from pathlib import Path
from sipvm.app import App, utc_now
from sipvm.audio.greeting import convert_greeting
from sipvm.services.greetings import GreetingService
from sipvm.storage.greetings import SqliteGreetingRepo

data, src, point = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def die(*_args):
    os.kill(os.getpid(), signal.SIGKILL)

def convert(s, d):
    if point == "rename":
        os.replace = die  # the new file is written and fsynced, but never renamed into place
    info = convert_greeting(s, d)
    die()  # point == "commit": the new file is durable, its row is not committed
    return info

async def main():
    app = await App.open(data)
    repo = SqliteGreetingRepo(app.db)
    service = GreetingService(app.directory, repo, data, utc_now, convert=convert)
    await service.upload("2001", "unavailable", src)

asyncio.run(main())
"""


@pytest.mark.parametrize("point", ["rename", "commit"])
def test_a_crash_mid_upload_leaves_the_old_greeting_in_force(
    tmp_path: Path, example_directory_file: Path, point: str
) -> None:
    data = tmp_path / "data"
    assert sipvm_cli(data, "directory", "apply", str(example_directory_file)).returncode == 0
    old_src = write_tone_wav(tmp_path / "old.wav", 650.0, 2.0)
    up = sipvm_cli(data, "greeting", "upload", "--inbox", "2001", "--kind", "unavailable", old_src)
    assert up.returncode == 0, up.stderr
    folder = data / "greetings" / "2001"
    before, listing = snapshot(folder), listed(data, "2001")
    (old_name,) = before

    new_src = write_tone_wav(tmp_path / "new.wav", 900.0, 2.0)
    crashed = run_python("-c", CRASHING_UPLOAD, str(data), str(new_src), point)
    assert crashed.returncode == -9, crashed.stderr

    after = snapshot(folder)
    assert after[old_name] == before[old_name]  # the greeting in force, untouched
    leftovers = sorted(set(after) - {old_name})
    assert len(leftovers) == 1  # what the crash left: a temporary file, or an unused greeting
    assert leftovers[0].startswith(".unavailable-" if point == "rename" else "unavailable-")
    assert listed(data, "2001") == listing

    async def in_force() -> Path | None:
        app = await App.open(data)
        try:
            return await app.greetings.path_for("2001", "unavailable")
        finally:
            await app.close()

    assert asyncio.run(in_force()) == (folder / old_name).resolve()

    # The next upload replaces the old greeting; the leftover goes once it is old enough to
    # belong to no upload still running.
    other = write_tone_wav(tmp_path / "other.wav", 1100.0, 2.0)
    args = ("greeting", "upload", "--inbox", "2001", "--kind", "unavailable", str(other))
    assert sipvm_cli(data, *args).returncode == 0
    assert old_name not in snapshot(folder) and leftovers[0] in snapshot(folder)
    an_hour_ago = time.time() - ORPHAN_AGE_S - 60
    os.utime(folder / leftovers[0], (an_hour_ago, an_hour_ago))
    assert sipvm_cli(data, *args).returncode == 0
    (final,) = snapshot(folder)
    assert tone_present(read_pcm_mono(folder / final), RATE, 1100.0)


# --- the command line ---------------------------------------------------------------------


def test_cli_upload_list_remove(tmp_path: Path, example_directory_file: Path) -> None:
    data = tmp_path / "data"
    assert sipvm_cli(data, "directory", "apply", str(example_directory_file)).returncode == 0
    assert listed(data, "1002") == []
    mp3 = tmp_path / "name.mp3"
    ffmpeg("-i", str(write_tone_wav(tmp_path / "n.wav", 700.0, 1.5)), str(mp3))
    up = sipvm_cli(data, "greeting", "upload", "--inbox", "1002", "--kind", "name", str(mp3))
    assert up.returncode == 0, up.stderr
    assert up.stdout == "inbox 1002: name greeting stored (1.5 s)\n"
    flac = tmp_path / "busy.flac"
    ffmpeg("-i", str(padded_tone(tmp_path)), str(flac))
    up = sipvm_cli(data, "greeting", "upload", "--inbox", "1002", "--kind", "busy", str(flac))
    assert up.returncode == 0 and up.stdout == "inbox 1002: busy greeting stored (3.2 s)\n"

    found = listed(data, "1002")
    assert [sorted(g) for g in found] == [["duration_s", "inbox", "kind", "uploaded_at"]] * 2
    assert [(g["inbox"], g["kind"]) for g in found] == [("1002", "busy"), ("1002", "name")]
    assert found[0]["duration_s"] == pytest.approx(3.2, abs=0.02)
    assert found[1]["duration_s"] == pytest.approx(1.5, abs=0.03)
    assert all(str(g["uploaded_at"]).endswith("Z") for g in found)
    table = sipvm_cli(data, "greeting", "list", "--inbox", "1002")
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["KIND", "SECONDS", "UPLOADED", "(UTC)", "BY"]
    assert [line.split()[:2] for line in lines[1:]] == [["busy", "3.2"], ["name", "1.5"]]
    assert all(line.split()[-1] == "admin" for line in lines[1:])

    folder = data / "greetings" / "1002"
    assert len(snapshot(folder)) == 2
    rm = sipvm_cli(data, "greeting", "remove", "--inbox", "1002", "--kind", "name")
    assert rm.returncode == 0 and rm.stdout == "inbox 1002: name greeting removed\n"
    assert [g["kind"] for g in listed(data, "1002")] == ["busy"]
    (left,) = snapshot(folder)
    assert left.startswith("busy-")
    again = sipvm_cli(data, "greeting", "remove", "--inbox", "1002", "--kind", "name")
    assert again.returncode == 4
    assert again.stderr.startswith("sipvm: inbox 1002 has no name greeting")


def test_cli_unknown_inbox_bad_kind_and_missing_file(
    tmp_path: Path, example_directory_file: Path
) -> None:
    data = tmp_path / "data"
    assert sipvm_cli(data, "directory", "apply", str(example_directory_file)).returncode == 0
    tone = str(write_tone_wav(tmp_path / "t.wav", 700.0, 1.0))
    for args in (
        ("upload", "--inbox", "9999", "--kind", "busy", tone),
        ("list", "--inbox", "9999"),
        ("remove", "--inbox", "9999", "--kind", "busy"),
    ):
        result = sipvm_cli(data, "greeting", *args)
        assert result.returncode == 4, (args, result.stderr)
        assert result.stderr == (
            "sipvm: there is no inbox 9999; list inboxes with `sipvm inboxes --member EXT`\n"
        )
    bad_kind = sipvm_cli(data, "greeting", "upload", "--inbox", "2001", "--kind", "x", tone)
    assert bad_kind.returncode == 2
    assert bad_kind.stderr.startswith("sipvm: unknown greeting kind 'x': use one of unavailable,")
    missing = sipvm_cli(data, "greeting", "upload", "--inbox", "2001", "--kind", "busy", "nope")
    assert missing.returncode == 2
    assert missing.stderr == "sipvm: nope is not a file: give the path of an audio file\n"
    assert listed(data, "2001") == []


def make_bad(tmp: Path, kind: str) -> Path:
    if kind == "text":
        path = tmp / "notes.wav"
        path.write_text("this is not audio\n" * 100)
    elif kind == "corrupt-wav":
        good = write_tone_wav(tmp / "good.wav", 700, 2.0).read_bytes()
        path = tmp / "corrupt.wav"
        path.write_bytes(good[:12] + b"\xde\xad\xbe\xef" * 4000)  # RIFF/WAVE, then garbage
    elif kind == "truncated-mp3":
        mp3 = tmp / "full.mp3"
        ffmpeg("-i", str(write_tone_wav(tmp / "t.wav", 700, 3.0)), str(mp3))
        path = tmp / "truncated.mp3"
        path.write_bytes(mp3.read_bytes()[:200])
    elif kind == "oversized":
        path = tmp / "huge.wav"
        with open(path, "wb") as f:
            f.truncate(21 * 1024 * 1024)  # sparse: instant, and no disk used
    elif kind == "too-long":
        path = tmp / "long.ogg"
        ffmpeg(
            *("-f", "lavfi", "-i", "sine=frequency=600:duration=130:sample_rate=8000"), str(path)
        )
    elif kind == "too-short":
        path = tmp / "blip.wav"
        write_tone_wav(path, 700, 0.3)
    elif kind == "silent":
        path = write_silence_wav(tmp / "silent.wav", 5.0)
    else:
        raise AssertionError(kind)
    return path


@pytest.fixture(scope="module")
def seeded_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with the example directory and a 650 Hz unavailable greeting for 4001."""
    base = tmp_path_factory.mktemp("seeded")
    data = base / "data"
    assert sipvm_cli(data, "directory", "apply", str(EXAMPLE_DIRECTORY)).returncode == 0
    good = write_tone_wav(base / "good-greeting.wav", 650.0, 2.0)
    up = sipvm_cli(data, "greeting", "upload", "--inbox", "4001", "--kind", "unavailable", good)
    assert up.returncode == 0, up.stderr
    return data


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", f"notes.wav {NOT_AUDIO}"),
        ("corrupt-wav", f"corrupt.wav {NOT_AUDIO}"),
        ("truncated-mp3", f"truncated.mp3 {NOT_AUDIO}"),
        ("oversized", "huge.wav is 21.0 MB, over the 20 MB limit for greeting uploads"),
        ("too-long", "long.ogg is 130.0 s long even without the silence at its ends; "),
        ("too-short", "blip.wav has only 0.3 s of sound once the silence at its ends is trimmed"),
        ("silent", "silent.wav is silent (no sound above -60 dBFS)"),
    ],
)
def test_refused_uploads_say_why_and_keep_the_old_greeting(
    tmp_path: Path, seeded_data: Path, kind: str, message: str
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seeded_data, data)
    folder = data / "greetings" / "4001"
    before, listing = snapshot(folder), listed(data, "4001")
    assert len(before) == 1 and [g["kind"] for g in listing] == ["unavailable"]
    bad = make_bad(tmp_path, kind)
    result = sipvm_cli(data, "greeting", "upload", "--inbox", "4001", "--kind", "unavailable", bad)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith("sipvm: ") and message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert listed(data, "4001") == listing
    assert snapshot(folder) == before
    (name,) = before
    assert tone_present(read_pcm_mono(folder / name), RATE, 650.0)
