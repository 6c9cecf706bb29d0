"""Tone generation and detection kit (tests.support.tones)."""

from __future__ import annotations

import math
import subprocess
import wave
from array import array
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import pytest

from sipvm.errors import CorruptAudioError
from tests.support.tones import (
    FULL_SCALE,
    dominant_frequency,
    goertzel_power,
    read_pcm_mono,
    seconds_with_tone,
    tone_present,
    tone_samples,
    write_silence_wav,
    write_tone_wav,
)

RATE = 8000
DTMF_LOW = (697.0, 770.0, 852.0, 941.0)
DTMF_HIGH = (1209.0, 1336.0, 1477.0, 1633.0)


def _zero_crossings(samples: array[int]) -> int:
    return sum(1 for a, b in pairwise(samples) if (a < 0) != (b < 0))


def _wav_samples(path: Path) -> tuple[tuple[int, int, int, int], array[int]]:
    """((channels, sample width in bytes, rate, frames), samples) of a 16-bit WAV."""
    with wave.open(str(path), "rb") as w:
        params = (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes())
        data = array("h")
        data.frombytes(w.readframes(w.getnframes()))
    return params, data


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


# --- generation ---------------------------------------------------------------------------


def test_tone_samples_length_peak_and_frequency() -> None:
    samples = tone_samples(440, 1.5, rate=RATE, amplitude=0.5)
    assert samples.typecode == "h"
    assert len(samples) == 12000
    assert samples[0] == 0
    # The 440 Hz peak falls between samples, within one sample step of the true peak.
    assert 0.5 * FULL_SCALE * 0.98 <= max(samples) <= round(0.5 * FULL_SCALE)
    assert -round(0.5 * FULL_SCALE) <= min(samples) <= -0.5 * FULL_SCALE * 0.98
    # 440 cycles per second cross zero 880 times a second.
    assert abs(_zero_crossings(samples) - 1.5 * 880) <= 2


def test_tone_samples_other_rate_and_amplitude() -> None:
    samples = tone_samples(1000, 0.25, rate=16000, amplitude=1.0)
    assert len(samples) == 4000
    assert max(samples) == FULL_SCALE  # 1000 Hz at 16 kHz hits the peak exactly
    assert abs(_zero_crossings(samples) - 500) <= 2


@pytest.mark.parametrize(
    ("freq", "seconds", "amplitude"),
    [(0, 1, 0.5), (4000, 1, 0.5), (-5, 1, 0.5), (440, -1, 0.5), (440, 1, 1.5), (440, 1, -0.1)],
)
def test_tone_samples_rejects_impossible_values(
    freq: float, seconds: float, amplitude: float
) -> None:
    with pytest.raises(ValueError):
        tone_samples(freq, seconds, rate=RATE, amplitude=amplitude)


def test_write_tone_wav_is_16_bit_mono_pcm_of_the_tone(tmp_path: Path) -> None:
    path = write_tone_wav(tmp_path / "t.wav", 440, 2.0, rate=RATE, amplitude=0.5)
    assert path == tmp_path / "t.wav"
    params, data = _wav_samples(path)
    assert params == (1, 2, RATE, 16000)
    assert data == tone_samples(440, 2.0, rate=RATE, amplitude=0.5)


def test_write_tone_wav_pair_sums_without_clipping(tmp_path: Path) -> None:
    path = write_tone_wav(tmp_path / "dtmf1.wav", (697, 1209), 1.0, rate=RATE, amplitude=1.0)
    _, data = _wav_samples(path)
    expected = [
        round(
            FULL_SCALE
            / 2
            * (math.sin(2 * math.pi * 697 * i / RATE) + math.sin(2 * math.pi * 1209 * i / RATE))
        )
        for i in range(RATE)
    ]
    assert list(data) == expected
    # Never clips, yet the sum really reaches (nearly) full scale: the scaling is not wasteful.
    assert max(abs(v) for v in data) <= FULL_SCALE
    assert max(abs(v) for v in data) >= 0.98 * FULL_SCALE


