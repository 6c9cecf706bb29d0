"""Greeting conversion (sipvm.audio.greeting): formats, levelling, trimming, limits, refusals."""

from __future__ import annotations

import math
import random
import shutil
import struct
import subprocess
import time
import wave
from array import array
from pathlib import Path

import pytest

from sipvm.audio.convert import load_audio
from sipvm.audio.greeting import (
    MAX_PEAK_DBFS,
    MAX_UPLOAD_BYTES,
    TARGET_RMS_DBFS,
    GreetingRejectedError,
    convert_greeting,
    speech_level_dbfs,
)
from sipvm.errors import InvalidInputError, StorageError
from tests.support.tones import (
    goertzel_power,
    seconds_with_tone,
    tone_present,
    tone_samples,
)

RATE = 8000
TONE_HZ = 800.0
NOT_AUDIO = "is not an audio file sipvm can read: upload WAV, MP3, OGG, M4A or FLAC"


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def _write(path: Path, samples: array[int], rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def _silence(seconds: float, rate: int = RATE) -> array[int]:
    return array("h", bytes(2 * round(seconds * rate)))


def _padded(
    path: Path, *, lead: float = 2.0, tone: float = 3.0, tail: float = 2.0, amp: float = 0.05
) -> Path:
    """``lead`` s of silence, ``tone`` s of 800 Hz at ``amp`` of full scale, ``tail`` s silence."""
    return _write(path, _silence(lead) + tone_samples(TONE_HZ, tone, RATE, amp) + _silence(tail))


def _read(path: Path) -> tuple[tuple[int, int, int], array[int]]:
    """((channels, sample width, rate), samples) read with the stdlib, not with sipvm."""
    with wave.open(str(path), "rb") as w:
        params = (w.getnchannels(), w.getsampwidth(), w.getframerate())
        data = array("h")
        data.frombytes(w.readframes(w.getnframes()))
    return params, data


def _rms_dbfs(samples: array[int]) -> float:
    return 20 * math.log10(math.sqrt(sum(s * s for s in samples) / len(samples)) / 32768)


def _peak_dbfs(samples: array[int]) -> float:
    return 20 * math.log10(max(abs(s) for s in samples) / 32768)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- formats ------------------------------------------------------------------------------

FORMATS = {
    "pcm24-44k1-stereo.wav": ["-ar", "44100", "-ac", "2", "-c:a", "pcm_s24le"],
    "alaw-8k.wav": ["-ar", "8000", "-c:a", "pcm_alaw"],
    "ulaw-8k.wav": ["-ar", "8000", "-c:a", "pcm_mulaw"],
    "float-48k.wav": ["-ar", "48000", "-c:a", "pcm_f32le"],
    "greeting.mp3": ["-ar", "22050", "-b:a", "64k"],
    "vorbis.ogg": ["-c:a", "libvorbis", "-ar", "16000"],
    "opus.ogg": ["-c:a", "libopus"],
    "greeting.m4a": ["-c:a", "aac", "-ar", "16000"],
    "greeting.flac": ["-ar", "48000", "-ac", "2"],
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_each_format_becomes_an_8k_mono_16bit_levelled_trimmed_greeting(
    tmp_path: Path, name: str
) -> None:
    src = tmp_path / name
    _ffmpeg("-i", str(_padded(tmp_path / "padded.wav")), *FORMATS[name], str(src))
    dst = tmp_path / "out" / "greeting.wav"
    info = convert_greeting(src, dst)
    params, samples = _read(dst)
    assert params == (1, 2, RATE)
    length = len(samples) / RATE
    assert length == pytest.approx(3.0, abs=0.3)  # 2 s + 3 s + 2 s in, the 3 s of tone out
    assert info.duration_s == pytest.approx(length, abs=0.001)
    assert seconds_with_tone(samples, RATE, TONE_HZ) >= 2.9
    assert tone_present(samples, RATE, TONE_HZ, min_ratio=0.9)
    assert _rms_dbfs(samples) == pytest.approx(TARGET_RMS_DBFS, abs=2.0)
    assert info.rms_dbfs == pytest.approx(_rms_dbfs(samples), abs=0.05)
    assert info.peak_dbfs == pytest.approx(_peak_dbfs(samples), abs=0.05)
    assert _files(dst.parent) == ["greeting.wav"]


def test_other_rates_on_request(tmp_path: Path) -> None:
    info = convert_greeting(_padded(tmp_path / "in.wav"), tmp_path / "g16.wav", rate=16000)
    params, samples = _read(tmp_path / "g16.wav")
    assert params == (1, 2, 16000)
    assert len(samples) / 16000 == pytest.approx(info.duration_s) == pytest.approx(3.2, abs=0.05)


def test_resampling_does_not_fold_high_frequencies_into_the_band(tmp_path: Path) -> None:
    # pydub's own resampler would turn this 6 kHz component into a 2 kHz one (8000 - 6000).
    rate = 44100
    low, high = tone_samples(TONE_HZ, 2.0, rate, 0.3), tone_samples(6000.0, 2.0, rate, 0.3)
    src = _write(
        tmp_path / "wide.wav", array("h", (a + b for a, b in zip(low, high, strict=True))), rate
    )
    convert_greeting(src, tmp_path / "g.wav")
    _, samples = _read(tmp_path / "g.wav")
    assert goertzel_power(samples, RATE, TONE_HZ) > 0.005  # the 800 Hz tone at about -20 dBFS
    assert goertzel_power(samples, RATE, 2000.0) < 1e-6


# --- levelling ----------------------------------------------------------------------------


@pytest.mark.parametrize("amp", [0.003, 0.05, 0.99])
def test_quiet_and_loud_recordings_come_out_at_the_target_level(tmp_path: Path, amp: float) -> None:
    src = _write(tmp_path / "in.wav", tone_samples(TONE_HZ, 2.0, RATE, amp))
    info = convert_greeting(src, tmp_path / "g.wav")
    _, samples = _read(tmp_path / "g.wav")
    assert _rms_dbfs(samples) == pytest.approx(TARGET_RMS_DBFS, abs=0.3)
    assert info.rms_dbfs == pytest.approx(TARGET_RMS_DBFS, abs=0.3)
    assert len(samples) == 2 * RATE  # nothing trimmed from a recording with no silence


def test_the_gain_is_capped_so_the_peak_stays_below_minus_1_dbfs(tmp_path: Path) -> None:
    # A quiet tone (-40 dBFS RMS) with one full-scale click: reaching -20 dBFS would clip.
    samples = tone_samples(TONE_HZ, 2.0, RATE, 0.0141)
    samples[RATE] = 32767
    info = convert_greeting(_write(tmp_path / "click.wav", samples), tmp_path / "g.wav")
    _, out = _read(tmp_path / "g.wav")
    assert max(abs(s) for s in out) <= 32768 * 10 ** (MAX_PEAK_DBFS / 20)
    assert info.peak_dbfs == pytest.approx(MAX_PEAK_DBFS, abs=0.05)
    assert _rms_dbfs(out) < TARGET_RMS_DBFS - 15  # the gain was capped, not applied in full


def test_speech_level_ignores_pauses(tmp_path: Path) -> None:
    tone = tone_samples(TONE_HZ, 1.0, RATE, 0.5)  # -9.03 dBFS RMS
    gappy = tone + _silence(3.0) + tone + _silence(3.0)
    level = speech_level_dbfs(load_audio(_write(tmp_path / "gappy.wav", gappy)))
    assert level == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=0.1)
    assert speech_level_dbfs(load_audio(_write(tmp_path / "zero.wav", _silence(1.0)))) is None


# --- trimming -----------------------------------------------------------------------------


def test_silence_is_trimmed_at_both_ends_keeping_100_ms(tmp_path: Path) -> None:
    info = convert_greeting(_padded(tmp_path / "in.wav", lead=1.5, tail=2.5), tmp_path / "g.wav")
    _, samples = _read(tmp_path / "g.wav")
    assert len(samples) / RATE == pytest.approx(3.2, abs=0.02) == info.duration_s
    margin = round(0.09 * RATE)
    assert max(abs(s) for s in samples[:margin]) == 0  # the kept silence...
    assert max(abs(s) for s in samples[-margin:]) == 0
    start = next(i for i, s in enumerate(samples) if s != 0)
    assert start / RATE == pytest.approx(0.1, abs=0.011)  # ...is 100 ms before the tone


def test_the_threshold_follows_the_recording_level(tmp_path: Path) -> None:
    # Loud tone over hiss at -65 dBFS: after levelling the hiss is 45 dB under the speech
    # (trimmed) although it is louder than a fixed -70 dBFS threshold would allow.
    rng = random.Random(7)
    hiss = 32768 * 10 ** (-65 / 20) * math.sqrt(3)  # uniform noise with that RMS
    noise = array("h", (round(rng.uniform(-hiss, hiss)) for _ in range(2 * RATE)))
    loud = noise + tone_samples(TONE_HZ, 3.0, RATE, 0.9) + noise
    convert_greeting(_write(tmp_path / "hiss.wav", loud), tmp_path / "g.wav")
    assert len(_read(tmp_path / "g.wav")[1]) / RATE == pytest.approx(3.2, abs=0.05)
    # A quiet recording (-57 dBFS) in silence is raised and trimmed alike, not taken for silence.
    quiet = _padded(tmp_path / "quiet.wav", amp=0.002)
    info = convert_greeting(quiet, tmp_path / "q.wav")
    assert info.duration_s == pytest.approx(3.2, abs=0.05)
    assert info.rms_dbfs == pytest.approx(TARGET_RMS_DBFS, abs=0.5)


def test_soft_endings_are_not_trimmed(tmp_path: Path) -> None:
    # The last second is 20 dB quieter than the rest (a trailing-off voice): it stays.
    samples = tone_samples(TONE_HZ, 2.0, RATE, 0.5) + tone_samples(500.0, 1.0, RATE, 0.05)
    info = convert_greeting(_write(tmp_path / "soft.wav", samples + _silence(1)), tmp_path / "g")
    assert info.duration_s == pytest.approx(3.1, abs=0.02)
    assert tone_present(_read(tmp_path / "g")[1][-RATE:], RATE, 500.0)


# --- limits and refusals ------------------------------------------------------------------


def test_the_120_s_limit_applies_after_trimming(tmp_path: Path) -> None:
    src = tmp_path / "long.mp3"
    _ffmpeg(
        *("-f", "lavfi", "-i", "sine=frequency=600:duration=115:sample_rate=8000"),
        *("-af", "adelay=10000:all=1,apad=pad_dur=10", "-b:a", "32k", str(src)),
    )
    assert load_audio(src).duration_seconds == pytest.approx(135, abs=0.2)
    info = convert_greeting(src, tmp_path / "g.wav")
    assert info.duration_s == pytest.approx(115.2, abs=0.1)


def test_longer_than_120_s_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "long.mp3"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=600:duration=125", "-b:a", "32k", str(src))
    dst = tmp_path / "out" / "g.wav"
    with pytest.raises(GreetingRejectedError) as caught:
        convert_greeting(src, dst)
    assert str(caught.value).startswith(f"{src} is 125.0 s long even without the silence")
    assert "greetings may be at most 120 s: shorten it" in str(caught.value)
    assert not dst.parent.exists()


def test_under_half_a_second_of_sound_is_refused(tmp_path: Path) -> None:
    src = _padded(tmp_path / "blip.wav", tone=0.3, amp=0.5)
    with pytest.raises(GreetingRejectedError, match=r"only 0\.3 s of sound .* at least 0\.5 s"):
        convert_greeting(src, tmp_path / "g.wav")
    assert _files(tmp_path) == ["blip.wav"]


@pytest.mark.parametrize("kind", ["digital", "hiss"])
def test_silence_is_refused(tmp_path: Path, kind: str) -> None:
    rng = random.Random(3)
    samples = (
        _silence(5.0)
        if kind == "digital"
        else array("h", (rng.randint(-6, 6) for _ in range(5 * RATE)))  # about -78 dBFS
    )
    src = _write(tmp_path / "quiet.wav", samples)
    with pytest.raises(GreetingRejectedError) as caught:
        convert_greeting(src, tmp_path / "g.wav")
    assert str(caught.value) == (
        f"{src} is silent (no sound above -60 dBFS); record the greeting again and upload that file"
    )
    assert _files(tmp_path) == ["quiet.wav"]


def test_a_wav_with_no_frames_is_refused(tmp_path: Path) -> None:
    src = _write(tmp_path / "empty.wav", array("h"))
    with pytest.raises(GreetingRejectedError, match="holds no audio"):
        convert_greeting(src, tmp_path / "g.wav")


def _not_audio(tmp: Path, kind: str) -> Path:
    if kind == "text-named-wav":
        path = tmp / "notes.wav"
        path.write_text("Hello, this is a text file.\n" * 50)
    elif kind == "riff-header-then-garbage":
        path = tmp / "corrupt.wav"
        rng = random.Random(1)
        path.write_bytes(b"RIFF" + struct.pack("<I", 40000) + b"WAVE" + rng.randbytes(40000))
    elif kind == "random-bytes-named-mp3":
        path = tmp / "noise.mp3"
        path.write_bytes(random.Random(2).randbytes(30000))
    elif kind == "truncated-mp3":
        full = tmp / "full.mp3"
        _ffmpeg("-i", str(_padded(tmp / "t.wav", lead=0.0, amp=0.5)), str(full))
        path = tmp / "truncated.mp3"
        path.write_bytes(full.read_bytes()[:200])
    elif kind == "empty-file":
        path = tmp / "empty.ogg"
        path.write_bytes(b"")
    else:
        raise AssertionError(kind)
    return path


@pytest.mark.parametrize(
    "kind",
    [
        "text-named-wav",
        "riff-header-then-garbage",
        "random-bytes-named-mp3",
        "truncated-mp3",
        "empty-file",
    ],
)
def test_files_that_are_not_audio_are_refused(tmp_path: Path, kind: str) -> None:
    src = _not_audio(tmp_path, kind)
    before = _files(tmp_path)
    with pytest.raises(GreetingRejectedError) as caught:
        convert_greeting(src, tmp_path / "g.wav")
    assert str(caught.value).endswith(f"{src} {NOT_AUDIO}")
    assert isinstance(caught.value, InvalidInputError) and caught.value.exit_code == 2
    assert _files(tmp_path) == before


def test_the_size_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    # A sparse file of zeros: decoded, it would be refused as "not audio" after a long read.
    src = tmp_path / "huge.wav"
    with open(src, "wb") as f:
        f.truncate(MAX_UPLOAD_BYTES + 1)
    started = time.monotonic()
    with pytest.raises(GreetingRejectedError) as caught:
        convert_greeting(src, tmp_path / "g.wav")
    assert time.monotonic() - started < 0.5
    assert str(caught.value) == (
        f"{src} is 20.1 MB, over the 20 MB limit for greeting uploads: upload a shorter "
        "recording or a compressed format (MP3, OGG or M4A)"
    )


def test_exactly_20_mb_is_not_too_large(tmp_path: Path) -> None:
    src = _padded(tmp_path / "big.wav", lead=0.0, tail=0.0, amp=0.5)
    with open(src, "r+b") as f:  # pad with an unknown chunk, which WAV readers skip
        f.seek(0, 2)
        pad = MAX_UPLOAD_BYTES - f.tell() - 8
        f.write(b"junk" + struct.pack("<I", pad))
        f.truncate(MAX_UPLOAD_BYTES)
    assert src.stat().st_size == MAX_UPLOAD_BYTES
    assert convert_greeting(src, tmp_path / "g.wav").duration_s == pytest.approx(3.0, abs=0.02)


def test_missing_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GreetingRejectedError, match="is not a file: give the path"):
        convert_greeting(tmp_path / "nope.mp3", tmp_path / "g.wav")
    with pytest.raises(GreetingRejectedError, match="is not a file"):
        convert_greeting(tmp_path, tmp_path / "g.wav")
    assert _files(tmp_path) == []


