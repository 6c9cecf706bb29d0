"""Greeting uploads in every common format, the refusals, and the greeting in force."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.audio.greeting import MAX_PEAK_DBFS, TARGET_RMS_DBFS
from sipvm.errors import InvalidInputError, NotFoundError
from sipvm.testing.tones import read_pcm_mono, seconds_with_tone, write_silence_wav, write_tone_wav


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def padded_tone(tmp: Path, freq: float = 800.0) -> Path:
    """2 s silence + 3 s tone + 2 s silence, quiet (so leveling has work to do)."""
    silence = write_silence_wav(tmp / "silence.wav", 2.0)
    tone = write_tone_wav(tmp / "tone.wav", freq, 3.0, amplitude=0.05)
    out = tmp / "padded.wav"
    ffmpeg(
        "-i",
        str(silence),
        "-i",
        str(tone),
        "-i",
        str(silence),
        "-filter_complex",
        "[0][1][2]concat=n=3:v=0:a=1",
        str(out),
    )
    return out


FORMATS = {
    "wav-44k-stereo-24bit.wav": ["-ar", "44100", "-ac", "2", "-c:a", "pcm_s24le"],
    "alaw.wav": ["-ar", "8000", "-c:a", "pcm_alaw"],
    "greeting.mp3": ["-ar", "22050", "-b:a", "64k"],
    "greeting.ogg": ["-c:a", "libvorbis", "-ar", "16000"],
    "greeting.m4a": ["-c:a", "aac", "-ar", "16000"],
    "greeting.flac": ["-ar", "48000", "-ac", "2"],
}


def rms_dbfs(path: Path) -> float:
    samples = read_pcm_mono(path)
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return 20 * math.log10(rms / 32768)


@pytest.mark.parametrize("name", sorted(FORMATS))
async def test_each_format_becomes_an_8k_mono_leveled_trimmed_greeting(
    app: App, tmp_path: Path, name: str
) -> None:
    src = tmp_path / name
    ffmpeg("-i", str(padded_tone(tmp_path)), *FORMATS[name], str(src))
    greeting = await app.greetings.upload("2001", "unavailable", src)
    path = await app.greetings.path_for("2001", "unavailable")
    assert path is not None and path == app.files.path(greeting.audio)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        length = w.getnframes() / 8000
    assert length == pytest.approx(3.2, abs=0.3)  # 3 s of tone + 100 ms kept at each end
    assert seconds_with_tone(read_pcm_mono(path), 8000, 800.0) == pytest.approx(3.0, abs=0.5)
    level = rms_dbfs(path)
    assert level == pytest.approx(TARGET_RMS_DBFS, abs=2.0)
    peak = max(abs(s) for s in read_pcm_mono(path))
    assert 20 * math.log10(peak / 32768) <= MAX_PEAK_DBFS + 0.2


async def test_loud_input_is_not_clipped(app: App, tmp_path: Path) -> None:
    src = write_tone_wav(tmp_path / "loud.wav", 500.0, 2.0, amplitude=0.99)
    await app.greetings.upload("2001", "busy", src)
    path = await app.greetings.path_for("2001", "busy")
    assert path is not None
    assert max(abs(s) for s in read_pcm_mono(path)) < 32767 * 0.9


async def test_a_new_greeting_replaces_the_old_file(app: App, tmp_path: Path) -> None:
    first = await app.greetings.upload("2001", "busy", write_tone_wav(tmp_path / "a.wav", 500, 2))
    second = await app.greetings.upload("2001", "busy", write_tone_wav(tmp_path / "b.wav", 900, 2))
    assert not app.files.path(first.audio).exists()
    path = await app.greetings.path_for("2001", "busy")
    assert path == app.files.path(second.audio)
    assert seconds_with_tone(read_pcm_mono(path), 8000, 900.0) > 1.5


def sipvm(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sipvm", *args, "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def make_bad(tmp: Path, kind: str) -> Path:
    if kind == "text":
        path = tmp / "notes.wav"
        path.write_text("this is not audio\n" * 100)
    elif kind == "corrupt-wav":
        good = write_tone_wav(tmp / "good.wav", 700, 2.0).read_bytes()
        path = tmp / "corrupt.wav"
        path.write_bytes(good[:12] + b"\xde\xad\xbe\xef" * 4000)
    elif kind == "truncated-mp3":
        mp3 = tmp / "full.mp3"
        ffmpeg("-i", str(write_tone_wav(tmp / "t.wav", 700, 3.0)), str(mp3))
        path = tmp / "truncated.mp3"
        path.write_bytes(mp3.read_bytes()[:200])
    elif kind == "oversized":
        path = tmp / "huge.wav"
        with open(path, "wb") as f:
            f.truncate(21 * 1024 * 1024)
    elif kind == "too-long":
        path = tmp / "long.mp3"
        ffmpeg("-f", "lavfi", "-i", "sine=frequency=600:duration=130", "-b:a", "32k", str(path))
    elif kind == "silent":
        path = write_silence_wav(tmp / "silent.wav", 5.0)
    else:
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("text", "is not an audio file sipvm can read: upload WAV, MP3, OGG, M4A/AAC or FLAC"),
        ("corrupt-wav", "is not an audio file sipvm can read"),
        ("truncated-mp3", "not an audio file sipvm can read"),
        ("oversized", "over the 20 MB limit"),
        ("too-long", "greetings may be at most 120 s"),
        ("silent", "is silent"),
    ],
)
def test_refused_uploads_say_why_and_keep_the_old_greeting(
    tmp_path: Path, example_directory_file: Path, kind: str, message: str
) -> None:
    data = tmp_path / "data"
    assert sipvm(data, "directory", "apply", str(example_directory_file)).returncode == 0
    good = write_tone_wav(tmp_path / "good-greeting.wav", 650.0, 2.0)
    assert (
        sipvm(
            data, "greeting", "upload", "--inbox", "4001", "--kind", "unavailable", str(good)
        ).returncode
        == 0
    )
    before = json.loads(sipvm(data, "greeting", "list", "--inbox", "4001", "--json").stdout)
    files_before = sorted(p.name for p in (data / "greetings" / "4001").iterdir())
    bad = make_bad(tmp_path, kind)
    result = sipvm(data, "greeting", "upload", "--inbox", "4001", "--kind", "unavailable", str(bad))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    after = json.loads(sipvm(data, "greeting", "list", "--inbox", "4001", "--json").stdout)
    assert after == before
    assert sorted(p.name for p in (data / "greetings" / "4001").iterdir()) == files_before


def test_cli_list_remove_and_unknown_inbox(tmp_path: Path, example_directory_file: Path) -> None:
    data = tmp_path / "data"
    assert sipvm(data, "directory", "apply", str(example_directory_file)).returncode == 0
    tone = write_tone_wav(tmp_path / "n.wav", 700.0, 1.5)
    up = sipvm(data, "greeting", "upload", "--inbox", "1002", "--kind", "name", str(tone))
    assert up.returncode == 0 and "name greeting stored (1.5 s)" in up.stdout, up
    listed = json.loads(sipvm(data, "greeting", "list", "--inbox", "1002", "--json").stdout)
    assert [(g["kind"], g["duration_s"]) for g in listed] == [("name", 1.5)]
    assert sipvm(data, "greeting", "remove", "--inbox", "1002", "--kind", "name").returncode == 0
    assert json.loads(sipvm(data, "greeting", "list", "--inbox", "1002", "--json").stdout) == []
    again = sipvm(data, "greeting", "remove", "--inbox", "1002", "--kind", "name")
    assert again.returncode == 4 and "has no name greeting" in again.stderr
    unknown = sipvm(data, "greeting", "upload", "--inbox", "9999", "--kind", "busy", str(tone))
    assert unknown.returncode == 4 and "there is no inbox 9999" in unknown.stderr
    bad_kind = sipvm(data, "greeting", "list", "--inbox", "1002", "--kind", "x")
    assert bad_kind.returncode == 2


async def test_service_errors(app: App, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="unknown greeting kind"):
        await app.greetings.upload("2001", "weekend", write_tone_wav(tmp_path / "x.wav", 500, 1))
    with pytest.raises(NotFoundError):
        await app.greetings.list("9999")
    assert await app.greetings.path_for("2001", "busy") is None
