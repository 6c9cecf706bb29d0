"""RTP pcaps for sipp's play_pcap_audio (tests.support.rtp_pcap), read back with a tiny reader."""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from itertools import groupby, pairwise
from pathlib import Path

import pytest

from tests.support.rtp_pcap import (
    DTMF_EVENTS,
    alaw_decode,
    alaw_encode,
    rtp_packets,
    write_rtp_pcap,
)
from tests.support.tones import dominant_frequency, tone_present, write_tone_wav

RATE = 8000


@dataclass(frozen=True)
class Captured:
    """One packet read back from a pcap: capture time, IP/UDP facts and the RTP fields."""

    at: float
    src: str
    dst: str
    ip_checksum_ok: bool
    marker: bool
    pt: int
    seq: int
    ts: int
    ssrc: int
    payload: bytes


def _ip_sum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def read_pcap(path: Path) -> list[Captured]:
    """Parse a classic little-endian Ethernet pcap of IPv4/UDP/RTP; assert what sipp needs."""
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, link = struct.unpack_from("<IHHiIII", data, 0)
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    assert snaplen >= 1500
    packets = []
    offset = 24
    while offset < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, offset)
        offset += 16
        frame = data[offset : offset + incl]
        offset += incl
        assert incl == orig == len(frame)
        assert struct.unpack_from("!H", frame, 12)[0] == 0x0800  # IPv4 ethertype
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        assert ip[0] >> 4 == 4 and ihl == 20
        total_len, proto = struct.unpack_from("!H", ip, 2)[0], ip[9]
        assert proto == 17 and total_len == len(ip)
        udp = ip[ihl:]
        assert struct.unpack_from("!H", udp, 4)[0] == len(udp)
        rtp = udp[8:]
        first, second, seq, ts, ssrc = struct.unpack_from("!BBHII", rtp, 0)
        assert first == 0x80  # version 2, no padding/extension/CSRC
        packets.append(
            Captured(
                at=sec + usec / 1e6,
                src=".".join(map(str, ip[12:16])),
                dst=".".join(map(str, ip[16:20])),
                ip_checksum_ok=_ip_sum(ip[:ihl]) == 0xFFFF,
                marker=bool(second & 0x80),
                pt=second & 0x7F,
                seq=seq,
                ts=ts,
                ssrc=ssrc,
                payload=rtp[12:],
            )
        )
    return packets


def _events(packets: list[Captured]) -> list[list[Captured]]:
    """Telephone-event packets grouped by event (one timestamp each)."""
    events = [p for p in packets if p.pt == 101]
    return [list(g) for _, g in groupby(events, key=lambda p: p.ts)]


def test_pcap_is_loopback_udp_with_valid_ip_headers(tmp_path: Path) -> None:
    summary = write_rtp_pcap(tmp_path / "a.pcap", tone_hz=1000, seconds=0.5, dtmf="1")
    packets = read_pcap(summary.path)
    assert len(packets) == summary.audio_packets + summary.event_packets
    assert all(p.src == p.dst == "127.0.0.1" for p in packets)
    assert all(p.ip_checksum_ok for p in packets)


def test_rtp_headers_run_on_from_audio_into_events(tmp_path: Path) -> None:
    summary = write_rtp_pcap(
        tmp_path / "a.pcap", tone_hz=1000, seconds=1.0, dtmf="12#", ssrc=0x01020304
    )
    packets = read_pcap(summary.path)
    assert summary.audio_packets == 50
    assert [p.pt for p in packets] == [8] * 50 + [101] * summary.event_packets
    assert {p.ssrc for p in packets} == {0x01020304}
    for a, b in pairwise(packets):
        assert b.seq == (a.seq + 1) & 0xFFFF
    audio = packets[:50]
    for a, b in pairwise(audio):
        assert b.ts - a.ts == 160
        assert b.at - a.at == pytest.approx(0.020, abs=1e-6)
    assert packets[0].marker
    assert [p.marker for p in audio[1:]] == [False] * 49
    # Each event's timestamp is the media time it starts at, on the audio's clock.
    starts = [group[0] for group in _events(packets)]
    for start in starts:
        assert start.marker
        assert start.ts - packets[0].ts == round((start.at - packets[0].at) * RATE)
    assert starts[0].ts == audio[-1].ts + 160
    assert summary.duration_s == pytest.approx(packets[-1].at - packets[0].at + 0.020)


