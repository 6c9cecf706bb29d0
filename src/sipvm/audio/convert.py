"""Convert stored messages for download and measure audio files, with ffmpeg.

Decoding and MP3 encoding run the ``ffmpeg`` binary directly (one subprocess per step)
rather than through pydub's ``AudioSegment.from_file``/``export``. pydub 0.25.1 leaks an open
file on its WAV fast path (a ``ResourceWarning``, an error under ``-W error``), decodes A-law
and µ-law WAVs to 8-bit linear PCM (audible loss), and its ``export`` leaves two temporary
files behind when ffmpeg fails; the same ffmpeg commands run directly have none of these
problems.

Every function here needs the ``ffmpeg`` program (Debian package ``ffmpeg``); without it they
raise :class:`~sipvm.errors.StorageError`. A file ffmpeg cannot decode raises
:class:`~sipvm.errors.CorruptAudioError`. A WAV cut short inside its audio data is *not*
corrupt: it decodes to the audio that is there (ffmpeg reads a data chunk up to the end of
the file, also when its header sizes are 0, as pjmedia leaves them after a crash).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Final, Literal

from sipvm.errors import CorruptAudioError, StorageError

MP3_BITRATE: Final = "32k"
"""Bit rate of exported MP3s: constant 32 kbit/s, plenty for 8 kHz telephone audio."""

_FFMPEG_MISSING: Final = (
    "ffmpeg is not installed: install the Debian package ffmpeg (apt-get install ffmpeg)"
)
_CORRUPT_ADVICE: Final = (
    "it is damaged or not an audio file; check that it is a complete WAV/MP3/OGG/FLAC file, "
    "and if it is a stored message restore it from a backup or delete the message"
)
_READ_CHUNK: Final = 1 << 16


def _ffmpeg() -> str:
    """Absolute path of the ffmpeg binary on PATH, or StorageError."""
    found = shutil.which("ffmpeg")
    if found is None:
        raise StorageError(_FFMPEG_MISSING)
    return found


def _last_line(stderr: bytes) -> str:
    """The last non-empty line ffmpeg printed, for an error message."""
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no error message"


def _parse_wav_stream_header(buf: bytes) -> tuple[int, int] | None:
    """Find the sample rate and the offset of the PCM data in ffmpeg's piped WAV output.

    ffmpeg cannot seek back into a pipe, so the sizes in the header are placeholders; only
    the chunk layout up to the ``data`` chunk header is used. Returns ``None`` while ``buf``
    does not yet hold the whole header.
    """
    if len(buf) < 12:
        return None
    if buf[0:4] != b"RIFF" or buf[8:12] != b"WAVE":
        raise ValueError("ffmpeg did not write a RIFF/WAVE stream")
    pos = 12
    rate: int | None = None
    while pos + 8 <= len(buf):
        chunk_id = buf[pos : pos + 4]
        (size,) = struct.unpack_from("<I", buf, pos + 4)
        if chunk_id == b"data":
            if rate is None:
                raise ValueError("ffmpeg wrote a data chunk before the fmt chunk")
            return rate, pos + 8
        if chunk_id == b"fmt ":
            if pos + 8 + 8 > len(buf):
                return None
            (rate,) = struct.unpack_from("<I", buf, pos + 12)
        pos += 8 + size + (size & 1)
    return None


def _decode(path: Path, rate: int | None, keep: bool) -> tuple[int, int, bytes]:
    """Decode ``path`` with ffmpeg to 16-bit little-endian mono PCM.

    ``rate`` resamples to that many Hz; ``None`` keeps the source rate. With ``keep`` false
    the PCM is only counted, not kept (constant memory for long files).

    Returns ``(sample_rate_hz, number_of_samples, pcm_bytes_or_empty)``.
    """
    ffmpeg = _ffmpeg()
    if not path.is_file():
        raise FileNotFoundError(2, "No such audio file", str(path))
    cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error"]
    # "file:" stops ffmpeg reading a name with a colon as a protocol (e.g. "http:...").
    cmd += ["-i", f"file:{path.resolve()}", "-map", "0:a:0", "-ac", "1"]
    if rate is not None:
        cmd += ["-ar", str(rate)]
    cmd += ["-c:a", "pcm_s16le", "-fflags", "+bitexact", "-f", "wav", "pipe:1"]

    head = b""
    header: tuple[int, int] | None = None
    pcm = bytearray()
    count = 0
    # stderr goes to a file: a broken MP3 can print more than a pipe buffer of errors, which
    # would block ffmpeg while we wait on stdout.
    with (
        tempfile.TemporaryFile() as err,
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err) as proc,
    ):
        assert proc.stdout is not None
        try:
            while chunk := proc.stdout.read(_READ_CHUNK):
                if header is None:
                    head += chunk
                    header = _parse_wav_stream_header(head)
                    if header is None:
                        continue
                    chunk = head[header[1] :]
                count += len(chunk)
                if keep:
                    pcm += chunk
        except BaseException:
            proc.kill()  # leaving the with-block then closes the pipe and reaps ffmpeg
            raise
        returncode = proc.wait()
        err.seek(0)
        stderr = err.read()
    if returncode != 0 or header is None:
        raise CorruptAudioError(
            f"{path}: cannot be decoded as audio (ffmpeg: {_last_line(stderr)}); {_CORRUPT_ADVICE}"
        )
    return header[0], count // 2, bytes(pcm[: len(pcm) - len(pcm) % 2])


def decode_pcm16_mono(path: Path, rate: int | None = None) -> tuple[bytes, int]:
    """Decode any audio file ffmpeg reads into 16-bit signed little-endian mono PCM.

    Args:
        path: the file: WAV of any sample width, rate and channel count (PCM, A-law, µ-law,
            float), MP3, OGG, FLAC, ...; the first audio stream is used.
        rate: resample to this rate in Hz; ``None`` keeps the file's own rate.
            Several channels are mixed down to one.

    Returns:
        ``(pcm, sample_rate_hz)``; ``pcm`` holds 2 bytes per sample.

    Raises:
        CorruptAudioError: ffmpeg cannot decode the file.
        StorageError: ffmpeg is not installed.
        FileNotFoundError: ``path`` does not exist.
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"sample rate must be positive, not {rate}")
    got_rate, _, pcm = _decode(path, rate, keep=True)
    return pcm, got_rate


