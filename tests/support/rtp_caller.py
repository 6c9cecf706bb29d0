"""A minimal SIP-over-UDP + RTP caller in pure Python, for benchmarks and end-to-end tests.

No pjsua2 runs in this process, so the caller can put its own clock on every packet: the
time each received RTP packet arrived and the time each DTMF key went down and came up are
``time.monotonic()`` readings taken next to the socket calls.

What it does, and only this (enough to call sipvm on loopback):

- INVITE with an SDP offer of PCMU (0) and telephone-event (101) at 8000 Hz; 100/180/183 are
  waited through, the INVITE is retransmitted (T1 doubling) until something answers, a 2xx
  is ACKed (and ACKed again if it is retransmitted), a failure is ACKed in its transaction.
- From the 200 OK on, 20 ms PCMU frames of digital silence go out continuously, from a
  thread on an absolute schedule (no drift).
- :meth:`RtpCaller.press` sends one RFC 4733 key in that stream: a start packet (marker
  bit) at once, an update every 20 ms while the key is held, then three end packets (E bit,
  same timestamp, final duration) 20 ms apart, as a phone does. Audio pauses meanwhile, and
  its 20 ms ticks carry on from the key-down.
- Every received RTP packet is kept with its arrival time (:attr:`RtpCaller.heard`).
- In-dialog requests from the server get answers: BYE, OPTIONS, INFO, NOTIFY, UPDATE → 200
  (a BYE also stops the media), a re-INVITE → 200 with the same SDP, anything else → 501.
- :meth:`RtpCaller.hangup` sends BYE and waits for its 200.

What it does not do: authentication, TCP/TLS, Record-Route/route sets, forking, SDP
renegotiation, RTCP (the RTCP port is bound so nothing bounces, and never read), SRTP.
It refuses any address outside 127.0.0.0/8.

Pure helpers (unit-tested): :func:`ulaw_encode`/:func:`ulaw_decode` (bit-exact with
pjmedia's table, so a prompt file's frames can be recognised on the wire), :func:`peak`,
:func:`dtmf_payloads`, :func:`parse_rtp`, :func:`sdp_offer`, :func:`parse_sdp_answer` and
:func:`parse_sip`.
"""

from __future__ import annotations

import ipaddress
import queue
import random
import socket
import struct
import threading
import time
import uuid
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

from tests.support.rtp_pcap import DTMF_EVENTS, END_RETRANSMISSIONS, RtpPacket

RATE: Final = 8000
FRAME_SAMPLES: Final = 160
FRAME_S: Final = FRAME_SAMPLES / RATE
PT_PCMU: Final = 0
PT_EVENT: Final = 101
"""The telephone-event payload type we offer."""
SILENT_FRAME: Final = b"\xff" * FRAME_SAMPLES
"""20 ms of PCMU digital silence (+0)."""
T1: Final = 0.5
"""SIP retransmission base interval (RFC 3261)."""

_COMPACT: Final = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
}
_ANSWERED_WITH_200: Final = frozenset({"BYE", "OPTIONS", "INFO", "NOTIFY", "UPDATE"})


# -- G.711 µ-law ------------------------------------------------------------------------------


def _ulaw_of(sample: int) -> int:
    """µ-law byte of one signed 16-bit sample, as pjmedia's table does it (14-bit input)."""
    value = sample >> 2  # pjmedia indexes its table with the top 14 bits
    mask = 0xFF
    if value < 0:
        value, mask = -value, 0x7F
    value = min(value, 8158) + 33  # clip, then add the bias (0x84 >> 2)
    seg = next((i for i in range(8) if value < (0x40 << i)), 8)
    if seg >= 8:
        return 0x7F ^ mask
    return ((seg << 4) | ((value >> (seg + 1)) & 0x0F)) ^ mask


def _linear_of_ulaw(code: int) -> int:
    code = ~code & 0xFF
    value = (((code & 0x0F) << 3) + 0x84) << ((code & 0x70) >> 4)
    return 0x84 - value if code & 0x80 else value - 0x84


@lru_cache(maxsize=1)
def _encode_table() -> bytes:
    return bytes(_ulaw_of(i - 0x10000 if i >= 0x8000 else i) for i in range(0x10000))


@lru_cache(maxsize=1)
def _decode_table() -> tuple[int, ...]:
    return tuple(_linear_of_ulaw(code) for code in range(256))