def test_write_tone_wav_needs_a_frequency(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one frequency"):
        write_tone_wav(tmp_path / "x.wav", [], 1.0)
    assert not (tmp_path / "x.wav").exists()


def test_write_silence_wav(tmp_path: Path) -> None:
    path = write_silence_wav(tmp_path / "s.wav", 0.75, rate=16000)
    params, data = _wav_samples(path)
    assert params == (1, 2, 16000, 12000)
    assert len(data) == 12000
    assert not any(data)


# --- detection ----------------------------------------------------------------------------


def test_goertzel_power_of_a_sine_is_half_its_squared_peak() -> None:
    samples = tone_samples(1000, 1.0, rate=RATE, amplitude=0.5)
    assert goertzel_power(samples, RATE, 1000) == pytest.approx(0.125, rel=0.01)
    assert goertzel_power(samples, RATE, 440) < 1e-6
    assert goertzel_power(tone_samples(440, 1.0, amplitude=0.25), RATE, 440) == pytest.approx(
        0.03125, rel=0.01
    )


@pytest.mark.parametrize(
    ("freq", "rate", "seconds"),
    [
        (697, 8000, 0.1),
        (941, 8000, 0.0256),
        (1633, 8000, 0.3),
        (1000.5, 8000, 1.0),
        (440, 44100, 0.5),
    ],
)
def test_goertzel_is_exact_off_bin_centres(freq: float, rate: int, seconds: float) -> None:
    # None of these frequencies is a whole number of cycles per block or per signal.
    samples = tone_samples(freq, seconds, rate=rate, amplitude=0.5)
    assert goertzel_power(samples, rate, freq) == pytest.approx(0.125, rel=0.03)


def test_440_and_1000_are_told_apart() -> None:
    a = tone_samples(440, 1.0)
    b = tone_samples(1000, 1.0)
    assert tone_present(a, RATE, 440)
    assert not tone_present(a, RATE, 1000)
    assert tone_present(b, RATE, 1000)
    assert not tone_present(b, RATE, 440)
    assert dominant_frequency(a, RATE, [1000, 440]) == 440
    assert dominant_frequency(b, RATE, [440, 1000]) == 1000


def test_dtmf_pair_both_found_and_neighbour_not(tmp_path: Path) -> None:
    samples = read_pcm_mono(write_tone_wav(tmp_path / "1.wav", (697, 1209), 0.5))
    total = sum((v / FULL_SCALE) ** 2 for v in samples) / len(samples)
    assert goertzel_power(samples, RATE, 697) / total == pytest.approx(0.5, abs=0.03)
    assert goertzel_power(samples, RATE, 1209) / total == pytest.approx(0.5, abs=0.03)
    assert goertzel_power(samples, RATE, 770) / total < 0.01
    assert tone_present(samples, RATE, 697, min_ratio=0.4)
    assert tone_present(samples, RATE, 1209, min_ratio=0.4)
    assert not tone_present(samples, RATE, 770, min_ratio=0.1)
    assert not tone_present(samples, RATE, 1336, min_ratio=0.1)
    assert dominant_frequency(samples, RATE, DTMF_LOW) == 697
    assert dominant_frequency(samples, RATE, DTMF_HIGH) == 1209


@pytest.mark.parametrize(("low", "high"), [(770, 1336), (852, 1477), (941, 1633)])
def test_every_dtmf_row_and_column_found(low: float, high: float) -> None:
    pair = array(
        "h",
        (
            a + b
            for a, b in zip(
                tone_samples(low, 0.1, amplitude=0.4),
                tone_samples(high, 0.1, amplitude=0.4),
                strict=True,
            )
        ),
    )
    assert dominant_frequency(pair, RATE, DTMF_LOW) == low
    assert dominant_frequency(pair, RATE, DTMF_HIGH) == high


def test_tone_is_found_a_few_hz_off_but_not_a_neighbour_away() -> None:
    slightly_off = tone_samples(1003, 1.0)
    assert tone_present(slightly_off, RATE, 1000, min_ratio=0.9)
    assert not tone_present(tone_samples(1060, 1.0), RATE, 1000, min_ratio=0.01)


def test_silence_and_noise_floor_hold_no_tone() -> None:
    silence = array("h", bytes(2 * RATE))
    assert goertzel_power(silence, RATE, 1000) == 0.0
    assert not tone_present(silence, RATE, 1000, min_ratio=0.01)
    assert seconds_with_tone(silence, RATE, 1000) == 0.0
    # A 1000 Hz tone at about -70 dBFS is below the default silence floor of -60 dBFS.
    faint = tone_samples(1000, 1.0, amplitude=10**-3.5)
    assert max(faint) == 10
    assert not tone_present(faint, RATE, 1000)
    assert tone_present(faint, RATE, 1000, min_dbfs=-80.0)


def test_empty_signal_holds_no_tone() -> None:
    assert goertzel_power(array("h"), RATE, 1000) == 0.0
    assert not tone_present([], RATE, 1000)
    assert seconds_with_tone([], RATE, 1000) == 0.0


def test_seconds_with_tone_counts_tone_not_silence(tmp_path: Path) -> None:
    samples = tone_samples(1000, 3.0) + array("h", bytes(2 * 2 * RATE))
    assert len(samples) == 5 * RATE
    assert seconds_with_tone(samples, RATE, 1000) == pytest.approx(3.0, abs=0.5)
    assert seconds_with_tone(samples, RATE, 440) == 0.0
    # Tone starting off a window edge: 0.3 s silence, 2 s tone, 0.7 s silence.
    shifted = array("h", bytes(2 * 2400)) + tone_samples(1000, 2.0) + array("h", bytes(2 * 5600))
    assert seconds_with_tone(shifted, RATE, 1000, window_s=0.1) == pytest.approx(2.0, abs=0.1)


def test_seconds_with_tone_of_a_file_read_back(tmp_path: Path) -> None:
    tone = write_tone_wav(tmp_path / "tone.wav", 1000, 3.0)
    quiet = write_silence_wav(tmp_path / "quiet.wav", 2.0)
    joined = read_pcm_mono(tone) + read_pcm_mono(quiet)
    assert seconds_with_tone(joined, RATE, 1000) == pytest.approx(3.0, abs=0.5)


@pytest.mark.parametrize(
    ("func", "args"),
    [
        (goertzel_power, (RATE, 4000)),
        (goertzel_power, (RATE, 0)),
        (goertzel_power, (0, 1000)),
        (tone_present, (RATE, 5000)),
        (seconds_with_tone, (RATE, -1)),
    ],
)
def test_detectors_reject_frequencies_outside_the_band(
    func: Callable[..., object], args: tuple[int, float]
) -> None:
    with pytest.raises(ValueError):
        func(tone_samples(1000, 0.1), *args)


def test_detector_argument_checks() -> None:
    samples = tone_samples(1000, 0.1)
    with pytest.raises(ValueError):
        tone_present(samples, RATE, 1000, min_ratio=0)
    with pytest.raises(ValueError):
        seconds_with_tone(samples, RATE, 1000, window_s=0)
    with pytest.raises(ValueError):
        dominant_frequency(samples, RATE, [])


# --- decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "ffmpeg_args", "exact_length"),
    [
        (
            "s24_44k_stereo.wav",
            # Same signal on both channels (plain "-ac 2" would put it 3 dB lower on each).
            ("-ar", "44100", "-af", "pan=stereo|c0=c0|c1=c0", "-c:a", "pcm_s24le"),
            True,
        ),
        ("u8.wav", ("-c:a", "pcm_u8"), True),
        ("float_16k.wav", ("-ar", "16000", "-c:a", "pcm_f32le"), True),
        ("alaw.wav", ("-c:a", "pcm_alaw"), True),
        ("lossless.flac", ("-ar", "22050", "-c:a", "flac"), True),
        ("lossy.mp3", ("-c:a", "libmp3lame", "-b:a", "32k"), False),
        ("lossy.ogg", ("-ar", "16000", "-c:a", "libvorbis"), False),
    ],
)
def test_read_pcm_mono_decodes_any_format(
    tmp_path: Path, name: str, ffmpeg_args: tuple[str, ...], exact_length: bool
) -> None:
    src = write_tone_wav(tmp_path / "src.wav", 1000, 2.0)
    converted = tmp_path / name
    _ffmpeg("-i", str(src), *ffmpeg_args, str(converted))
    samples = read_pcm_mono(converted, rate=RATE)
    assert samples.typecode == "h"
    if exact_length:
        assert abs(len(samples) - 2 * RATE) <= 2
    else:
        assert abs(len(samples) - 2 * RATE) <= 0.05 * RATE
    assert seconds_with_tone(samples, RATE, 1000, window_s=0.25, min_ratio=0.8) == pytest.approx(
        2.0, abs=0.25
    )
    assert not tone_present(samples, RATE, 440, min_ratio=0.05)
    # Level is kept (0.5 of full scale: power 0.125), whatever the width and the channels.
    assert goertzel_power(samples, RATE, 1000) == pytest.approx(0.125, rel=0.1)


def test_read_pcm_mono_resamples_to_the_requested_rate(tmp_path: Path) -> None:
    src = write_tone_wav(tmp_path / "src.wav", 1000, 1.0, rate=RATE)
    samples = read_pcm_mono(src, rate=16000)
    assert abs(len(samples) - 16000) <= 2  # the resampler may drop a sample at the end
    assert tone_present(samples, 16000, 1000, min_ratio=0.9)
    assert abs(_zero_crossings(samples) - 2000) <= 4


def test_read_pcm_mono_keeps_16_bit_samples_exactly(tmp_path: Path) -> None:
    samples = tone_samples(697, 0.3, amplitude=0.3)
    src = write_tone_wav(tmp_path / "t.wav", 697, 0.3, amplitude=0.3)
    assert read_pcm_mono(src) == samples


def test_read_pcm_mono_of_garbage_is_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio\n")
    with pytest.raises(CorruptAudioError, match=r"bad\.wav"):
        read_pcm_mono(bad)
