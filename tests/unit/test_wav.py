"""WAV header reading and crash repair (sipvm.audio.wav)."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sipvm.audio.wav import (
    MIN_SOUND_S,
    SILENCE_DBFS,
    WavInfo,
    is_silent,
    read_wav_info,
    repair_wav_header,
    sound_seconds,
)
from sipvm.errors import CorruptAudioError

RATE = 8000


def _samples(frames: int, channels: int = 1) -> bytes:
    """16-bit little-endian samples of a 440 Hz tone, different on each channel."""
    values = [
        int(12000 * math.sin(2 * math.pi * 440 * i / RATE + ch))
        for i in range(frames)
        for ch in range(channels)
    ]
    return struct.pack(f"<{len(values)}h", *values)


def _write_with_wave(path: Path, payload: bytes, channels: int = 1) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(payload)


def _chunk(chunk_id: bytes, body: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")


def _fmt_body(
    tag: int = 1,
    channels: int = 1,
    rate: int = RATE,
    bits: int = 16,
    block_align: int | None = None,
    cb_size: bool = False,
) -> bytes:
    align = channels * ((bits + 7) // 8) if block_align is None else block_align
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return body + (struct.pack("<H", 0) if cb_size else b"")


def _hand_wav(
    fmt_body: bytes,
    payload: bytes,
    *,
    before_data: bytes = b"",
    after_data: bytes = b"",
    riff_size: int | None = None,
    data_size: int | None = None,
) -> bytes:
    """A WAV assembled chunk by chunk; sizes default to the right ones, pass 0 to "crash" it."""
    data_header = b"data" + struct.pack("<I", len(payload) if data_size is None else data_size)
    body = b"WAVE" + _chunk(b"fmt ", fmt_body) + before_data + data_header + payload + after_data
    size = len(body) if riff_size is None else riff_size
    return b"RIFF" + struct.pack("<I", size) + body


def _u32_at(path: Path, offset: int) -> int:
    value: int = struct.unpack_from("<I", path.read_bytes(), offset)[0]
    return value


def _zero_sizes(path: Path, data_size_offset: int = 40) -> None:
    raw = bytearray(path.read_bytes())
    raw[4:8] = bytes(4)
    raw[data_size_offset : data_size_offset + 4] = bytes(4)
    path.write_bytes(bytes(raw))


def _read_with_wave(path: Path) -> tuple[int, bytes]:
    with wave.open(str(path), "rb") as w:
        n = w.getnframes()
        return n, w.readframes(n)


def test_intact_pcm_is_read_right_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "intact.wav"
    _write_with_wave(path, _samples(9872))  # 1.234 s
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns

    info = read_wav_info(path)
    assert info == WavInfo(
        format_tag=1,
        channels=1,
        sample_rate=RATE,
        bits_per_sample=16,
        block_align=2,
        data_offset=44,
        data_bytes=9872 * 2,
    )
    assert info.frames == 9872
    assert abs(info.duration_s - 1.234) < 0.001

    repaired, changed = repair_wav_header(path)
    assert changed is False
    assert repaired == info
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime


def test_zeroed_sizes_after_crash_are_repaired(tmp_path: Path) -> None:
    path = tmp_path / "crashed.wav"
    payload = _samples(4000)
    _write_with_wave(path, payload)
    _zero_sizes(path)
    with pytest.raises(wave.Error):
        _read_with_wave(path)
    assert read_wav_info(path).data_bytes == len(payload)  # size 0 means "to end of file"

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info.frames == 4000
    assert info.data_bytes == len(payload)
    assert path.stat().st_size == 44 + len(payload)
    assert _u32_at(path, 4) == 36 + len(payload)
    assert _u32_at(path, 40) == len(payload)
    assert _read_with_wave(path) == (4000, payload)
    assert read_wav_info(path) == info
    assert repair_wav_header(path) == (info, False)


def test_stale_data_size_is_grown_to_file_length(tmp_path: Path) -> None:
    path = tmp_path / "stale.wav"
    payload = _samples(3000)
    _write_with_wave(path, payload)
    raw = bytearray(path.read_bytes())
    raw[4:8] = struct.pack("<I", 36 + 200)
    raw[40:44] = struct.pack("<I", 200)
    path.write_bytes(bytes(raw))
    # Reading alone trusts a size that fits in the file; only repair knows it is stale.
    assert read_wav_info(path).data_bytes == 200

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info.data_bytes == len(payload)
    assert _u32_at(path, 40) == len(payload)
    assert _u32_at(path, 4) == 36 + len(payload)
    assert _read_with_wave(path) == (3000, payload)


def test_odd_stale_data_size_is_not_taken_for_a_padded_chunk(tmp_path: Path) -> None:
    # A data size one short of the file with a zero last byte looks like an odd-sized chunk
    # plus its pad byte, but 16-bit PCM cannot have an odd size, so it must be grown.
    path = tmp_path / "offbyone.wav"
    payload = _samples(999) + b"\x10\x00"
    path.write_bytes(_hand_wav(_fmt_body(), payload, data_size=len(payload) - 1))

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info.data_bytes == len(payload)
    assert _read_with_wave(path) == (1000, payload)


def test_data_size_past_end_of_file_is_cut_to_file_length(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    payload = _samples(500)
    path.write_bytes(_hand_wav(_fmt_body(), payload, data_size=10**6, riff_size=10**6 + 36))
    assert read_wav_info(path).data_bytes == len(payload)

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info.data_bytes == len(payload)
    assert _read_with_wave(path) == (500, payload)


@pytest.mark.parametrize("header_counts_odd_byte", [False, True])
def test_odd_trailing_byte_in_16_bit_pcm_is_truncated(
    tmp_path: Path, header_counts_odd_byte: bool
) -> None:
    path = tmp_path / "odd.wav"
    payload = _samples(1001)
    if header_counts_odd_byte:
        path.write_bytes(_hand_wav(_fmt_body(), payload + b"\x7f"))
    else:
        path.write_bytes(_hand_wav(_fmt_body(), payload + b"\x7f", riff_size=0, data_size=0))
    assert path.stat().st_size == 44 + 2003
    assert read_wav_info(path).data_bytes == 2002

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info.data_bytes == 2002
    assert path.stat().st_size == 44 + 2002
    assert _u32_at(path, 40) == 2002
    assert _u32_at(path, 4) == 36 + 2002
    assert _read_with_wave(path) == (1001, payload)


@pytest.mark.parametrize(
    ("tag", "cb_size", "data_offset"),
    [
        (6, True, 58),  # A-law, 18-byte fmt (with cbSize) + fact
        (7, True, 58),  # µ-law, likewise
        (6, False, 56),  # A-law the way pjmedia writes it: 16-byte fmt + fact
    ],
)
def test_companded_file_with_fact_chunk_and_zeroed_sizes_is_repaired(
    tmp_path: Path, tag: int, cb_size: bool, data_offset: int
) -> None:
    path = tmp_path / "alaw.wav"
    payload = bytes(0xD5 ^ (i % 97) for i in range(8001))  # odd length: 1 byte per block
    fact = _chunk(b"fact", struct.pack("<I", 0))
    fmt = _fmt_body(tag=tag, bits=8, cb_size=cb_size)
    path.write_bytes(_hand_wav(fmt, payload, before_data=fact, riff_size=0, data_size=0))

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info == WavInfo(
        format_tag=tag,
        channels=1,
        sample_rate=RATE,
        bits_per_sample=8,
        block_align=1,
        data_offset=data_offset,
        data_bytes=8001,
    )
    assert info.frames == 8001
    assert abs(info.duration_s - 1.000125) < 1e-9
    assert path.stat().st_size == data_offset + 8001
    assert _u32_at(path, 4) == data_offset + 8001 - 8
    assert _u32_at(path, data_offset - 4) == 8001
    assert _u32_at(path, data_offset - 12) == 8001  # fact sample count, as pjmedia writes on close
    assert path.read_bytes()[data_offset:] == payload
    assert read_wav_info(path) == info
    assert repair_wav_header(path) == (info, False)


def test_list_chunk_before_data_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "list.wav"
    payload = _samples(800)
    listing = _chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00sipvm")  # odd size: padded
    assert len(listing) == 8 + 17 + 1
    path.write_bytes(_hand_wav(_fmt_body(), payload, before_data=listing, riff_size=0, data_size=0))
    assert read_wav_info(path).data_offset == 44 + 26

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info.data_offset == 44 + 26
    assert info.data_bytes == len(payload)
    assert _u32_at(path, 4) == path.stat().st_size - 8
    assert _read_with_wave(path) == (800, payload)


def test_chunk_after_data_keeps_a_right_data_size(tmp_path: Path) -> None:
    path = tmp_path / "trailer.wav"
    payload = _samples(600)
    trailer = _chunk(b"LIST", b"INFOICMT\x03\x00\x00\x00hi\x00")
    path.write_bytes(_hand_wav(_fmt_body(), payload, after_data=trailer))
    before = path.read_bytes()

    info, changed = repair_wav_header(path)

    assert changed is False
    assert info.data_bytes == len(payload)
    assert path.read_bytes() == before


def test_chunk_after_data_with_zeroed_riff_size_fixes_only_riff(tmp_path: Path) -> None:
    path = tmp_path / "trailer.wav"
    payload = _samples(600)
    trailer = _chunk(b"LIST", b"INFOICMT\x03\x00\x00\x00hi\x00")
    path.write_bytes(_hand_wav(_fmt_body(), payload, after_data=trailer, riff_size=0))
    size = path.stat().st_size

    info, changed = repair_wav_header(path)

    assert changed is True
    assert info.data_bytes == len(payload)
    assert path.stat().st_size == size
    assert _u32_at(path, 4) == size - 8
    assert _u32_at(path, 40) == len(payload)
    assert _read_with_wave(path) == (600, payload)


_PCM = _fmt_body()
_SOME_AUDIO = _samples(100)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        pytest.param(b"", "shorter than the smallest WAV header", id="empty"),
        pytest.param(b"RIFF\0\0\0\0WAVE", "shorter than the smallest WAV header", id="12-bytes"),
        pytest.param(
            b"Hello, this is not audio at all, just some text.\n" * 3,
            "not a WAV file",
            id="text",
        ),
        pytest.param(
            b"RIFF\0\0\0\0WAVE" + _chunk(b"fmt ", _PCM) + _chunk(b"LIST", bytes(40)),
            "no data chunk",
            id="no-data-chunk",
        ),
        pytest.param(
            b"RIFF\0\0\0\0WAVE" + _chunk(b"LIST", bytes(30)) + b"fmt \x10\0\0\0" + _PCM[:6],
            "ends inside the fmt chunk",
            id="fmt-truncated",
        ),
        pytest.param(
            _hand_wav(_PCM[:12], _SOME_AUDIO),
            "the fmt chunk is 12 bytes",
            id="fmt-too-small",
        ),
        pytest.param(
            b"RIFF\0\0\0\0WAVE" + _chunk(b"LIST", bytes(40)),
            "no fmt chunk",
            id="no-fmt-chunk",
        ),
        pytest.param(
            b"RIFF\0\0\0\0WAVE" + b"data\0\0\0\0" + _SOME_AUDIO,
            "no fmt chunk before the data chunk",
            id="data-before-fmt",
        ),
        pytest.param(
            _hand_wav(_fmt_body(tag=85, bits=16), _SOME_AUDIO),
            "unsupported WAV format tag 85",
            id="mp3-format-85",
        ),
        pytest.param(
            _hand_wav(_fmt_body(channels=0, block_align=2), _SOME_AUDIO),
            "channel count of 0",
            id="zero-channels",
        ),
        pytest.param(
            _hand_wav(_fmt_body(rate=0), _SOME_AUDIO),
            "sample rate of 0",
            id="zero-rate",
        ),
        pytest.param(
            _hand_wav(_fmt_body(block_align=0), _SOME_AUDIO),
            "block align of 0",
            id="zero-block-align",
        ),
        pytest.param(
            _hand_wav(_fmt_body(block_align=3), _SOME_AUDIO),
            "block align of 3",
            id="block-align-disagrees",
        ),
    ],
)
def test_corrupt_files_raise_corrupt_audio_error(tmp_path: Path, raw: bytes, problem: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(raw)

    with pytest.raises(CorruptAudioError) as read_error:
        read_wav_info(path)
    with pytest.raises(CorruptAudioError) as repair_error:
        repair_wav_header(path)

    for error in (read_error.value, repair_error.value):
        message = str(error)
        assert str(path) in message
        assert problem in message
    assert path.read_bytes() == raw


@settings(
    max_examples=150,
    deadline=None,
    # Every example rewrites the whole file, so sharing tmp_path between examples is safe.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    payload_len=st.integers(min_value=0, max_value=5000),
    channels=st.sampled_from([1, 2]),
    riff_garbage=st.integers(min_value=0, max_value=0xFFFFFFFF),
    data_garbage=st.integers(min_value=0, max_value=0xFFFFFFFF),
)
def test_repair_always_yields_the_largest_whole_block_length(
    tmp_path: Path, payload_len: int, channels: int, riff_garbage: int, data_garbage: int
) -> None:
    # Bytes >= 0x80 never spell a printable chunk ID, so the audio after a garbage data size
    # cannot pass for trailing chunks (which repair would rightly keep).
    payload = bytes(0x80 | (i * 37 % 128) for i in range(payload_len))
    path = tmp_path / "random.wav"
    path.write_bytes(
        _hand_wav(
            _fmt_body(channels=channels),
            payload,
            riff_size=riff_garbage,
            data_size=data_garbage,
        )
    )
    block = 2 * channels
    expected = payload_len - payload_len % block

    info, _changed = repair_wav_header(path)

    assert info.data_bytes == expected
    assert path.stat().st_size == 44 + expected
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == channels
        assert w.getnframes() == expected // block
        assert w.readframes(w.getnframes()) == payload[:expected]
    assert repair_wav_header(path) == (info, False)


# -- silence ---------------------------------------------------------------------------------


def _level_samples(dbfs: float, seconds: float, *, noise: bool = False, seed: int = 1) -> list[int]:
    """16-bit samples whose RMS is ``dbfs`` (re 32768): a 440 Hz tone, or white noise."""
    import random

    n = round(seconds * RATE)
    rms = 32768 * 10 ** (dbfs / 20)
    if noise:
        rng = random.Random(seed)
        return [max(-32768, min(32767, round(rng.gauss(0, rms)))) for _ in range(n)]
    peak = rms * math.sqrt(2)
    return [round(peak * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(n)]


def _pcm16(path: Path, samples: list[int]) -> Path:
    _write_with_wave(path, struct.pack(f"<{len(samples)}h", *samples))
    return path


@pytest.mark.parametrize(
    ("what", "samples"),
    [
        ("digital silence", [0] * RATE * 10),
        ("A-law idle code, decoded (+-8)", [8, -8] * RATE * 5),
        ("line noise at the G.712 limit, -71 dBFS", _level_samples(-71, 10, noise=True)),
        ("comfort noise at -60 dBFS", _level_samples(-60, 10, noise=True)),
        ("one 20 ms click in 10 s of silence", [0] * 40000 + [20000] * 160 + [0] * 39840),
    ],
)
def test_silence_and_line_noise_are_silent(tmp_path: Path, what: str, samples: list[int]) -> None:
    assert is_silent(_pcm16(tmp_path / "quiet.wav", samples)), what


@pytest.mark.parametrize(
    ("what", "samples", "seconds"),
    [
        ("a quiet speaker's level, -41 dBFS", _level_samples(-41, 3), 3.0),
        ("a -45 dBFS tone after 8 s of silence", [0] * RATE * 8 + _level_samples(-45, 1), 1.0),
        ("0.3 s of noise at -40 dBFS", [0] * RATE * 2 + _level_samples(-40, 0.3, noise=True), 0.3),
    ],
)
def test_quiet_sound_is_not_silent_and_is_counted(
    tmp_path: Path, what: str, samples: list[int], seconds: float
) -> None:
    path = _pcm16(tmp_path / "sound.wav", samples)
    assert not is_silent(path), what
    assert sound_seconds(path) == pytest.approx(seconds, abs=0.03), what


def test_the_threshold_is_the_documented_level(tmp_path: Path) -> None:
    below = _pcm16(tmp_path / "below.wav", _level_samples(SILENCE_DBFS - 1, 2))
    above = _pcm16(tmp_path / "above.wav", _level_samples(SILENCE_DBFS + 1, 2))
    assert sound_seconds(below) == 0.0
    assert sound_seconds(above) == pytest.approx(2.0, abs=0.01)
    assert sound_seconds(above, enough_s=MIN_SOUND_S) == pytest.approx(MIN_SOUND_S, abs=0.02)


@pytest.mark.parametrize(("tag", "silent_code"), [(6, 0xD5), (7, 0xFF)], ids=["alaw", "ulaw"])
def test_companded_files_are_decoded(tmp_path: Path, tag: int, silent_code: int) -> None:
    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(_hand_wav(_fmt_body(tag=tag, bits=8), bytes([silent_code]) * RATE * 3))
    assert is_silent(quiet)
    loud_code = 0xAA if tag == 6 else 0x80  # a large sample in each law
    alternating = bytes([loud_code, loud_code ^ 0x80]) * (RATE // 2)
    loud = tmp_path / "loud.wav"
    loud.write_bytes(
        _hand_wav(_fmt_body(tag=tag, bits=8), bytes([silent_code]) * RATE + alternating)
    )
    assert sound_seconds(loud) == pytest.approx(1.0, abs=0.03)


def test_8_and_24_bit_pcm_and_stereo(tmp_path: Path) -> None:
    tone = _level_samples(-20, 1)
    eight = tmp_path / "eight.wav"
    eight.write_bytes(
        _hand_wav(_fmt_body(bits=8), bytes(128 + (s >> 8) for s in tone) + bytes([128]) * RATE)
    )
    assert sound_seconds(eight) == pytest.approx(1.0, abs=0.03)
    wide = b"".join((s << 8).to_bytes(3, "little", signed=True) for s in tone)
    twenty_four = tmp_path / "24.wav"
    twenty_four.write_bytes(_hand_wav(_fmt_body(bits=24), wide + bytes(3 * RATE)))
    assert sound_seconds(twenty_four) == pytest.approx(1.0, abs=0.03)
    # sound on the right channel only still counts
    stereo = [v for s in tone for v in (0, s)] + [0] * 2 * RATE
    path = tmp_path / "stereo.wav"
    _write_with_wave(path, struct.pack(f"<{len(stereo)}h", *stereo), channels=2)
    assert sound_seconds(path) == pytest.approx(1.0, abs=0.03)


def test_silence_check_refuses_a_non_wav(tmp_path: Path) -> None:
    path = tmp_path / "not.wav"
    path.write_bytes(b"ID3" + bytes(100))
    with pytest.raises(CorruptAudioError):
        is_silent(path)