def ulaw_encode(samples: Iterable[int]) -> bytes:
    """PCMU bytes of signed 16-bit samples, bit-exact with what pjmedia sends."""
    table = _encode_table()
    return bytes(table[s & 0xFFFF] for s in samples)


def ulaw_decode(data: bytes) -> array[int]:
    """Signed 16-bit samples of PCMU bytes."""
    table = _decode_table()
    return array("h", (table[b] for b in data))


@lru_cache(maxsize=1)
def _peak_table() -> tuple[int, ...]:
    return tuple(abs(s) for s in _decode_table())


def peak(payload: bytes) -> int:
    """Largest absolute sample of a PCMU payload (0 for digital silence)."""
    table = _peak_table()
    return max((table[b] for b in payload), default=0)


# -- RFC 4733 ---------------------------------------------------------------------------------


def dtmf_payloads(key: str, hold_ms: int = 100, volume: int = 10) -> list[tuple[bytes, bool]]:
    """The telephone-event payloads of one key press, one per 20 ms tick, with marker bits.

    The key goes down at tick 0 (marker bit, duration 160) and is updated every tick while
    held; at tick ``hold_ms / 20`` it comes up: :data:`END_RETRANSMISSIONS` end packets (E
    bit, the final duration) follow on consecutive ticks. All share the event's timestamp.
    """
    event = DTMF_EVENTS.get(key.upper())
    if event is None:
        raise ValueError(f"not a DTMF key: {key!r} (use 0-9, *, #, A-D)")
    if hold_ms < 20 or hold_ms % 20:
        raise ValueError(f"hold_ms must be a multiple of 20 ms and at least 20, not {hold_ms}")
    if not 0 <= volume <= 63:
        raise ValueError(f"volume is 0..63 (-dBm0), not {volume}")
    ticks = hold_ms // 20
    held = [
        (struct.pack("!BBH", event, volume, (i + 1) * FRAME_SAMPLES), i == 0) for i in range(ticks)
    ]
    end = struct.pack("!BBH", event, 0x80 | volume, ticks * FRAME_SAMPLES)
    return held + [(end, False)] * END_RETRANSMISSIONS


# -- SDP --------------------------------------------------------------------------------------


