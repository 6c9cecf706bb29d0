"""Write pcap files of RTP that sipp's ``play_pcap_audio`` replays into a call.

The stream is G.711 A-law (payload type 8), 20 ms frames at 8 kHz, made from a WAV or a
generated tone, optionally followed by RFC 4733 telephone events (payload type 101) in the
same SSRC: sequence numbers run on, and each event's timestamp is the media time it starts
at. Every key gets a start packet (marker bit), continuation packets every 20 ms with a
growing duration, and three end packets (E bit, final duration), as RFC 4733 section 2.5.1
asks.

sipp reads only the UDP payloads and the capture times of a pcap (it sends them to the
call's media address at the recorded pace), so the frames are wrapped in fixed
Ethernet/IPv4/UDP headers with 127.0.0.1 on both sides.

A-law is encoded in pure Python (ITU-T G.711, as in the reference ``g711.c``): ``audioop``
is deprecated since Python 3.11 and the tests run with warnings as errors.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final

from tests.support.tones import read_pcm_mono, tone_samples

RATE: Final = 8000
"""Sample rate of the stream (Hz) and the RTP clock of both payload types."""
FRAME_SAMPLES: Final = 160
"""Samples per 20 ms RTP packet."""
FRAME_S: Final = FRAME_SAMPLES / RATE
PT_PCMA: Final = 8
PT_TELEPHONE_EVENT: Final = 101
END_RETRANSMISSIONS: Final = 3
"""How many packets with the E bit end each event."""

DTMF_EVENTS: Final = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}
"""RFC 4733 event codes of the DTMF keys."""

_PCAP_EPOCH: Final = 1_700_000_000
"""Capture time of the first packet (fixed, so the same input gives the same bytes)."""
_LOCALHOST: Final = bytes((127, 0, 0, 1))
_SEG_END: Final = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _alaw_of(sample: int) -> int:
    """A-law byte of one signed 16-bit sample (G.711 reference algorithm)."""
    pcm = sample >> 3  # A-law works on 13 bits
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    seg = next((i for i, end in enumerate(_SEG_END) if pcm <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    mantissa = (pcm >> 1) & 0x0F if seg < 2 else (pcm >> seg) & 0x0F
    return ((seg << 4) | mantissa) ^ mask


def _linear_of(code: int) -> int:
    """Signed 16-bit sample of one A-law byte."""
    code ^= 0x55
    value = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        value += 8
    else:
        value = (value + 0x108) << (seg - 1)
    return value if code & 0x80 else -value


@lru_cache(maxsize=1)
def _encode_table() -> bytes:
    """A-law byte of every 16-bit sample, indexed by the sample as unsigned (two's complement)."""
    return bytes(_alaw_of(i - 0x10000 if i >= 0x8000 else i) for i in range(0x10000))


@lru_cache(maxsize=1)
def _decode_table() -> tuple[int, ...]:
    return tuple(_linear_of(code) for code in range(256))


def alaw_encode(samples: Iterable[int]) -> bytes:
    """G.711 A-law bytes of signed 16-bit samples (one byte per sample)."""
    table = _encode_table()
    return bytes(table[s & 0xFFFF] for s in samples)


def alaw_decode(data: bytes) -> array[int]:
    """Signed 16-bit samples of G.711 A-law bytes."""
    table = _decode_table()
    return array("h", (table[b] for b in data))


@dataclass(frozen=True)
class RtpPacket:
    """One RTP packet and when it is sent."""

    at_s: float
    """Send time in seconds from the first packet."""
    marker: bool
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes

    def to_bytes(self) -> bytes:
        """The packet on the wire: a 12-byte RTP header (no CSRC, no extension), then payload."""
        first = 0x80  # version 2, no padding, no extension, no CSRC
        second = (0x80 if self.marker else 0) | self.payload_type
        header = struct.pack("!BBHII", first, second, self.seq, self.timestamp, self.ssrc)
        return header + self.payload


@dataclass(frozen=True)
class PcapSummary:
    """What :func:`write_rtp_pcap` wrote."""

    path: Path
    duration_s: float
    """Time from the first packet to the end of the last one (pause this long after playing)."""
    audio_packets: int
    event_packets: int


def _audio_samples(wav: Path | None, tone_hz: float | None, seconds: float) -> array[int]:
    if wav is not None and tone_hz is not None:
        raise ValueError("give a wav or a tone_hz, not both")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, not {seconds}")
    if wav is not None:
        samples = read_pcm_mono(wav, RATE)
        return samples[: round(seconds * RATE)] if seconds else samples
    if tone_hz is not None:
        return tone_samples(tone_hz, seconds, RATE)
    return array("h", bytes(2 * round(seconds * RATE)))


def _event_payload(event: int, end: bool, duration: int) -> bytes:
    """RFC 4733 payload: event, E|R|volume (volume 10 = -10 dBm0), duration in samples."""
    return struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)


