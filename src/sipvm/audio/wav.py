"""RIFF/WAVE headers: read them without trusting the sizes, and repair them after a crash.

pjmedia's WAV writer puts 0 in the RIFF size and in the data chunk size when it starts a
recording and writes the real values only when the recorder is closed. A recording that
outlives a crash therefore has a header that :mod:`wave` rejects, although every audio byte
is on disk. :func:`repair_wav_header` makes such a file readable again so it can be adopted
as a message; :func:`read_wav_info` describes a file without changing it; :func:`is_silent`
tells a recording that holds nothing but line noise (or nothing at all) from a message.

Only the formats pjmedia writes are accepted: PCM (format tag 1), A-law (6) and µ-law (7).
"""

from __future__ import annotations

import math
import operator
import os
import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sipvm.errors import CorruptAudioError

FORMAT_PCM = 1
FORMAT_ALAW = 6
FORMAT_ULAW = 7
_FORMAT_NAMES = {FORMAT_PCM: "PCM", FORMAT_ALAW: "A-law", FORMAT_ULAW: "µ-law"}

# RIFF header (12) + fmt chunk header and PCM body (8 + 16) + data chunk header (8).
MIN_HEADER_BYTES = 44
_FMT_BODY_BYTES = 16
_U32_MAX = 0xFFFFFFFF
_ADVICE = (
    "it cannot be adopted as a message; move it out of the recordings directory "
    "and inspect it (for example with `sox --info` or a hex viewer)"
)


@dataclass(frozen=True)
class WavInfo:
    """What a WAV header says, with the data size bounded by what is really in the file."""

    format_tag: int
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    data_offset: int
    data_bytes: int

    @property
    def frames(self) -> int:
        """Number of whole sample frames (one sample per channel) in the data."""
        return self.data_bytes // self.block_align

    @property
    def duration_s(self) -> float:
        """Playing time in seconds."""
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class _Header:
    info: WavInfo
    file_len: int
    riff_size: int
    data_size: int
    fact_offset: int | None


def read_wav_info(path: Path) -> WavInfo:
    """Parse the header, trusting chunk sizes only as far as the file length allows.

    A data size of 0 or past the end of file means "up to end of file, whole blocks only".
    The file is not modified.

    Raises:
        CorruptAudioError: the file is not a WAV file sipvm can read (too short, not
            RIFF/WAVE, no ``fmt `` or ``data`` chunk, unsupported format, zero fields).
        OSError: the file cannot be opened or read.
    """
    with path.open("rb") as f:
        return _parse(f, path).info


def repair_wav_header(path: Path) -> tuple[WavInfo, bool]:
    """Make the RIFF size and data chunk size match the file length; return ``(info, changed)``.

    The data chunk is taken to run to the end of the file, and a trailing partial block is cut
    off with :func:`os.truncate`. The one exception is a data size that is a whole number of
    blocks and is followed by a well-formed chain of chunks ending exactly at end of file (a
    pad byte and e.g. a trailing ``LIST``): that size is right and is kept. A repair also sets
    the sample count of a ``fact`` chunk, if there is one, to the frame count, as pjmedia does
    on close, and fsyncs the file. A file whose RIFF and data sizes are already right is not
    written to at all (``changed`` is False).

    Raises:
        CorruptAudioError: as for :func:`read_wav_info`, or the file is too large for the
            32-bit sizes of a RIFF header.
        OSError: the file cannot be opened, read or written.
    """
    with path.open("r+b") as f:
        header = _parse(f, path)
        info = header.info
        align = info.block_align
        available = header.file_len - info.data_offset
        declared = header.data_size
        trailer_start = info.data_offset + declared + (declared & 1)
        if (
            0 < declared < available
            and declared % align == 0
            and _is_chunk_chain(f, info.data_offset + declared, trailer_start, header.file_len)
        ):
            data_size = declared
            new_len = header.file_len
        else:
            data_size = available - available % align
            new_len = info.data_offset + data_size
        riff_size = new_len - 8
        if riff_size > _U32_MAX:
            raise CorruptAudioError(
                f"{path}: {new_len} bytes is more than a RIFF header can describe (4 GiB); "
                "split or convert it with an audio tool"
            )
        repaired = WavInfo(
            format_tag=info.format_tag,
            channels=info.channels,
            sample_rate=info.sample_rate,
            bits_per_sample=info.bits_per_sample,
            block_align=align,
            data_offset=info.data_offset,
            data_bytes=data_size - data_size % align,
        )
        changed = (
            new_len != header.file_len
            or riff_size != header.riff_size
            or data_size != header.data_size
        )
        if not changed:
            return repaired, False
        _write_u32(f, 4, riff_size)
        _write_u32(f, info.data_offset - 4, data_size)
        if header.fact_offset is not None:
            _write_u32(f, header.fact_offset, repaired.frames)
        f.flush()
        if new_len < header.file_len:
            os.truncate(f.fileno(), new_len)
        # The repaired file is about to be adopted and the original header is gone, so the
        # repair must be on disk before anyone relies on it.
        os.fsync(f.fileno())
        return repaired, True


