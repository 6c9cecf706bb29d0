"""Audio conversion through pydub (ffmpeg underneath): decode any format, export MP3 or WAV.

Three pydub 0.25.1 behaviours are worked around here rather than by leaving pydub:
- WAVs (PCM, A-law, µ-law — what pjmedia records) are read with our own header reader
  (``audio.wav``) into an ``AudioSegment``: pydub's WAV path leaks an open file, and it decodes
  A-law/µ-law through ffmpeg to 8-bit linear PCM, an audible loss.
- Other formats are handed to pydub as an open file that we close, piped to ffmpeg, so a
  file name can never be read as an ffmpeg protocol (``-i http:...``).
- pydub imports ``audioop``, deprecated since Python 3.11: the warning is silenced at import.

Without the ``ffmpeg`` program (Debian package ``ffmpeg``) every function raises StorageError;
a file that cannot be decoded raises CorruptAudioError.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal

from sipvm.audio.wav import FORMAT_ALAW, FORMAT_PCM, FORMAT_ULAW, read_wav_info
from sipvm.errors import CorruptAudioError, StorageError
from sipvm.fsutil import fsync_dir

MP3_BITRATE: Final = "32k"
"""Bit rate of exported MP3s: constant 32 kbit/s, plenty for 8 kHz telephone audio."""

_FFMPEG_MISSING: Final = (
    "ffmpeg is not installed: install the Debian package ffmpeg (apt-get install ffmpeg)"
)
_CORRUPT_ADVICE: Final = (
    "it is damaged or not an audio file; check that it is a complete WAV/MP3/OGG/FLAC file, "
    "and if it is a stored message restore it from a backup or delete the message"
)


def pydub_modules() -> tuple[ModuleType, ModuleType]:
    """pydub and audioop, imported quietly; StorageError when ffmpeg is missing."""
    if shutil.which("ffmpeg") is None:
        raise StorageError(_FFMPEG_MISSING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # audioop, Python 3.11+
        warnings.simplefilter("ignore", RuntimeWarning)  # pydub's own ffmpeg probe
        import audioop

        import pydub
        import pydub.silence
    return pydub, audioop


def load_audio(path: Path) -> Any:
    """Decode ``path`` (any format ffmpeg reads) into a pydub ``AudioSegment``."""
    pydub, audioop = pydub_modules()
    with open(path, "rb") as f:  # FileNotFoundError passes through unchanged
        try:
            info = read_wav_info(path)
        except CorruptAudioError:
            info = None  # not a WAV we read ourselves: let ffmpeg try
        if info is not None and info.format_tag in (FORMAT_PCM, FORMAT_ALAW, FORMAT_ULAW):
            f.seek(info.data_offset)
            raw = f.read(info.data_bytes)
            width = info.bits_per_sample // 8
            if info.format_tag == FORMAT_ALAW:
                raw, width = audioop.alaw2lin(raw, 2), 2
            elif info.format_tag == FORMAT_ULAW:
                raw, width = audioop.ulaw2lin(raw, 2), 2
            elif width == 1:
                raw = audioop.bias(raw, 1, -128)  # 8-bit WAV is unsigned, pydub wants signed
            if width in (1, 2, 3, 4):
                return pydub.AudioSegment(
                    data=raw,
                    sample_width=width,
                    frame_rate=info.sample_rate,
                    channels=info.channels,
                )
            f.seek(0)
        try:
            segment = pydub.AudioSegment.from_file(f)
        except Exception as exc:  # pydub raises CouldntDecodeError, IndexError, KeyError...
            raise CorruptAudioError(f"cannot decode {path}: {_CORRUPT_ADVICE}") from exc
    if segment.frame_count() == 0 and path.stat().st_size > 0 and info is None:
        raise CorruptAudioError(f"cannot decode {path}: {_CORRUPT_ADVICE}")
    return segment


def decode_pcm16_mono(path: Path, rate: int | None = None) -> tuple[bytes, int]:
    """16-bit mono PCM of ``path`` (resampled to ``rate`` if given) and its sample rate."""
    segment = load_audio(path).set_channels(1).set_sample_width(2)
    if rate is not None and segment.frame_rate != rate:
        segment = segment.set_frame_rate(rate)
    return bytes(segment.raw_data), int(segment.frame_rate)


def audio_duration_s(path: Path) -> float:
    """Length of ``path`` in seconds (any format ffmpeg decodes)."""
    segment = load_audio(path)
    return float(segment.frame_count()) / float(segment.frame_rate)


def export_audio(src: Path, dst: Path, fmt: Literal["mp3", "wav"]) -> Path:
    """Write ``src`` to ``dst`` as mono MP3 (32 kbit/s CBR, no ID3 tags) or 16-bit WAV.

    Writes a temporary file beside ``dst`` and renames it into place, so ``dst`` is either the
    old file or the whole new one. The file is readable by its owner only (voicemail is private).
    """
    if fmt not in ("mp3", "wav"):
        raise ValueError(f"unknown export format {fmt!r}: use mp3 or wav")
    pydub, _ = pydub_modules()
    segment = load_audio(src).set_channels(1).set_sample_width(2)
    try:
        if fmt == "wav":
            write_segment(segment, dst, format="wav")
        else:
            write_segment(
                segment,
                dst,
                format="mp3",
                codec="libmp3lame",
                bitrate=MP3_BITRATE,
                parameters=["-id3v2_version", "0", "-write_id3v1", "0"],
            )
    except pydub.exceptions.CouldntEncodeError as exc:
        raise StorageError(f"could not write {dst}: {_last_line(str(exc))}") from exc
    return dst


def write_segment(segment: Any, dst: Path, **export: Any) -> None:
    """Export a pydub segment to ``dst`` so that ``dst`` is the old file or the whole new one.

    A temporary file beside ``dst`` (written through our own handle: pydub leaves a file it
    opened itself open when the encoder fails), fsynced, renamed into place, directory fsynced.
    """
    fd, name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        with open(tmp, "wb+") as out:
            segment.export(out, **export)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dst)
        fsync_dir(dst.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "the encoder failed"


def join_recordings(first: Path, second: Path, dst: Path) -> int:
    """Write ``first`` followed by ``second`` to ``dst`` (8 kHz 16-bit mono WAV, atomically);
    returns the length in milliseconds. Used for a comment recorded before a shared message."""
    parts = [
        load_audio(p).set_channels(1).set_sample_width(2).set_frame_rate(8000)
        for p in (first, second)
    ]
    joined = parts[0] + parts[1]
    write_segment(joined, dst, format="wav")
    return len(joined)