# --- writing ------------------------------------------------------------------------------


def test_a_refused_upload_leaves_the_existing_dst_as_it_was(tmp_path: Path) -> None:
    dst = tmp_path / "out" / "g.wav"
    convert_greeting(_padded(tmp_path / "good.wav"), dst)
    before = dst.read_bytes()
    with pytest.raises(GreetingRejectedError):
        convert_greeting(_write(tmp_path / "silent.wav", _silence(2.0)), dst)
    assert dst.read_bytes() == before
    assert _files(dst.parent) == ["g.wav"]


def test_a_failing_converter_leaves_dst_and_no_temporary_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An ffmpeg that decodes normally but fails to resample (disk full, killed...).
    real = shutil.which("ffmpeg")
    assert real is not None
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    fake = fake_bin / "ffmpeg"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *pipe:1*) echo "No space left on device" >&2; exit 1;; esac\n'
        f'exec {real} "$@"\n'
    )
    fake.chmod(0o755)
    out = tmp_path / "out"
    dst = out / "g.wav"
    convert_greeting(_padded(tmp_path / "first.wav"), dst)
    before = dst.read_bytes()
    monkeypatch.setenv("PATH", str(fake_bin))
    src = _write(tmp_path / "wide.wav", tone_samples(TONE_HZ, 2.0, 16000), 16000)
    with pytest.raises(StorageError, match=r"resample .* No space left on device"):
        convert_greeting(src, dst)
    assert dst.read_bytes() == before
    assert _files(out) == ["g.wav"]