def _parse(f: BinaryIO, path: Path) -> _Header:
    file_len = os.fstat(f.fileno()).st_size
    too_short = CorruptAudioError(
        f"{path}: {file_len} bytes is shorter than the smallest WAV header "
        f"({MIN_HEADER_BYTES} bytes), so it holds no audio; delete it"
    )
    if file_len < 12:
        raise too_short
    riff_id, riff_size, wave_id = struct.unpack("<4sI4s", _read_at(f, path, 0, 12))
    if riff_id != b"RIFF" or wave_id != b"WAVE":
        raise CorruptAudioError(
            f"{path}: not a WAV file (it does not start with RIFF....WAVE); {_ADVICE}"
        )
    if file_len < MIN_HEADER_BYTES:
        raise too_short

    fmt: tuple[int, int, int, int, int, int] | None = None
    fact_offset: int | None = None
    pos = 12
    while pos + 8 <= file_len:
        chunk_id, size = struct.unpack("<4sI", _read_at(f, path, pos, 8))
        body = pos + 8
        if chunk_id == b"data":
            if fmt is None:
                raise CorruptAudioError(
                    f"{path}: no fmt chunk before the data chunk, so the audio format is "
                    f"unknown; {_ADVICE}"
                )
            return _header(path, fmt, file_len, riff_size, body, size, fact_offset)
        if chunk_id == b"fmt ":
            if size < _FMT_BODY_BYTES:
                raise CorruptAudioError(
                    f"{path}: the fmt chunk is {size} bytes, less than the "
                    f"{_FMT_BODY_BYTES} a WAVE format needs; {_ADVICE}"
                )
            if body + _FMT_BODY_BYTES > file_len:
                raise CorruptAudioError(
                    f"{path}: the file ends inside the fmt chunk (truncated header); {_ADVICE}"
                )
            fmt = struct.unpack("<HHIIHH", _read_at(f, path, body, _FMT_BODY_BYTES))
        elif chunk_id == b"fact" and size >= 4 and body + 4 <= file_len:
            fact_offset = body
        pos = body + size + (size & 1)

    if fmt is None:
        raise CorruptAudioError(f"{path}: no fmt chunk, so the audio format is unknown; {_ADVICE}")
    raise CorruptAudioError(
        f"{path}: no data chunk (the header is damaged or the file was cut short before "
        f"any audio was written); {_ADVICE}"
    )