def test_alaw_payload_decodes_back_to_the_tone(tmp_path: Path) -> None:
    summary = write_rtp_pcap(tmp_path / "a.pcap", tone_hz=1000, seconds=1.0)
    packets = read_pcap(summary.path)
    assert all(len(p.payload) == 160 for p in packets)
    samples = alaw_decode(b"".join(p.payload for p in packets))
    assert len(samples) == RATE
    assert tone_present(samples, RATE, 1000, min_ratio=0.9)
    assert dominant_frequency(samples, RATE, [697, 1000, 1209, 1633]) == 1000


def test_wav_input_is_sent_and_cut_to_seconds(tmp_path: Path) -> None:
    wav = write_tone_wav(tmp_path / "t.wav", 697, 2.0)
    summary = write_rtp_pcap(tmp_path / "a.pcap", wav=wav, seconds=0.5)
    packets = read_pcap(summary.path)
    assert summary.audio_packets == 25
    samples = alaw_decode(b"".join(p.payload for p in packets))
    assert tone_present(samples, RATE, 697, min_ratio=0.9)


@pytest.mark.parametrize("keys", ["1", "12#", "*0D", "55"])
def test_each_key_is_one_rfc4733_event_ended_three_times(tmp_path: Path, keys: str) -> None:
    summary = write_rtp_pcap(
        tmp_path / "a.pcap", seconds=0.2, dtmf=keys, dtmf_ms=160, dtmf_gap_ms=100
    )
    events = _events(read_pcap(summary.path))
    assert len(events) == len(keys)
    for key, group in zip(keys, events, strict=True):
        fields = [struct.unpack("!BBH", p.payload) for p in group]
        assert {code for code, _, _ in fields} == {DTMF_EVENTS[key]}
        ends = [bool(flags & 0x80) for _, flags, _ in fields]
        assert ends == [False] * 8 + [True] * 3  # 160 ms of 20 ms packets, then 3 ends
        durations = [duration for _, _, duration in fields]
        assert durations[:8] == [160 * (i + 1) for i in range(8)]
        assert durations[8:] == [1280] * 3
        assert [p.marker for p in group] == [True] + [False] * 10
        assert all(flags & 0x3F == 10 for _, flags, _ in fields)  # volume -10 dBm0
    starts = [group[0] for group in events]
    for a, b in pairwise(starts):
        assert b.ts - a.ts == (160 + 100) * RATE // 1000


def test_dtmf_only_stream_starts_with_an_event() -> None:
    packets = rtp_packets([], "9", first_seq=65535, first_timestamp=0xFFFFFFFF - 80)
    assert packets[0].marker and packets[0].payload_type == 101
    assert [p.seq for p in packets[:3]] == [65535, 0, 1]  # sequence numbers wrap
    assert {p.timestamp for p in packets} == {0xFFFFFFFF - 80}


def test_alaw_reference_points() -> None:
    assert alaw_encode([0, -1, 32767, -32768]) == bytes([0xD5, 0x55, 0xAA, 0x2A])
    assert list(alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]


def test_alaw_matches_audioop_for_every_sample() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    samples = list(range(-32768, 32768))
    pcm = struct.pack(f"<{len(samples)}h", *samples)
    assert alaw_encode(samples) == audioop.lin2alaw(pcm, 2)
    codes = bytes(range(256))
    assert list(alaw_decode(codes)) == list(struct.unpack("<256h", audioop.alaw2lin(codes, 2)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tone_hz": 1000, "wav": Path("x.wav"), "seconds": 1}, "not both"),
        ({"dtmf": "1X"}, "not DTMF keys"),
        ({"dtmf": "1", "dtmf_gap_ms": 40}, "end packets"),
        ({"dtmf": "1", "dtmf_ms": 10}, "one frame"),
        ({"seconds": -1}, "negative"),
    ],
)
def test_bad_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_rtp_pcap(tmp_path / "a.pcap", **kwargs)  # type: ignore[arg-type]