def rtp_packets(
    samples: Sequence[int],
    dtmf: str = "",
    *,
    dtmf_ms: int = 160,
    dtmf_gap_ms: int = 100,
    ssrc: int = 0x5EED0001,
    first_seq: int = 1000,
    first_timestamp: int = 0,
) -> list[RtpPacket]:
    """The RTP stream of ``samples`` (A-law, 20 ms frames) followed by the keys of ``dtmf``.

    The last audio frame is padded with silence. Each key lasts ``dtmf_ms`` (rounded up to
    whole frames) and the next one starts ``dtmf_gap_ms`` after it; the gap must leave room
    for the three end packets, sent 20 ms apart after the key ends.
    """
    keys = dtmf.upper()
    unknown = sorted({k for k in keys if k not in DTMF_EVENTS})
    if unknown:
        raise ValueError(f"not DTMF keys: {''.join(unknown)!r} (use 0-9, *, #, A-D)")
    if dtmf_ms < 20:
        raise ValueError(f"dtmf_ms must be at least one frame (20 ms), not {dtmf_ms}")
    if dtmf_gap_ms < 20 * END_RETRANSMISSIONS:
        raise ValueError(
            f"dtmf_gap_ms must leave room for the end packets (>= 60), not {dtmf_gap_ms}"
        )
    if not 0 <= ssrc <= 0xFFFFFFFF:
        raise ValueError(f"ssrc is 32 bits, not {ssrc}")
    packets: list[RtpPacket] = []

    def add(at_frames: float, pt: int, ts_frames: int, payload: bytes, marker: bool) -> None:
        packets.append(
            RtpPacket(
                at_s=at_frames * FRAME_S,
                marker=marker,
                payload_type=pt,
                seq=(first_seq + len(packets)) & 0xFFFF,
                timestamp=(first_timestamp + ts_frames * FRAME_SAMPLES) & 0xFFFFFFFF,
                ssrc=ssrc,
                payload=payload,
            )
        )

    frames = -(-len(samples) // FRAME_SAMPLES)
    for i in range(frames):
        chunk = list(samples[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
        chunk += [0] * (FRAME_SAMPLES - len(chunk))
        add(i, PT_PCMA, i, alaw_encode(chunk), marker=i == 0)
    key_frames = -(-dtmf_ms // 20)
    gap_frames = -(-dtmf_gap_ms // 20)
    start = frames
    for key in keys:
        event = DTMF_EVENTS[key]
        for i in range(key_frames):
            duration = (i + 1) * FRAME_SAMPLES
            add(
                start + i, PT_TELEPHONE_EVENT, start, _event_payload(event, False, duration), i == 0
            )
        for j in range(END_RETRANSMISSIONS):
            end_payload = _event_payload(event, True, key_frames * FRAME_SAMPLES)
            add(start + key_frames + j, PT_TELEPHONE_EVENT, start, end_payload, False)
        start += key_frames + gap_frames
    return packets


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(rtp: bytes, ident: int, src_port: int, dst_port: int) -> bytes:
    """Ethernet + IPv4 + UDP around one RTP packet (UDP checksum 0: none, allowed on IPv4)."""
    udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(rtp), 0) + rtp
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        ident & 0xFFFF,
        0,
        64,
        17,
        0,
        _LOCALHOST,
        _LOCALHOST,
    )
    ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
    ethernet = bytes(6) + bytes(6) + struct.pack("!H", 0x0800)
    return ethernet + ip + udp


def write_pcap(
    path: Path, packets: Sequence[RtpPacket], *, src_port: int = 6000, dst_port: int = 6002
) -> Path:
    """Write RTP packets as a classic pcap (microsecond times, Ethernet link type)."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for ident, packet in enumerate(packets):
        frame = _frame(packet.to_bytes(), ident, src_port, dst_port)
        micros = round(packet.at_s * 1_000_000)
        out += struct.pack(
            "<IIII", _PCAP_EPOCH + micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)
        )
        out += frame
    path.write_bytes(bytes(out))
    return path


def write_rtp_pcap(
    path: Path,
    *,
    wav: Path | None = None,
    tone_hz: float | None = None,
    seconds: float = 0,
    dtmf: str = "",
    dtmf_ms: int = 160,
    dtmf_gap_ms: int = 100,
    ssrc: int = 0x5EED0001,
) -> PcapSummary:
    """Write a pcap of A-law RTP audio, then RFC 4733 events, for sipp's ``play_pcap_audio``.

    Args:
        path: the pcap to write (replaced if it exists).
        wav: audio to send (any file ffmpeg reads; resampled to 8 kHz mono). With
            ``seconds`` above 0 it is cut to that length.
        tone_hz: send a sine of this frequency (half full scale) for ``seconds`` instead.
        seconds: length of the tone, or of silence when neither ``wav`` nor ``tone_hz`` is
            given (0: no audio packets at all).
        dtmf: keys sent as RFC 4733 events after the audio (0-9, *, #, A-D).
        dtmf_ms: how long each key is held.
        dtmf_gap_ms: time from the end of one key to the start of the next (>= 60 ms).
        ssrc: the stream's SSRC.

    Returns:
        A :class:`PcapSummary`; its ``duration_s`` is how long sipp takes to play the file.
    """
    packets = rtp_packets(
        _audio_samples(wav, tone_hz, seconds),
        dtmf,
        dtmf_ms=dtmf_ms,
        dtmf_gap_ms=dtmf_gap_ms,
        ssrc=ssrc,
    )
    write_pcap(path, packets)
    duration = packets[-1].at_s + FRAME_S if packets else 0.0
    audio = sum(1 for p in packets if p.payload_type == PT_PCMA)
    return PcapSummary(path, duration, audio, len(packets) - audio)