def _header(
    path: Path,
    fmt: tuple[int, int, int, int, int, int],
    file_len: int,
    riff_size: int,
    data_offset: int,
    data_size: int,
    fact_offset: int | None,
) -> _Header:
    format_tag, channels, sample_rate, _byte_rate, block_align, bits = fmt
    if format_tag not in _FORMAT_NAMES:
        supported = ", ".join(f"{name} ({tag})" for tag, name in _FORMAT_NAMES.items())
        raise CorruptAudioError(
            f"{path}: unsupported WAV format tag {format_tag}; only {supported} can be "
            "read; convert it to 16-bit PCM with an audio tool (for example sox) or delete it"
        )
    for name, value in (
        ("channel count", channels),
        ("sample rate", sample_rate),
        ("block align", block_align),
    ):
        if value == 0:
            raise CorruptAudioError(f"{path}: the fmt chunk gives a {name} of 0; {_ADVICE}")
    # The block size decides where a partial block starts; if it disagrees with the sample
    # layout the header is lying and cutting the data by it could destroy audio.
    expected_align = channels * ((bits + 7) // 8)
    if block_align != expected_align:
        raise CorruptAudioError(
            f"{path}: the fmt chunk gives a block align of {block_align} but {channels} "
            f"channel(s) of {bits}-bit samples need {expected_align}; {_ADVICE}"
        )
    available = file_len - data_offset
    usable = available if data_size == 0 or data_size > available else data_size
    info = WavInfo(
        format_tag=format_tag,
        channels=channels,
        sample_rate=sample_rate,
        bits_per_sample=bits,
        block_align=block_align,
        data_offset=data_offset,
        data_bytes=usable - usable % block_align,
    )
    return _Header(
        info=info,
        file_len=file_len,
        riff_size=riff_size,
        data_size=data_size,
        fact_offset=fact_offset,
    )


def _is_chunk_chain(f: BinaryIO, data_end: int, start: int, file_len: int) -> bool:
    """Whether the bytes after the data look like a well-formed file's tail, not audio.

    A stale data size leaves audio after the data chunk; a right one is followed only by a
    zero pad byte (odd size) and whole chunks with printable IDs that end exactly at end of
    file. Audio bytes almost never line up like that, and silence (zeros) never does.
    """
    if start > file_len:
        return False
    if start > data_end and _peek(f, data_end, 1) != b"\0":
        return False
    pos = start
    while pos < file_len:
        head = _peek(f, pos, 8)
        if len(head) != 8:
            return False
        chunk_id, size = struct.unpack("<4sI", head)
        if not all(0x20 <= b <= 0x7E for b in chunk_id):
            return False
        pos += 8 + size + (size & 1)
    # A writer may leave out the pad byte of a final odd-sized chunk.
    return pos in (file_len, file_len + 1)


def _read_at(f: BinaryIO, path: Path, offset: int, size: int) -> bytes:
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        # Only reachable if the file shrinks while it is read; report it rather than let a
        # struct.error escape.
        raise CorruptAudioError(
            f"{path}: the file got shorter while it was being read; make sure nothing is "
            "still writing it, then try again"
        )
    return data


def _peek(f: BinaryIO, offset: int, size: int) -> bytes:
    f.seek(offset)
    return f.read(size)


def _write_u32(f: BinaryIO, offset: int, value: int) -> None:
    f.seek(offset)
    f.write(struct.pack("<I", value))


def header_is_final(path: Path) -> bool:
    """Whether the RIFF size in the header matches the file: the writer has closed it.

    pjmedia writes the sizes only when a recorder is destroyed, and since pjproject 2.13 the
    conference bridge destroys ports asynchronously, a frame or so after the call to destroy.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return False
    if len(head) < 8 or head[:4] != b"RIFF":
        return False
    riff_size = int(struct.unpack("<I", head[4:8])[0])
    return riff_size != 0 and riff_size == size - 8


# -- silence -------------------------------------------------------------------------------

#: A 20 ms frame whose RMS level is below this (dB relative to a full-scale square wave,
#: 32768) counts as silence. Chosen between the two levels it must tell apart:
#: - a real phone line's noise floor: ITU-T G.712 allows idle channel noise up to -65 dBm0p,
#:   about -71 dBFS; A-law's idle code decodes to ±8 (-72 dBFS); the comfort noise that
#:   mobile and VoIP gateways insert sits around -60 to -70 dBFS;
#: - a quiet speaker: about -35 dBm0 of active speech (-41 dBFS), with syllables 10 dB louder.
#: -50 dBFS is 20 dB above a quiet line and about 10 dB below a quiet speaker's average.
SILENCE_DBFS = -50.0
#: A recording with less sound than this (frames above ``SILENCE_DBFS``) is silence from end
#: to end: one click or crackle on the line is not a message.
MIN_SOUND_S = 0.2
#: The frame length levels are measured over: one RTP packet of the bridge (20 ms).
LEVEL_FRAME_S = 0.02
_READ_FRAMES = 8000  # frames decoded per read: 1 s at the bridge rate


def sound_seconds(
    path: Path, *, threshold_dbfs: float = SILENCE_DBFS, enough_s: float | None = None
) -> float:
    """Seconds of ``path`` whose level is above ``threshold_dbfs``, measured in 20 ms frames
    over all channels (a frame counts when any channel is loud enough on average).

    With ``enough_s`` the count stops as soon as it reaches that much (a quick "is there any
    sound" for long recordings). Reads PCM of any width, A-law and µ-law.

    Raises:
        CorruptAudioError: as for :func:`read_wav_info`.
        OSError: the file cannot be opened or read.
    """
    threshold = 32768.0 * 10.0 ** (threshold_dbfs / 20.0)
    with path.open("rb") as f:
        info = _parse(f, path).info
        frame = max(1, round(info.sample_rate * LEVEL_FRAME_S)) * info.channels
        frame_s = frame / info.channels / info.sample_rate
        chunk_bytes = _READ_FRAMES * info.block_align
        f.seek(info.data_offset)
        left = info.data_bytes
        loud = 0.0
        pending = array("h")
        while left > 0:
            raw = f.read(min(chunk_bytes, left))
            if not raw:
                break
            left -= len(raw)
            pending.extend(_samples16(raw, info))
            whole = len(pending) - len(pending) % frame
            for start in range(0, whole, frame):
                if _frame_is_loud(pending[start : start + frame], threshold):
                    loud += frame_s
                    if enough_s is not None and loud >= enough_s:
                        return loud
            del pending[:whole]
        if pending and _frame_is_loud(pending, threshold):  # a last partial frame
            loud += len(pending) / info.channels / info.sample_rate
        return loud


def is_silent(path: Path) -> bool:
    """Whether ``path`` is silence from end to end: less than ``MIN_SOUND_S`` of it rises
    above ``SILENCE_DBFS`` (see there for why that level).

    Raises:
        CorruptAudioError: as for :func:`read_wav_info`.
        OSError: the file cannot be opened or read.
    """
    return sound_seconds(path, enough_s=MIN_SOUND_S) < MIN_SOUND_S


def _frame_is_loud(frame: array[int], threshold: float) -> bool:
    # RMS never exceeds the peak: quiet frames (most of a silent file) cost two C-level scans.
    if max(max(frame), -min(frame)) < threshold:
        return False
    return math.sqrt(sum(map(operator.mul, frame, frame)) / len(frame)) >= threshold


def _samples16(raw: bytes, info: WavInfo) -> array[int]:
    """Whole samples of ``raw`` as signed 16-bit values (wider PCM keeps its top 16 bits)."""
    width = info.block_align // info.channels
    raw = raw[: len(raw) - len(raw) % width]
    if info.format_tag == FORMAT_ALAW or info.format_tag == FORMAT_ULAW:
        low, high = _G711_TABLES[info.format_tag]
        wide = bytearray(2 * len(raw))
        wide[0::2] = raw.translate(low)
        wide[1::2] = raw.translate(high)
        raw = bytes(wide)
    elif width == 1:  # 8-bit PCM is unsigned
        wide = bytearray(2 * len(raw))
        wide[1::2] = raw.translate(_UNSIGNED_TO_SIGNED)
        raw = bytes(wide)
    elif width > 2:
        wide = bytearray(2 * (len(raw) // width))
        wide[0::2] = raw[width - 2 :: width]
        wide[1::2] = raw[width - 1 :: width]
        raw = bytes(wide)
    samples = array("h", raw)
    if sys.byteorder == "big":
        samples.byteswap()
    return samples


def _alaw_to_linear(code: int) -> int:
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    value = (mantissa << 4) + 8
    if exponent:
        value = (value + 0x100) << (exponent - 1)
    return value if code & 0x80 else -value


def _ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    value = (((code & 0x0F) << 3) + 0x84) << exponent
    value -= 0x84
    return -value if code & 0x80 else value


def _g711_tables(decode: Callable[[int], int]) -> tuple[bytes, bytes]:
    """Translation tables from a G.711 code to the low and the high byte of its sample."""
    pairs = [(decode(code) & 0xFFFF).to_bytes(2, "little") for code in range(256)]
    return bytes(p[0] for p in pairs), bytes(p[1] for p in pairs)


_G711_TABLES = {
    FORMAT_ALAW: _g711_tables(_alaw_to_linear),
    FORMAT_ULAW: _g711_tables(_ulaw_to_linear),
}
_UNSIGNED_TO_SIGNED = bytes((b - 128) & 0xFF for b in range(256))
