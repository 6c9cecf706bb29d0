"""Greeting uploads: any common audio format in, an evened-out mono 16-bit WAV out.

:func:`convert_greeting` works in this order, and each step is why the next one can be simple:

1. **Size** — more than :data:`MAX_UPLOAD_BYTES` is refused before anything is decoded.
2. **Decode** with :func:`sipvm.audio.convert.load_audio` (pydub and ffmpeg, or sipvm's own WAV
   reader for PCM, A-law and µ-law), mix to mono, 16-bit.
3. **Resample** with ffmpeg's resampler, not pydub's ``set_frame_rate``: pydub's
   (``audioop.ratecv``) has no low-pass filter, so a 44.1 kHz recording's sibilants (4-11 kHz)
   would fold back into the telephone band as noise.
4. **Measure** the speech level: the mean power of the 50 ms frames that carry sound (gated
   like EBU R128: an absolute gate at :data:`SILENCE_DBFS`, then a relative one
   :data:`RELATIVE_GATE_DB` below the mean of what passed), so pauses and padding do not drag
   the level down. No frame above the absolute gate: the file is silent.
5. **Level**: one gain bringing that level to :data:`TARGET_RMS_DBFS`, lowered if needed so the
   peak stays at or below :data:`MAX_PEAK_DBFS` (never clips).
6. **Trim** leading and trailing silence with ``pydub.silence``; the threshold is
   :data:`TRIM_BELOW_LEVEL_DB` below the levelled speech level, so quiet and loud recordings
   trim alike, and :data:`KEEP_SILENCE_MS` of margin is kept at each end.
7. **Check length** of the sound, from its first to its last non-silent moment: at least
   :data:`MIN_GREETING_S`, at most :data:`MAX_GREETING_S`. Silence at the ends, and the margins
   kept, do not count against either limit.
8. **Write** ``dst`` durably: a temporary file beside it, fsync, rename, fsync of the directory.

Every refusal is a :class:`GreetingRejectedError` (an ``InvalidInputError``, exit code 2) whose
message says what was wrong and what to do.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sipvm.audio.convert import load_audio, pydub_modules, write_segment
from sipvm.errors import CorruptAudioError, InvalidInputError, StorageError

MAX_UPLOAD_BYTES: Final = 20 * 1024 * 1024
"""Largest file accepted (20 MB), checked before decoding."""

MAX_GREETING_S: Final = 120.0
"""Longest greeting: first to last non-silent moment (silence at the ends does not count)."""

MIN_GREETING_S: Final = 0.5
"""Shortest greeting, measured like :data:`MAX_GREETING_S`."""

TARGET_RMS_DBFS: Final = -20.0
"""Speech level greetings are brought to (RMS, dB relative to full scale)."""

MAX_PEAK_DBFS: Final = -1.0
"""Highest peak after levelling: the gain is capped so that no sample goes above it."""

SILENCE_DBFS: Final = -60.0
"""Absolute gate: 50 ms frames quieter than this never count as sound."""

RELATIVE_GATE_DB: Final = 10.0
"""Relative gate: frames this far below the mean of the sounding frames are pauses."""

TRIM_BELOW_LEVEL_DB: Final = 35.0
"""Trimming threshold: this far below the levelled speech level counts as silence."""

KEEP_SILENCE_MS: Final = 100
"""Silence kept before the first and after the last sound."""

FRAME_MS: Final = 50
"""Frame length for the level measurement."""

TRIM_STEP_MS: Final = 10
"""Resolution of the trimming."""

UPLOAD_FORMATS: Final = "WAV, MP3, OGG, M4A or FLAC"


class GreetingRejectedError(InvalidInputError):
    """An upload that cannot become a greeting; the message says why and what to do."""


@dataclass(frozen=True)
class GreetingInfo:
    """What the converted greeting measures."""

    duration_s: float
    """Length of the written greeting (trimmed, margins included)."""
    peak_dbfs: float
    """Highest sample, dB relative to full scale (at most :data:`MAX_PEAK_DBFS`)."""
    rms_dbfs: float
    """RMS of the whole written greeting, margins included, dB relative to full scale."""


def convert_greeting(src: Path, dst: Path, *, rate: int = 8000) -> GreetingInfo:
    """Convert the audio file ``src`` into a greeting WAV at ``dst`` (mono, 16-bit, ``rate``).

    ``dst`` is either left as it was or replaced whole by the new, fsynced file; its directory
    is created if needed. Blocks for as long as decoding takes (run it in a thread).

    Raises:
        GreetingRejectedError: ``src`` is too large, not decodable audio, silent, or too short
            or too long once trimmed.
        StorageError: ffmpeg is missing, or ``dst`` cannot be written.
    """
    segment = _decode(src)
    segment = _resample(segment.set_channels(1).set_sample_width(2), rate)
    level = speech_level_dbfs(segment)
    if level is None:
        raise GreetingRejectedError(
            f"{src} is silent (no sound above {SILENCE_DBFS:.0f} dBFS); "
            "record the greeting again and upload that file"
        )
    gain = min(TARGET_RMS_DBFS - level, MAX_PEAK_DBFS - float(segment.max_dBFS))
    segment = segment.apply_gain(gain)
    segment, sound_s = _trim(segment, threshold_dbfs=level + gain - TRIM_BELOW_LEVEL_DB)
    if sound_s < MIN_GREETING_S:
        raise GreetingRejectedError(
            f"{src} has only {sound_s:.1f} s of sound once the silence at its ends is trimmed; "
            f"greetings need at least {MIN_GREETING_S} s: record a longer greeting"
        )
    if sound_s > MAX_GREETING_S:
        raise GreetingRejectedError(
            f"{src} is {sound_s:.1f} s long even without the silence at its ends; greetings "
            f"may be at most {MAX_GREETING_S:.0f} s: shorten it and upload it again"
        )
    _write(segment, dst)
    return GreetingInfo(
        duration_s=segment.frame_count() / rate,
        peak_dbfs=float(segment.max_dBFS),
        rms_dbfs=float(segment.dBFS),
    )


def speech_level_dbfs(segment: Any) -> float | None:
    """Gated RMS level of a 16-bit mono segment in dBFS; None when nothing is above the gate.

    The segment is cut into :data:`FRAME_MS` frames; frames under :data:`SILENCE_DBFS` are
    dropped, then frames more than :data:`RELATIVE_GATE_DB` below the mean power of the rest.
    The result is the mean power of what remains: the level of the speech, not of the pauses.
    """
    _, audioop = pydub_modules()
    raw = bytes(segment.raw_data)
    step = max(2, segment.frame_rate * FRAME_MS // 1000 * 2)
    full_scale = float(1 << 15)
    powers = [
        (audioop.rms(raw[i : i + step], 2) / full_scale) ** 2 for i in range(0, len(raw), step)
    ]
    floor = 10 ** (SILENCE_DBFS / 10)
    sounding = [p for p in powers if p >= floor]
    if not sounding:
        return None
    relative = sum(sounding) / len(sounding) * 10 ** (-RELATIVE_GATE_DB / 10)
    speech = [p for p in sounding if p >= relative]
    return 10 * math.log10(sum(speech) / len(speech))


def _decode(src: Path) -> Any:
    not_audio = f"{src} is not an audio file sipvm can read: upload {UPLOAD_FORMATS}"
    try:
        if not src.is_file():
            raise GreetingRejectedError(f"{src} is not a file: give the path of an audio file")
        size = src.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise GreetingRejectedError(
                f"{src} is {math.ceil(size / 2**20 * 10) / 10:.1f} MB, over the "
                f"{MAX_UPLOAD_BYTES // 2**20} MB limit "
                "for greeting uploads: upload a shorter recording or a compressed format "
                "(MP3, OGG or M4A)"
            )
        if size == 0:
            raise GreetingRejectedError(not_audio)  # ffmpeg would say no more than that
        segment = load_audio(src)
    except CorruptAudioError as exc:
        raise GreetingRejectedError(not_audio) from exc
    except OSError as exc:
        raise GreetingRejectedError(
            f"cannot read {src}: {exc.strerror or exc}; check the path and its permissions"
        ) from exc
    if segment.frame_count() == 0:
        raise GreetingRejectedError(
            f"{src} holds no audio: record the greeting again and upload that file"
        )
    return segment


def _resample(segment: Any, rate: int) -> Any:
    """``segment`` (16-bit mono) at ``rate``, through ffmpeg's band-limited resampler."""
    if segment.frame_rate == rate:
        return segment
    pydub, _ = pydub_modules()  # also: StorageError when ffmpeg is missing
    ffmpeg = shutil.which("ffmpeg") or "ffmpeg"
    raw_in = ["-f", "s16le", "-ac", "1", "-ar", str(segment.frame_rate), "-i", "pipe:0"]
    raw_out = ["-f", "s16le", "-ac", "1", "-ar", str(rate), "pipe:1"]
    result = subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", *raw_in, *raw_out],
        input=bytes(segment.raw_data),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        raise StorageError(
            f"ffmpeg could not resample audio to {rate} Hz: "
            f"{detail[-1] if detail else 'exit code ' + str(result.returncode)}"
        )
    pcm = result.stdout[: len(result.stdout) // 2 * 2]
    return pydub.AudioSegment(data=pcm, sample_width=2, frame_rate=rate, channels=1)


def _trim(segment: Any, *, threshold_dbfs: float) -> tuple[Any, float]:
    """Cut the silence at both ends, keeping margins; also return the sound's length in seconds.

    The sound runs from the first to the last chunk above ``threshold_dbfs``; its length does
    not include the margins.
    """
    pydub, _ = pydub_modules()
    detect = pydub.silence.detect_leading_silence
    length = len(segment)  # milliseconds
    start = detect(segment, silence_threshold=threshold_dbfs, chunk_size=TRIM_STEP_MS)
    if start >= length:
        return segment[:0], 0.0
    stop = length - detect(
        segment.reverse(), silence_threshold=threshold_dbfs, chunk_size=TRIM_STEP_MS
    )
    kept = segment[max(0, start - KEEP_SILENCE_MS) : min(length, stop + KEEP_SILENCE_MS)]
    return kept, (stop - start) / 1000


def _write(segment: Any, dst: Path) -> None:
    """Write ``segment`` as a WAV at ``dst``, atomically and durably."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        write_segment(segment, dst, format="wav")
    except OSError as exc:
        raise StorageError(
            f"cannot write the greeting {dst}: {exc.strerror or exc}; "
            "check free space and permissions of the data directory"
        ) from exc