def sdp_offer(host: str, port: int, session_id: int = 1) -> str:
    """Our offer: PCMU and telephone-event 0-16 at 8000 Hz, 20 ms frames, sendrecv."""
    return (
        f"v=0\r\no=- {session_id} {session_id} IN IP4 {host}\r\ns=-\r\n"
        f"c=IN IP4 {host}\r\nt=0 0\r\nm=audio {port} RTP/AVP {PT_PCMU} {PT_EVENT}\r\n"
        f"a=rtpmap:{PT_PCMU} PCMU/8000\r\na=rtpmap:{PT_EVENT} telephone-event/8000\r\n"
        f"a=fmtp:{PT_EVENT} 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )


@dataclass(frozen=True)
class SdpAnswer:
    """What we need from the answer: where to send audio and which payload types to use."""

    host: str
    port: int
    payload_types: tuple[int, ...]
    """The audio m-line's formats, in the answerer's order of preference."""
    rtpmap: dict[int, str] = field(default_factory=dict)
    """Payload type → encoding name/rate, e.g. ``{0: "PCMU/8000"}``."""

    @property
    def event_pt(self) -> int | None:
        """The telephone-event payload type, or None if the answer has none."""
        return next(
            (pt for pt, name in self.rtpmap.items() if name.lower().startswith("telephone-event")),
            None,
        )


def parse_sdp_answer(text: str) -> SdpAnswer:
    """The audio stream of an SDP answer (connection line at media or session level).

    Raises:
        ValueError: no audio stream, a declined one (port 0), no address, or no PCMU.
    """
    session_host: str | None = None
    media_host: str | None = None
    port: int | None = None
    pts: tuple[int, ...] = ()
    rtpmap: dict[int, str] = {}
    in_audio = seen_audio = False
    for raw in text.splitlines():
        kind, _, value = raw.strip().partition("=")
        if kind == "m":
            parts = value.split()
            in_audio = parts[0] == "audio" and not seen_audio
            if in_audio:
                seen_audio = True
                port, pts = int(parts[1]), tuple(int(p) for p in parts[3:])
        elif kind == "c":
            address = value.split()[-1].split("/")[0]
            if in_audio:
                media_host = address
            elif not seen_audio:
                session_host = address
        elif kind == "a" and in_audio and value.startswith("rtpmap:"):
            pt, _, name = value[len("rtpmap:") :].partition(" ")
            rtpmap[int(pt)] = name.strip()
    if port is None:
        raise ValueError("the SDP answer has no audio stream")
    if port == 0:
        raise ValueError("the SDP answer declined the audio stream (port 0)")
    host = media_host or session_host
    if host is None:
        raise ValueError("the SDP answer has no connection address (c=)")
    if PT_PCMU not in pts:
        raise ValueError(f"the SDP answer does not take PCMU (formats {pts})")
    return SdpAnswer(host, port, pts, rtpmap)


# -- SIP messages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SipMessage:
    """A parsed SIP request or response (header names lower-case, compact forms expanded)."""

    first_line: str
    headers: tuple[tuple[str, str], ...]
    body: str

    @property
    def is_response(self) -> bool:
        return self.first_line.startswith("SIP/2.0 ")

    @property
    def status(self) -> int:
        """The status code of a response (0 for a request)."""
        return int(self.first_line.split()[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        """The method of a request, or of the request a response answers (from CSeq)."""
        if self.is_response:
            return self.header("cseq").split()[-1].upper()
        return self.first_line.split()[0].upper()

    def header(self, name: str) -> str:
        """The first value of header ``name`` ("" if absent)."""
        name = name.lower()
        return next((v for n, v in self.headers if n == name), "")

    def all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order."""
        name = name.lower()
        return [v for n, v in self.headers if n == name]


def parse_sip(data: bytes) -> SipMessage:
    """Parse one SIP message from a UDP datagram (folded header lines are joined).

    Raises:
        ValueError: not a SIP message.
    """
    text = data.decode("utf-8", errors="replace")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    first = lines[0].strip()
    if not (first.startswith("SIP/2.0 ") or first.endswith(" SIP/2.0")):
        raise ValueError(f"not a SIP message: {first[:60]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            headers.append((_COMPACT.get(key, key), value.strip()))
    return SipMessage(first, tuple(headers), body)


def _tag_of(value: str) -> str:
    """The ``tag`` parameter of a From/To value ("" if none)."""
    for param in value.rsplit(">", 1)[-1].split(";")[1:]:
        name, _, tag = param.strip().partition("=")
        if name.lower() == "tag":
            return tag
    return ""


def _uri_of(value: str) -> str:
    """The URI of a name-addr (``"x" <sip:a@b>;p``) or addr-spec value."""
    if "<" in value:
        return value.split("<", 1)[1].split(">", 1)[0]
    return value.split(";", 1)[0].strip()


def _check_loopback(host: str) -> None:
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address: this caller only talks to 127/8")


# -- the caller -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heard:
    """One RTP packet received, with its arrival time."""

    at: float
    """``time.monotonic()`` right after the datagram was read."""
    seq: int
    timestamp: int
    payload_type: int
    marker: bool
    payload: bytes


def parse_rtp(data: bytes, at: float) -> Heard | None:
    """The RTP packet in a datagram received at ``at`` (None if it is not RTP version 2)."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    start = 12 + 4 * (data[0] & 0x0F)  # after the CSRC list
    if data[0] & 0x10:  # a header extension: 4 bytes, then its length in 32-bit words
        if len(data) < start + 4:
            return None
        start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
    end = len(data) - (data[-1] if data[0] & 0x20 else 0)  # padding: its count is last
    if end < start:
        return None
    seq, timestamp = struct.unpack_from("!HI", data, 2)
    return Heard(at, seq, timestamp, data[1] & 0x7F, bool(data[1] & 0x80), data[start:end])


@dataclass(frozen=True)
class Digit:
    """One key sent as RFC 4733 events."""

    key: str
    down_at: float
    """``time.monotonic()`` as the start packet went out."""
    up_at: float
    """``time.monotonic()`` as the first end packet (E bit) went out."""


@dataclass
class _Press:
    payloads: list[tuple[bytes, bool]]
    key: str
    done: threading.Event = field(default_factory=threading.Event)
    down_at: float = 0.0
    up_at: float = 0.0


class RtpCaller:
    """One call from ``bind`` to a SIP server on loopback, with RTP media in PCMU.

    Use as a context manager (it closes its sockets and threads)::

        with RtpCaller(("127.0.0.1", 5060), bind="127.0.0.2") as caller:
            assert caller.invite("voicemail", headers=[("Diversion", "<sip:2001@...>")]) == 200
            digit = caller.press("#")
            caller.wait_heard(lambda p: p.at > digit.up_at and peak(p.payload) > 64)
            caller.hangup()
    """

    def __init__(
        self,
        server: tuple[str, int],
        *,
        bind: str = "127.0.0.1",
        user: str = "5550100",
        display_name: str = "Bench Caller",
    ) -> None:
        _check_loopback(server[0])
        _check_loopback(bind)
        self.server = server
        self.bind = bind
        self.user = user
        self.display_name = display_name
        self._sip = self._socket(0)
        self._rtp, self._rtcp = self._rtp_pair()
        self.sip_port = int(self._sip.getsockname()[1])
        self.rtp_port = int(self._rtp.getsockname()[1])
        self.call_id = uuid.uuid4().hex
        self._to_user = ""
        self._local_tag = uuid.uuid4().hex[:10]
        self._remote_tag = ""
        self._remote_target = ""
        self._cseq = 1
        self._responses: queue.Queue[SipMessage] = queue.Queue()
        self._ack: bytes | None = None
        self._answer: SdpAnswer | None = None
        self._presses: queue.Queue[_Press] = queue.Queue()
        self._heard: list[Heard] = []
        self._heard_changed = threading.Condition()
        self._closing = threading.Event()
        self._media_stop = threading.Event()
        self.bye_received = threading.Event()
        """Set when the server ended the call with a BYE."""
        self._threads = [
            threading.Thread(target=self._sip_loop, name="rtp-caller-sip", daemon=True),
            threading.Thread(target=self._rtp_rx_loop, name="rtp-caller-rx", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    # -- sockets ------------------------------------------------------------------------------

    def _socket(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.bind, port))
        sock.settimeout(0.05)  # the loops look at _closing this often
        return sock

    def _rtp_pair(self) -> tuple[socket.socket, socket.socket]:
        """An even RTP port and the RTCP port above it."""
        for _ in range(50):
            rtp = self._socket(0)
            port = int(rtp.getsockname()[1])
            if port % 2 == 0 and port < 65535:
                try:
                    return rtp, self._socket(port + 1)
                except OSError:
                    pass
            rtp.close()
        raise OSError(f"no free even RTP port pair on {self.bind}")

    def __enter__(self) -> RtpCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the media and the threads and close the sockets (no BYE: see :meth:`hangup`)."""
        self._media_stop.set()
        self._closing.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(2)
        for sock in (self._sip, self._rtp, self._rtcp):
            sock.close()

    # -- SIP ----------------------------------------------------------------------------------

    @property
    def answer(self) -> SdpAnswer | None:
        """The server's SDP answer, once the call is up."""
        return self._answer

    def _headers(self, method: str, cseq: int, branch: str, *, to_tag: str) -> str:
        host, port = self.server
        to_tag_param = f";tag={to_tag}" if to_tag else ""
        return (
            f"Via: SIP/2.0/UDP {self.bind}:{self.sip_port};branch=z9hG4bK{branch};rport\r\n"
            f'From: "{self.display_name}" <sip:{self.user}@{self.bind}>;tag={self._local_tag}\r\n'
            f"To: <sip:{self._to_user}@{host}:{port}>{to_tag_param}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {method}\r\nMax-Forwards: 70\r\n"
            f"Contact: <sip:{self.user}@{self.bind}:{self.sip_port}>\r\n"
        )

    def _send_sip(self, text: str) -> bytes:
        data = text.encode()
        self._sip.sendto(data, self.server)
        return data

    def invite(
        self, to_user: str, *, headers: Sequence[tuple[str, str]] = (), timeout: float = 10.0
    ) -> int:
        """Call ``sip:to_user@server``; returns the final status (200: media is flowing).

        Raises:
            TimeoutError: no final response in ``timeout`` seconds.
            ValueError: a 2xx whose SDP answer we cannot use (the call is ended with BYE).
        """
        self._to_user = to_user
        host, port = self.server
        branch = uuid.uuid4().hex[:16]
        sdp = sdp_offer(self.bind, self.rtp_port, session_id=random.randrange(1, 2**31))
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
        request = self._send_sip(
            f"INVITE sip:{to_user}@{host}:{port} SIP/2.0\r\n"
            + self._headers("INVITE", 1, branch, to_tag="")
            + extra
            + "Content-Type: application/sdp\r\n"
            + f"Content-Length: {len(sdp.encode())}\r\n\r\n{sdp}"
        )
        deadline = time.monotonic() + timeout
        resend_at, interval, provisional = time.monotonic() + T1, T1, False
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise TimeoutError(f"no final answer to the INVITE in {timeout} s")
            if not provisional and now >= resend_at:
                self._sip.sendto(request, self.server)
                interval = min(interval * 2, 4.0)
                resend_at = now + interval
            try:
                reply = self._responses.get(timeout=min(0.05, deadline - now))
            except queue.Empty:
                continue
            if reply.method != "INVITE" or reply.header("call-id") != self.call_id:
                continue
            if reply.status < 200:
                provisional = True
                continue
            self._remote_tag = _tag_of(reply.header("to"))
            if reply.status >= 300:  # ACK a failure in its own transaction (same branch)
                self._send_sip(
                    f"ACK sip:{to_user}@{host}:{port} SIP/2.0\r\n"
                    + self._headers("ACK", 1, branch, to_tag=self._remote_tag)
                    + "Content-Length: 0\r\n\r\n"
                )
                return reply.status
            self._remote_target = _uri_of(reply.header("contact")) or f"sip:{to_user}@{host}:{port}"
            self._ack = self._send_sip(
                f"ACK {self._remote_target} SIP/2.0\r\n"
                + self._headers("ACK", 1, uuid.uuid4().hex[:16], to_tag=self._remote_tag)
                + "Content-Length: 0\r\n\r\n"
            )
            try:
                self._answer = parse_sdp_answer(reply.body)
                _check_loopback(self._answer.host)
            except ValueError:
                self.hangup()
                raise
            sender = threading.Thread(target=self._rtp_tx_loop, name="rtp-caller-tx", daemon=True)
            self._threads.append(sender)
            sender.start()
            return reply.status

    def hangup(self, timeout: float = 5.0) -> int:
        """Send BYE (unless the server already ended the call); returns its final status."""
        self._media_stop.set()
        if self.bye_received.is_set() or not self._remote_target:
            return 0
        self._cseq += 1
        cseq = self._cseq
        request = self._send_sip(
            f"BYE {self._remote_target} SIP/2.0\r\n"
            + self._headers("BYE", cseq, uuid.uuid4().hex[:16], to_tag=self._remote_tag)
            + "Content-Length: 0\r\n\r\n"
        )
        deadline = time.monotonic() + timeout
        resend_at, interval = time.monotonic() + T1, T1
        while time.monotonic() < deadline:
            if time.monotonic() >= resend_at:
                self._sip.sendto(request, self.server)
                interval = min(interval * 2, 4.0)
                resend_at = time.monotonic() + interval
            try:
                reply = self._responses.get(timeout=0.05)
            except queue.Empty:
                if self.bye_received.is_set():
                    return 0
                continue
            mine = reply.method == "BYE" and reply.header("cseq").split()[0] == str(cseq)
            if mine and reply.status >= 200:
                return reply.status
        raise TimeoutError(f"no answer to the BYE in {timeout} s")

    def _sip_loop(self) -> None:
        while not self._closing.is_set():
            try:
                data, source = self._sip.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                message = parse_sip(data)
            except ValueError:
                continue
            if message.is_response:
                if message.method == "INVITE" and message.status >= 200 and self._ack:
                    self._sip.sendto(self._ack, self.server)  # our ACK was lost: again
                self._responses.put(message)
            else:
                self._answer_request(message, source)

    def _answer_request(self, request: SipMessage, source: tuple[str, int]) -> None:
        method = request.method
        if method == "ACK":
            return
        body = ""
        if method in _ANSWERED_WITH_200:
            status = "200 OK"
        elif method == "INVITE" and request.header("call-id") == self.call_id:
            status, body = "200 OK", sdp_offer(self.bind, self.rtp_port)
        else:
            status = "501 Not Implemented"
        to = request.header("to")
        if not _tag_of(to):
            to += f";tag={self._local_tag}"
        lines = [f"SIP/2.0 {status}"]
        lines += [f"Via: {v}" for v in request.all("via")]
        lines += [
            f"From: {request.header('from')}",
            f"To: {to}",
            f"Call-ID: {request.header('call-id')}",
            f"CSeq: {request.header('cseq')}",
            f"Contact: <sip:{self.user}@{self.bind}:{self.sip_port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self._sip.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), source)
        if method == "BYE" and request.header("call-id") == self.call_id:
            self._media_stop.set()
            self.bye_received.set()

    # -- RTP ----------------------------------------------------------------------------------

    def press(self, key: str, hold_ms: int = 100, timeout: float = 5.0) -> Digit:
        """Send ``key`` as RFC 4733 events; returns once its last end packet went out."""
        job = _Press(dtmf_payloads(key, hold_ms), key)
        if self._answer is None or self._media_stop.is_set():
            raise RuntimeError("no call with media to send a key in")
        self._presses.put(job)
        if not job.done.wait(timeout):
            raise TimeoutError(f"key {key!r} not sent in {timeout} s (media stopped?)")
        return Digit(key, job.down_at, job.up_at)

    def _rtp_tx_loop(self) -> None:
        """One packet per 20 ms tick: silence, or the current key's next event packet.

        A key goes out as soon as it is pressed, not on the next tick (a phone sends the
        key-down when the key goes down), and the ticks carry on from there: so keys land at
        any phase of the server's media clock, not at the one this call happened to start on.
        """
        answer = self._answer
        assert answer is not None
        target = (answer.host, answer.port)
        event_pt = answer.event_pt if answer.event_pt is not None else PT_EVENT
        ssrc = random.getrandbits(32)
        seq = random.getrandbits(16)
        clock = random.getrandbits(32)  # media timestamp of the current tick
        job: _Press | None = None
        job_tick = event_ts = 0
        next_at = time.monotonic()
        while not self._media_stop.is_set():
            if job is None:
                packet = RtpPacket(0.0, False, PT_PCMU, seq, clock, ssrc, SILENT_FRAME)
            else:
                payload, marker = job.payloads[job_tick]
                packet = RtpPacket(0.0, marker, event_pt, seq, event_ts, ssrc, payload)
            sent_at = time.monotonic()
            try:
                self._rtp.sendto(packet.to_bytes(), target)
            except OSError:
                return
            if job is not None:
                if job_tick == 0:
                    job.down_at = sent_at
                if packet.payload[1] & 0x80 and not job.up_at:
                    job.up_at = sent_at
                job_tick += 1
                if job_tick == len(job.payloads):
                    job.done.set()
                    job = None
            seq = (seq + 1) & 0xFFFF
            clock = (clock + FRAME_SAMPLES) & 0xFFFFFFFF
            next_at += FRAME_S
            if next_at < time.monotonic() - 0.1:  # stalled for 5 frames: do not send a burst
                next_at = time.monotonic()
            if job is not None:
                self._media_stop.wait(max(0.0, next_at - time.monotonic()))
                continue
            try:
                job = self._presses.get(timeout=max(0.0, next_at - time.monotonic()))
            except queue.Empty:
                continue
            job_tick, event_ts, next_at = 0, clock, time.monotonic()

    def _rtp_rx_loop(self) -> None:
        while not self._closing.is_set():
            try:
                data = self._rtp.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            heard = parse_rtp(data, time.monotonic())
            if heard is not None:
                with self._heard_changed:
                    self._heard.append(heard)
                    self._heard_changed.notify_all()

    @property
    def heard(self) -> list[Heard]:
        """A snapshot of every RTP packet received so far, in arrival order."""
        with self._heard_changed:
            return list(self._heard)

    def wait_heard(
        self, match: Callable[[Heard], bool], *, start: int = 0, timeout: float = 10.0
    ) -> int:
        """Index in :attr:`heard` of the first packet from ``start`` on that ``match``\\ es.

        Raises:
            TimeoutError: none arrived within ``timeout`` seconds (or the call ended).
        """
        deadline = time.monotonic() + timeout
        index = start
        with self._heard_changed:
            while True:
                while index < len(self._heard):
                    if match(self._heard[index]):
                        return index
                    index += 1
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closing.is_set():
                    raise TimeoutError(f"no matching RTP packet in {timeout} s")
                self._heard_changed.wait(min(remaining, 0.1))