def audio_duration_s(path: Path) -> float:
    """Playing time of an audio file in seconds, measured by decoding it completely.

    Works for any format ffmpeg decodes. Decoding (rather than trusting a header) gives the
    real length of a WAV cut short and of an MP3 without a length header; for an MP3 with a
    LAME/Info header the encoder's padding is not counted.

    Raises:
        CorruptAudioError: ffmpeg cannot decode the file.
        StorageError: ffmpeg is not installed.
        FileNotFoundError: ``path`` does not exist.
    """
    rate, samples, _ = _decode(path, None, keep=False)
    return samples / rate


def _write_wav(path: Path, pcm: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)


def _write_mp3(path: Path, pcm: bytes, rate: int, dst: Path) -> None:
    """Encode ``pcm`` into ``path``; errors name ``dst``, the file the caller asked for."""
    # ffmpeg picks the nearest sample rate MP3 allows if ``rate`` is not one of them.
    cmd = [_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    cmd += ["-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0"]
    cmd += ["-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-ac", "1"]
    # No ID3 tags; keep the Xing/LAME "Info" frame (exact length, gapless decoding).
    cmd += ["-id3v2_version", "0", "-write_id3v1", "0", "-fflags", "+bitexact"]
    cmd += ["-f", "mp3", f"file:{path.resolve()}"]
    done = subprocess.run(
        cmd, input=pcm, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    if done.returncode != 0:
        raise StorageError(
            f"could not write the MP3 {dst} (ffmpeg: {_last_line(done.stderr)}); "
            "check free disk space and that ffmpeg was built with libmp3lame"
        )


def export_audio(src: Path, dst: Path, fmt: Literal["mp3", "wav"]) -> Path:
    """Write a copy of a stored message in a format for download or e-mail.

    Args:
        src: the message audio, normally a 16-bit mono PCM WAV at 8 kHz; A-law/µ-law WAVs,
            other rates and channel counts, and any other format ffmpeg reads also work
            (channels are mixed down to mono).
        dst: the file to create or replace. It is written under a temporary name in the
            same directory and renamed into place, so ``dst`` is never half-written and is
            left untouched when the export fails. A new file is readable by its owner only
            (mode 0600, from :func:`tempfile.mkstemp`): messages are private.
        fmt: ``"wav"``: 16-bit PCM mono at the source's sample rate (the samples of a
            16-bit mono PCM source are copied unchanged). ``"mp3"``: mono, constant
            32 kbit/s, without ID3 tags.

    Returns:
        ``dst``.

    Raises:
        CorruptAudioError: ``src`` cannot be decoded.
        StorageError: ffmpeg is not installed, or the MP3 encoder failed.
        FileNotFoundError: ``src`` does not exist.
        OSError: ``dst`` cannot be written.
        ValueError: ``fmt`` is neither ``"mp3"`` nor ``"wav"``.
    """
    if fmt not in ("mp3", "wav"):
        raise ValueError(f'export format must be "mp3" or "wav", not {fmt!r}')
    pcm, rate = decode_pcm16_mono(src)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if fmt == "wav":
            _write_wav(tmp, pcm, rate)
        else:
            _write_mp3(tmp, pcm, rate, dst)
        with tmp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dst
