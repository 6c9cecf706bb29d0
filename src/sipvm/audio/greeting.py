"""Greeting uploads: any common audio format in, an 8 kHz mono 16-bit WAV out.

Through pydub (``audio.convert.load_audio``): mixed to mono, resampled to the bridge rate,
loudness evened out (RMS to -20 dBFS, the peak kept at or below -1 dBFS), silence trimmed at
both ends (100 ms kept). Limits: 20 MB in, 120 s after trimming, at least 0.5 s of sound.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sipvm.audio.convert import load_audio, pydub_modules
from sipvm.errors import CorruptAudioError, InvalidInputError

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_GREETING_S = 120.0
MIN_GREETING_S = 0.5
TARGET_RMS_DBFS = -20.0
MAX_PEAK_DBFS = -1.0
KEEP_SILENCE_MS = 100
SILENCE_DBFS = -60.0
FORMATS = "WAV, MP3, OGG, M4A/AAC or FLAC"


class GreetingRejectedError(InvalidInputError):
    """An upload that cannot become a greeting; the message says why and what to do."""


@dataclass(frozen=True)
class GreetingInfo:
    """What the converted greeting measures."""

    duration_s: float
    peak_dbfs: float
    rms_dbfs: float


def convert_greeting(src: Path, dst: Path, *, rate: int = 8000) -> GreetingInfo:
    """Convert ``src`` to a greeting WAV at ``dst`` (written atomically)."""
    size = src.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise GreetingRejectedError(
            f"{src.name} is {size / 1e6:.1f} MB, over the {MAX_UPLOAD_BYTES // 2**20} MB limit "
            "for greetings; upload a shorter or more compressed file (e.g. MP3)"
        )
    try:
        segment = load_audio(src)
    except CorruptAudioError as exc:
        raise GreetingRejectedError(
            f"{src.name} is not an audio file sipvm can read: upload {FORMATS}"
        ) from exc
    if segment.frame_count() == 0:
        raise GreetingRejectedError(f"{src.name} holds no audio: upload {FORMATS}")
    segment = segment.set_channels(1).set_sample_width(2).set_frame_rate(rate)
    if segment.max_dBFS < SILENCE_DBFS:
        segment = segment[:0]  # nothing louder than the noise floor: all silence
    segment = _trim(segment)
    duration = len(segment) / 1000
    if duration < MIN_GREETING_S:
        raise GreetingRejectedError(
            f"{src.name} is silent (or under {MIN_GREETING_S} s of sound); record it again"
        )
    if duration > MAX_GREETING_S:
        raise GreetingRejectedError(
            f"{src.name} is {duration:.0f} s long (without its leading and trailing silence); "
            f"greetings may be at most {MAX_GREETING_S:.0f} s"
        )
    segment = _level(segment)
    _write(segment, dst)
    return GreetingInfo(duration, float(segment.max_dBFS), float(segment.dBFS))


def _trim(segment: Any) -> Any:
    pydub, _ = pydub_modules()
    detect = pydub.silence.detect_leading_silence
    # Silence is judged against the recording's own level, so quiet and loud files both trim.
    if len(segment) == 0:
        return segment
    threshold = min(max(segment.max_dBFS - 40.0, -70.0), -45.0)
    start = detect(segment, silence_threshold=threshold)
    end = detect(segment.reverse(), silence_threshold=threshold)
    if start >= len(segment):
        return segment[:0]
    start = max(0, start - KEEP_SILENCE_MS)
    stop = min(len(segment), len(segment) - end + KEEP_SILENCE_MS)
    return segment[start:stop]


def _level(segment: Any) -> Any:
    gain = TARGET_RMS_DBFS - segment.dBFS
    gain = min(gain, MAX_PEAK_DBFS - segment.max_dBFS)  # never clip
    return segment.apply_gain(gain)


def _write(segment: Any, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        with open(tmp, "wb+") as out:
            segment.export(out, format="wav")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
