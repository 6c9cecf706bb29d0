"""Make test tones and find them again in recordings, without numpy.

Samples are signed 16-bit integers (``array('h')``, full scale ±32767), one channel,
``rate`` samples per second. Frequencies are in Hz, durations in seconds.

Detection uses the Goertzel algorithm evaluated at the exact requested frequency (the
generalised form: the frequency is not rounded to a DFT bin, so 697 Hz is measured at 697 Hz
whatever the block length). The signal is cut into Hann-windowed blocks of
:data:`BLOCK_S` overlapping by half, and the powers of the blocks are averaged. The blocks
are short on purpose, whatever the sample rate: a tone a few Hz off still counts (5 Hz off
keeps 95 % of its power, 12.5 Hz off 72 %, 25 Hz off 25 %) while neighbouring DTMF
frequencies stay apart (nothing passes beyond ±50 Hz; 697 and 770 Hz are 73 Hz apart).
Powers are in "full-scale" units: a sine with a peak of ``a`` times full scale has power
``a**2 / 2`` (a full-scale sine is 0.5, i.e. 0 dBFS).
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final

from sipvm.audio.convert import decode_pcm16_mono

FULL_SCALE: Final = 32767
"""Largest sample value written; samples are read back relative to this."""

BLOCK_S: Final = 0.04
"""Length of one Goertzel block in seconds (40 ms: 320 samples at 8 kHz)."""

DEFAULT_MIN_DBFS: Final = -60.0
"""Signals quieter than this (dB relative to a full-scale sine) count as silence."""


def _check_rate(rate: int) -> None:
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, not {rate}")


def _check_freq(freq_hz: float, rate: int) -> None:
    _check_rate(rate)
    if not 0 < freq_hz < rate / 2:
        raise ValueError(
            f"frequency {freq_hz} Hz is outside 0..{rate / 2} Hz (half the sample rate {rate})"
        )


def _check_amplitude(amplitude: float) -> None:
    if not 0 <= amplitude <= 1:
        raise ValueError(f"amplitude is a fraction of full scale (0..1), not {amplitude}")


def _frames(seconds: float, rate: int) -> int:
    _check_rate(rate)
    if seconds < 0:
        raise ValueError(f"duration must not be negative, not {seconds} s")
    return round(seconds * rate)


def _sum_of_sines(freqs_hz: Sequence[float], seconds: float, rate: int, peak: float) -> array[int]:
    """Equal-amplitude sines whose peaks add up to at most ``peak`` (sample units)."""
    n = _frames(seconds, rate)
    for f in freqs_hz:
        _check_freq(f, rate)
    if not freqs_hz:
        return array("h", bytes(2 * n))
    each = peak / len(freqs_hz)
    steps = [2 * math.pi * f / rate for f in freqs_hz]
    return array("h", (round(each * sum(math.sin(w * i) for w in steps)) for i in range(n)))


def tone_samples(
    freq_hz: float, seconds: float, rate: int = 8000, amplitude: float = 0.5
) -> array[int]:
    """A sine tone as signed 16-bit mono samples.

    Args:
        freq_hz: tone frequency in Hz, above 0 and below ``rate / 2``.
        seconds: duration in seconds; the tone has ``round(seconds * rate)`` samples.
        rate: sample rate in Hz.
        amplitude: peak as a fraction of full scale (0..1); 0.5 peaks at ±16384.

    Returns:
        ``array('h')`` starting at phase 0.
    """
    _check_amplitude(amplitude)
    return _sum_of_sines([freq_hz], seconds, rate, amplitude * FULL_SCALE)


def _write_wav(path: Path, samples: array[int], rate: int) -> Path:
    data = samples
    if sys.byteorder == "big":
        data = array("h", samples)
        data.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


def write_tone_wav(
    path: Path,
    freqs_hz: Sequence[float] | float,
    seconds: float,
    rate: int = 8000,
    amplitude: float = 0.5,
) -> Path:
    """Write a 16-bit mono PCM WAV holding one tone or a sum of tones.

    Args:
        path: the file to write (replaced if it exists).
        freqs_hz: one frequency in Hz, or several (e.g. ``(697, 1209)`` for DTMF "1").
            Several frequencies get equal amplitudes of ``amplitude / len(freqs_hz)``, so
            the sum never exceeds ``amplitude`` and never clips.
        seconds: duration in seconds.
        rate: sample rate in Hz.
        amplitude: peak of the whole signal as a fraction of full scale (0..1).

    Returns:
        ``path``.
    """
    _check_amplitude(amplitude)
    freqs = [float(freqs_hz)] if isinstance(freqs_hz, int | float) else list(freqs_hz)
    if not freqs:
        raise ValueError("give at least one frequency (use write_silence_wav for silence)")
    return _write_wav(path, _sum_of_sines(freqs, seconds, rate, amplitude * FULL_SCALE), rate)


def write_silence_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    """Write a 16-bit mono PCM WAV of digital silence (all samples 0).

    Args:
        path: the file to write (replaced if it exists).
        seconds: duration in seconds.
        rate: sample rate in Hz.

    Returns:
        ``path``.
    """
    return _write_wav(path, array("h", bytes(2 * _frames(seconds, rate))), rate)


def read_pcm_mono(path: Path, rate: int = 8000) -> array[int]:
    """Decode any audio file ffmpeg reads into signed 16-bit mono samples at ``rate``.

    WAVs of any sample width, rate and channel count (PCM, A-law, µ-law, float), MP3, OGG,
    FLAC and the rest are decoded by ffmpeg (see :func:`sipvm.audio.convert.decode_pcm16_mono`),
    resampled to ``rate`` Hz and mixed down to one channel.

    Raises:
        sipvm.errors.CorruptAudioError: the file cannot be decoded.
        sipvm.errors.StorageError: ffmpeg is not installed.
    """
    pcm, _ = decode_pcm16_mono(path, rate)
    samples = array("h")
    samples.frombytes(pcm)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


@lru_cache(maxsize=16)
def _hann(n: int) -> tuple[float, ...]:
    """Periodic Hann window of ``n`` points (rectangular below 4 points)."""
    if n < 4:
        return (1.0,) * n
    return tuple(0.5 - 0.5 * math.cos(2 * math.pi * i / n) for i in range(n))


def _blocks(samples: Sequence[int], rate: int) -> list[list[float]]:
    """Hann-windowed blocks of :data:`BLOCK_S`, overlapping by half, covering every sample.

    A signal shorter than one block is one block. Samples are scaled to full scale = 1.
    """
    n = len(samples)
    if n == 0:
        return []
    size = min(n, max(1, round(rate * BLOCK_S)))
    hop = max(1, size // 2)
    starts = list(range(0, n - size + 1, hop))
    if starts[-1] + size < n:
        starts.append(n - size)
    window = _hann(size)
    scale = 1.0 / FULL_SCALE
    return [
        [w * s * scale for w, s in zip(window, samples[st : st + size], strict=True)]
        for st in starts
    ]


def _window_sums(size: int) -> tuple[float, float]:
    window = _hann(size)
    return sum(window), sum(w * w for w in window)


def _tone_power(blocks: list[list[float]], rate: int, freq_hz: float) -> float:
    """Mean power of ``freq_hz`` over the blocks, in full-scale units."""
    if not blocks:
        return 0.0
    coeff = 2.0 * math.cos(2.0 * math.pi * freq_hz / rate)
    total = 0.0
    for block in blocks:
        s1 = s2 = 0.0
        for x in block:
            s1, s2 = x + coeff * s1 - s2, s1
        # |X(f)|^2 of the block: exact for any f, not only bin centres.
        total += s1 * s1 + s2 * s2 - coeff * s1 * s2
    win_sum, _ = _window_sums(len(blocks[0]))
    # A sine of peak a gives |X| = a * win_sum / 2, so this is a**2 / 2.
    return 2.0 * total / (len(blocks) * win_sum * win_sum)


def _signal_power(blocks: list[list[float]]) -> float:
    """Mean power of the whole signal with the same windowing, in full-scale units."""
    if not blocks:
        return 0.0
    _, win_sq = _window_sums(len(blocks[0]))
    return sum(x * x for block in blocks for x in block) / (len(blocks) * win_sq)


def goertzel_power(samples: Sequence[int], rate: int, freq_hz: float) -> float:
    """Power of one frequency in a signal, normalised to full scale.

    Args:
        samples: signed 16-bit samples (``array('h')`` or a list of ints).
        rate: sample rate in Hz.
        freq_hz: the frequency to measure, above 0 and below ``rate / 2``; it need not fall
            on a DFT bin.

    Returns:
        The mean power of that frequency over the signal: ``a**2 / 2`` for a sine with a peak
        of ``a`` times full scale (0.125 for the default ``amplitude=0.5`` tone), about 0 when it
        is absent. Compare it with the signal's total power (see :func:`tone_present`).
        Components a few Hz away count almost fully, 25 Hz away a quarter, beyond 50 Hz
        not at all (see the module docstring).
    """
    _check_freq(freq_hz, rate)
    return _tone_power(_blocks(samples, rate), rate, freq_hz)


def _ratio_if_audible(
    blocks: list[list[float]], rate: int, freq_hz: float, min_dbfs: float
) -> float:
    signal = _signal_power(blocks)
    if signal <= 0 or 10 * math.log10(signal / 0.5) < min_dbfs:
        return 0.0
    return _tone_power(blocks, rate, freq_hz) / signal


def tone_present(
    samples: Sequence[int],
    rate: int,
    freq_hz: float,
    *,
    min_ratio: float = 0.5,
    min_dbfs: float = DEFAULT_MIN_DBFS,
) -> bool:
    """Whether a frequency carries at least ``min_ratio`` of the signal's energy.

    Args:
        samples: signed 16-bit samples.
        rate: sample rate in Hz.
        freq_hz: the frequency in Hz, above 0 and below ``rate / 2``.
        min_ratio: fraction (0..1] of the total energy the frequency must carry. A clean
            tone gives about 1.0; each half of a two-tone (DTMF) pair gives about 0.5, so
            check pairs with a lower value such as 0.3.
        min_dbfs: a signal whose total power is below this level (dB relative to a
            full-scale sine) is silence and holds no tone, whatever its spectrum.

    Returns:
        ``True`` when the tone is there.
    """
    _check_freq(freq_hz, rate)
    if not 0 < min_ratio <= 1:
        raise ValueError(f"min_ratio is a fraction in (0, 1], not {min_ratio}")
    blocks = _blocks(samples, rate)
    return _ratio_if_audible(blocks, rate, freq_hz, min_dbfs) >= min_ratio


def seconds_with_tone(
    samples: Sequence[int],
    rate: int,
    freq_hz: float,
    *,
    window_s: float = 0.5,
    min_ratio: float = 0.5,
    min_dbfs: float = DEFAULT_MIN_DBFS,
) -> float:
    """How many seconds of a signal carry a tone.

    The signal is cut into consecutive windows of ``window_s`` seconds (the last one may be
    shorter); every window where :func:`tone_present` holds counts with its length. The
    result is therefore accurate to about one window at each edge of the tone: 3 s of tone
    followed by 2 s of silence gives 3.0 ± 0.5 with the default window.

    Args:
        samples: signed 16-bit samples.
        rate: sample rate in Hz.
        freq_hz: the frequency in Hz, above 0 and below ``rate / 2``.
        window_s: window length in seconds.
        min_ratio: as for :func:`tone_present`.
        min_dbfs: as for :func:`tone_present`.

    Returns:
        Seconds (a multiple of ``window_s``, plus possibly the last short window).
    """
    _check_freq(freq_hz, rate)
    if not 0 < min_ratio <= 1:
        raise ValueError(f"min_ratio is a fraction in (0, 1], not {min_ratio}")
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, not {window_s}")
    step = max(1, round(window_s * rate))
    found = 0
    for start in range(0, len(samples), step):
        window = samples[start : start + step]
        blocks = _blocks(window, rate)
        if _ratio_if_audible(blocks, rate, freq_hz, min_dbfs) >= min_ratio:
            found += len(window)
    return found / rate


def dominant_frequency(samples: Sequence[int], rate: int, candidates: Sequence[float]) -> float:
    """The candidate frequency with the most power in the signal.

    Args:
        samples: signed 16-bit samples.
        rate: sample rate in Hz.
        candidates: frequencies in Hz to compare (each above 0 and below ``rate / 2``).

    Returns:
        The candidate with the highest :func:`goertzel_power`; the first of them on a tie
        (e.g. for silence, where all are 0).
    """
    if not candidates:
        raise ValueError("give at least one candidate frequency")
    for f in candidates:
        _check_freq(f, rate)
    blocks = _blocks(samples, rate)
    return max(candidates, key=lambda f: _tone_power(blocks, rate, f))
