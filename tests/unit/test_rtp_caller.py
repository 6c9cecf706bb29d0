"""The pure parts of tests.support.rtp_caller: µ-law, RFC 4733 payloads, SDP and SIP parsing."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.rtp_caller import (
    PT_EVENT,
    Heard,
    RtpCaller,
    SdpAnswer,
    SipMessage,
    dtmf_payloads,
    parse_rtp,
    parse_sdp_answer,
    parse_sip,
    peak,
    sdp_offer,
    ulaw_decode,
    ulaw_encode,
)

# The 200 OK's SDP body that sipvm (pjsua2 2.15.1) answers our offer with, as captured.
SIPVM_ANSWER = (
    "v=0\r\n"
    "o=- 3973700000 3973700001 IN IP4 127.0.0.1\r\n"
    "s=pjmedia\r\n"
    "b=AS:84\r\n"
    "t=0 0\r\n"
    "m=audio 40012 RTP/AVP 0 101\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "b=TIAS:64000\r\n"
    "a=rtcp:40013 IN IP4 127.0.0.1\r\n"
    "a=sendrecv\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-16\r\n"
    "a=ssrc:1431112018 cname:2d1c69a5600c4d6b\r\n"
)


# -- µ-law ------------------------------------------------------------------------------------


def test_ulaw_encoding_is_pjmedias_table() -> None:
    # pjmedia_linear2ulaw_tab[0..35] (indexed by sample >> 2), from pjmedia/alaw_ulaw_table.c
    table_start = bytes.fromhex(
        "fffefefdfdfcfcfbfbfafaf9f9f8f8f7f7f6f6f5f5f4f4f3f3f2f2f1f1f0f0efefefefee"
    )
    assert ulaw_encode(4 * i for i in range(36)) == table_start
    # the low two bits are dropped, as the table index drops them
    assert ulaw_encode(4 * i + 3 for i in range(36)) == table_start


def test_ulaw_extremes_zero_and_small_negatives() -> None:
    assert ulaw_encode([0, 1, 3]) == b"\xff\xff\xff"
    assert ulaw_encode([-1, -4]) == b"\x7e\x7e"  # -1 >> 2 is -1: not the "negative zero" 0x7f
    assert ulaw_encode([32767, -32768]) == b"\x80\x00"
    assert list(ulaw_decode(b"\xff\x7f\x00\x80\x7e")) == [0, 0, -32124, 32124, -8]


@pytest.mark.parametrize("sample", [-30000, -5000, -700, -100, -9, 9, 100, 700, 5000, 30000])
def test_ulaw_round_trip_keeps_the_sample_within_its_step(sample: int) -> None:
    (back,) = ulaw_decode(ulaw_encode([sample]))
    assert (back > 0) == (sample > 0)
    assert abs(back - sample) <= max(8, abs(sample) // 16)  # µ-law steps: 1/16 of a segment


def test_peak_reads_silence_as_zero_and_finds_the_loudest_sample() -> None:
    assert peak(b"\xff" * 160) == 0
    assert peak(b"\x7f" * 160) == 0
    assert peak(b"") == 0
    assert peak(ulaw_encode([0, 100, -2000, 50])) == pytest.approx(2000, rel=1 / 16)


# -- RFC 4733 ---------------------------------------------------------------------------------


def _fields(payload: bytes) -> tuple[int, bool, int, int]:
    event, flags, duration = struct.unpack("!BBH", payload)
    return event, bool(flags & 0x80), flags & 0x3F, duration


def test_a_key_is_start_updates_then_three_end_packets() -> None:
    packets = dtmf_payloads("#", hold_ms=100)
    assert len(packets) == 5 + 3  # one per 20 ms tick while held, then three ends
    assert [marker for _, marker in packets] == [True] + [False] * 7
    fields = [_fields(p) for p, _ in packets]
    assert {f[0] for f in fields} == {11}  # '#' is event 11
    assert [f[1] for f in fields] == [False] * 5 + [True] * 3
    assert [f[3] for f in fields] == [160, 320, 480, 640, 800, 800, 800, 800]
    assert {f[2] for f in fields} == {10}  # -10 dBm0


@pytest.mark.parametrize(("key", "event"), [("0", 0), ("9", 9), ("*", 10), ("a", 12), ("D", 15)])
def test_event_codes(key: str, event: int) -> None:
    (first, _), *_ = dtmf_payloads(key, hold_ms=20)
    assert _fields(first)[0] == event


def test_shortest_press_is_one_tick_then_the_ends() -> None:
    packets = dtmf_payloads("5", hold_ms=20)
    assert [_fields(p)[1:] for p, _ in packets] == [(False, 10, 160)] + [(True, 10, 160)] * 3


@pytest.mark.parametrize(
    ("key", "hold_ms", "volume"), [("x", 100, 10), ("#", 0, 10), ("#", 50, 10), ("1", 100, 64)]
)
def test_bad_keys_holds_and_volumes_are_refused(key: str, hold_ms: int, volume: int) -> None:
    with pytest.raises(ValueError):
        dtmf_payloads(key, hold_ms=hold_ms, volume=volume)


# -- RTP ---------------------------------------------------------------------------------------


def test_rtp_header_fields_and_payload() -> None:
    data = struct.pack("!BBHII", 0x80, 0x80 | 0, 513, 160_000, 0xABCD) + b"\xff" * 160
    assert parse_rtp(data, 1.5) == Heard(1.5, 513, 160_000, 0, True, b"\xff" * 160)


def test_rtp_csrcs_extension_and_padding_are_skipped() -> None:
    head = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 101, 1, 2, 3) + bytes(8)  # 2 CSRCs
    extension = struct.pack("!HH", 0xBEDE, 1) + bytes(4)
    data = head + extension + b"\x0b\x8a\x03\x20" + b"\x00\x00\x03"  # 3 bytes of padding
    heard = parse_rtp(data, 0.0)
    assert heard is not None and heard.payload_type == 101
    assert heard.payload == b"\x0b\x8a\x03\x20"


@pytest.mark.parametrize("data", [b"", b"\x80\x00", b"\x40" + bytes(20), b"\x90" + bytes(13)])
def test_what_is_not_rtp_is_dropped(data: bytes) -> None:
    assert parse_rtp(data, 0.0) is None


# -- SDP --------------------------------------------------------------------------------------


def test_sipvms_answer_is_parsed() -> None:
    answer = parse_sdp_answer(SIPVM_ANSWER)
    assert answer == SdpAnswer(
        "127.0.0.1", 40012, (0, 101), {0: "PCMU/8000", 101: "telephone-event/8000"}
    )
    assert answer.event_pt == 101


def test_our_offer_parses_as_an_answer_would() -> None:
    offer = sdp_offer("127.0.0.2", 30000, session_id=7)
    assert "m=audio 30000 RTP/AVP 0 101\r\n" in offer
    assert offer.endswith("a=sendrecv\r\n")
    answer = parse_sdp_answer(offer)
    assert (answer.host, answer.port, answer.event_pt) == ("127.0.0.2", 30000, PT_EVENT)


def test_session_level_connection_and_another_event_payload_type() -> None:
    text = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\n"
        "m=audio 5004 RTP/AVP 0 96\r\na=rtpmap:96 telephone-event/8000\r\n"
        "m=video 5006 RTP/AVP 31\r\nc=IN IP4 10.0.0.1\r\n"
    )
    answer = parse_sdp_answer(text)
    assert (answer.host, answer.port, answer.payload_types) == ("127.0.0.9", 5004, (0, 96))
    assert answer.event_pt == 96


def test_answer_without_telephone_event_has_no_event_pt() -> None:
    text = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5004 RTP/AVP 0\r\n"
    assert parse_sdp_answer(text).event_pt is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("v=0\r\nc=IN IP4 127.0.0.1\r\n", "no audio"),
        ("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 0 RTP/AVP 0\r\n", "declined"),
        ("v=0\r\nm=audio 5004 RTP/AVP 0\r\n", "no connection address"),
        ("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 5004 RTP/AVP 8\r\n", "PCMU"),
    ],
)
def test_unusable_answers_are_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_sdp_answer(text)


# -- SIP --------------------------------------------------------------------------------------


def test_response_with_compact_and_folded_headers() -> None:
    data = (
        b"SIP/2.0 200 OK\r\n"
        b"v: SIP/2.0/UDP 127.0.0.2:5070;branch=z9hG4bKabc;rport=5070\r\n"
        b'f: "Bench" <sip:5550100@127.0.0.2>;tag=abc\r\n'
        b"t: <sip:voicemail@127.0.0.1:5060>;tag=xyz\r\n"
        b"i: 42\r\nCSeq: 1 INVITE\r\n"
        b"m: <sip:sipvm@127.0.0.1:5060;ob>\r\n"
        b"Allow: INVITE, ACK,\r\n BYE\r\n"
        b"c: application/sdp\r\nl: 4\r\n\r\nv=0\n"
    )
    reply = parse_sip(data)
    assert reply.is_response and reply.status == 200 and reply.method == "INVITE"
    assert reply.header("call-id") == "42"
    assert reply.header("To").endswith(";tag=xyz")
    assert reply.header("contact") == "<sip:sipvm@127.0.0.1:5060;ob>"
    assert reply.header("allow") == "INVITE, ACK, BYE"
    assert reply.body == "v=0\n"
    assert reply.header("x-missing") == ""


def test_request_from_the_server() -> None:
    data = (
        b"BYE sip:5550100@127.0.0.2:5070 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKPj1\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKPj2\r\n"
        b"CSeq: 7 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    request = parse_sip(data)
    assert not request.is_response and request.status == 0
    assert request.method == "BYE"
    assert request.all("via") == [
        "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKPj1",
        "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKPj2",
    ]


@pytest.mark.parametrize("data", [b"", b"\x80\x00\x01\x02rtp", b"HTTP/1.1 200 OK\r\n\r\n"])
def test_non_sip_datagrams_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_sip(data)


# -- the caller against a scripted UAS on loopback ---------------------------------------------


class ScriptedUas:
    """A bare UDP SIP endpoint on 127.0.0.1: answers what it is given, sends what it is told."""

    def __init__(self) -> None:
        self.sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock in (self.sip, self.rtp):
            sock.bind(("127.0.0.1", 0))
            sock.settimeout(2)
        self.port = self.sip.getsockname()[1]
        self.rtp_port = self.rtp.getsockname()[1]

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    def receive(self) -> tuple[SipMessage, tuple[str, int]]:
        data, source = self.sip.recvfrom(65535)
        return parse_sip(data), source

    def reply(self, request: SipMessage, to: tuple[str, int], status: str, body: str = "") -> None:
        lines = [f"SIP/2.0 {status}", *[f"Via: {v}" for v in request.all("via")]]
        lines += [f"From: {request.header('from')}", f"To: {request.header('to')};tag=uas1"]
        lines += [f"Call-ID: {request.header('call-id')}", f"CSeq: {request.header('cseq')}"]
        lines += [f"Contact: <sip:uas@127.0.0.1:{self.port}>", f"Content-Length: {len(body)}"]
        self.sip.sendto(("\r\n".join(lines) + "\r\n\r\n" + body).encode(), to)

    def request(self, method: str, caller: RtpCaller, cseq: int) -> SipMessage:
        """Send an in-dialog request to the caller; returns its answer."""
        self.sip.sendto(
            (
                f"{method} sip:5550100@127.0.0.1:{caller.sip_port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};branch=z9hG4bK{method}{cseq}\r\n"
                "From: <sip:uas@127.0.0.1>;tag=uas1\r\nTo: <sip:5550100@127.0.0.1>;tag=c\r\n"
                f"Call-ID: {caller.call_id}\r\nCSeq: {cseq} {method}\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", caller.sip_port),
        )
        return self.receive()[0]


@pytest.fixture
def uas() -> Iterator[ScriptedUas]:
    endpoint = ScriptedUas()
    try:
        yield endpoint
    finally:
        endpoint.close()


def test_a_call_with_media_a_key_and_the_servers_bye_over_loopback(uas: ScriptedUas) -> None:
    with RtpCaller(("127.0.0.1", uas.port), bind="127.0.0.1") as caller:
        status: list[int] = []
        dialing = threading.Thread(
            target=lambda: status.append(caller.invite("voicemail", headers=[("X-Test", "1")]))
        )
        dialing.start()
        invite, source = uas.receive()
        assert invite.method == "INVITE" and invite.header("x-test") == "1"
        offer = parse_sdp_answer(invite.body)
        assert (offer.host, offer.port, offer.event_pt) == ("127.0.0.1", caller.rtp_port, 101)
        uas.reply(invite, source, "100 Trying")
        # answer telephone-event as payload type 96: the caller must send keys with it
        answer = sdp_offer("127.0.0.1", uas.rtp_port).replace("101", "96")
        uas.reply(invite, source, "200 OK", answer)
        ack, _ = uas.receive()
        assert ack.method == "ACK" and ack.first_line == f"ACK sip:uas@127.0.0.1:{uas.port} SIP/2.0"
        dialing.join(2)
        assert status == [200]

        sent = struct.pack("!BBHII", 0x80, 0, 7, 1120, 1) + ulaw_encode([1000] * 160)
        uas.rtp.sendto(sent, ("127.0.0.1", caller.rtp_port))
        index = caller.wait_heard(lambda p: p.seq == 7, timeout=2)
        heard = caller.heard[index]
        assert peak(heard.payload) > 900 and heard.at <= time.monotonic()

        digit = caller.press("#", hold_ms=40)
        assert digit.key == "#" and 0.035 < digit.up_at - digit.down_at < 0.06
        events: list[bytes] = []
        while len(events) < 5:
            data = uas.rtp.recv(2048)
            if data[1] & 0x7F == 96:
                events.append(data)
            else:
                assert data[1] & 0x7F == 0 and data[12:] == b"\xff" * 160  # PCMU silence
        assert [e[12] for e in events] == [11] * 5
        assert [bool(e[13] & 0x80) for e in events] == [False, False, True, True, True]
        assert len({e[4:8] for e in events}) == 1  # one timestamp for the whole event

        assert uas.request("OPTIONS", caller, 1).status == 200
        bye = uas.request("BYE", caller, 2)
        assert (bye.status, bye.method, bye.header("call-id")) == (200, "BYE", caller.call_id)
        assert caller.bye_received.wait(1)
        assert caller.hangup() == 0  # nothing left to end
        uas.rtp.settimeout(0.2)
        with pytest.raises(TimeoutError):  # the media stopped with the BYE
            while True:
                uas.rtp.recv(2048)


def test_only_loopback_is_called() -> None:
    with pytest.raises(ValueError, match="loopback"):
        RtpCaller(("192.0.2.1", 5060))
    with pytest.raises(ValueError, match="loopback"):
        RtpCaller(("127.0.0.1", 5060), bind="0.0.0.0")
