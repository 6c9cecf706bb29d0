"""Ghost calls: answered INVITEs that are never ACKed and send no RTP must not hold the call
slots, and nothing the caller did not say may become a message.

The "PBX" 127.0.0.2 is trusted, so these calls get past the router and are answered. A ghost
is written by hand on a plain UDP socket: one INVITE with SDP, then nothing at all — no ACK,
no RTP, no answer to the server's BYE. The build allows 4 calls per worker, so 4 ghosts hold
every slot until the server lets them go.
"""

from __future__ import annotations

import json
import selectors
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.support.rtp_caller import RtpCaller
from tests.support.rtp_pcap import alaw_decode, write_rtp_pcap
from tests.support.tones import read_pcm_mono, seconds_with_tone, tone_samples

from .conftest import (
    PBX_HOST,
    SCENARIOS,
    SERVER_HOST,
    Kit,
    Server,
    free_sip_port,
    start_server,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]

INBOX = "1002"
"""A user's inbox: calls go straight to the deposit dialog (no hours, no routing)."""
NO_MEDIA_S = 5.0
"""The server's default ``[sip] no_media_s``."""
TIMER_H_S = 32.0
"""pjsip's Timer H (64 x T1): the latest an answered call may wait for its ACK."""
MARGIN_S = 2.5
"""What the server may take past ``NO_MEDIA_S``: its 0.25 s check and a loaded machine."""
AUDIBLE = 1000
"""A decoded A-law sample at least this large is the server playing something."""


class RawCall:
    """One INVITE from its own UDP socket on the PBX address, with an RTP socket that only
    listens. Every message after the INVITE is sent only when the test says so."""

    def __init__(self, server: Server, user: str = INBOX) -> None:
        self.server = server
        self.user = user
        self.sip = _udp()
        self.rtp = _udp()
        self.port = int(self.sip.getsockname()[1])
        self.call_id = uuid.uuid4().hex
        self.tag = uuid.uuid4().hex[:10]
        self.got: list[tuple[float, str]] = []
        """(time, "start line / CSeq") of every SIP message the server sent us."""
        self.answer = ""
        """The first 200 OK, whole."""
        self.loud: list[float] = []
        """Arrival times of RTP packets carrying sound (the greeting, the beep)."""
        self.sent_at = 0.0

    def _send(self, text: str) -> None:
        self.sip.sendto(text.encode(), (SERVER_HOST, self.server.sip_port))

    def _head(self, method: str, uri: str, cseq: int, to_tag: str = "") -> str:
        to = f"<sip:{self.user}@{SERVER_HOST}>" + (f";tag={to_tag}" if to_tag else "")
        return (
            f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {PBX_HOST}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]}\r\n"
            f"From: <sip:5550123@{PBX_HOST}>;tag={self.tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            f"Contact: <sip:5550123@{PBX_HOST}:{self.port}>\r\n"
            "Max-Forwards: 70\r\n"
        )

    def invite(self) -> None:
        rtp_port = self.rtp.getsockname()[1]
        sdp = (
            f"v=0\r\no=- 1 1 IN IP4 {PBX_HOST}\r\ns=-\r\nc=IN IP4 {PBX_HOST}\r\nt=0 0\r\n"
            f"m=audio {rtp_port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"
        )
        uri = f"sip:{self.user}@{SERVER_HOST}:{self.server.sip_port}"
        self.sent_at = time.monotonic()
        self._send(
            self._head("INVITE", uri, 1)
            + f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
        )

    def _in_dialog(self, method: str, cseq: int) -> None:
        to_tag = _header(self.answer, "To").rpartition(";tag=")[2]
        target = _header(self.answer, "Contact").strip("<> ").split(">")[0]
        self._send(self._head(method, target, cseq, to_tag) + "Content-Length: 0\r\n\r\n")

    def ack(self) -> None:
        self._in_dialog("ACK", 1)

    def bye(self) -> None:
        self._in_dialog("BYE", 2)

    def read(self, sock: socket.socket) -> None:
        data = sock.recv(65535)
        now = time.monotonic()
        if sock is self.rtp:
            if len(data) > 12 and max(map(abs, alaw_decode(data[12:]))) >= AUDIBLE:
                self.loud.append(now)
            return
        text = data.decode(errors="replace")
        first = text.split("\r\n", 1)[0]
        cseq = _header(text, "CSeq")
        self.got.append((now, f"{first} / {cseq}"))
        if first.startswith("SIP/2.0 200") and cseq.endswith("INVITE"):
            self.answer = self.answer or text

    def times(self, start: str, cseq: str = "") -> list[float]:
        """When messages starting with ``start`` (and with ``cseq`` in their CSeq) arrived."""
        return [t for t, line in self.got if line.startswith(start) and line.endswith(cseq)]

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PBX_HOST, 0))
    return sock


def _header(text: str, name: str) -> str:
    for line in text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def pump(calls: Iterable[RawCall], until: Callable[[], bool], timeout: float) -> bool:
    """Read everything the server sends to ``calls`` until ``until()`` holds (True) or
    ``timeout`` seconds pass (False)."""
    selector = selectors.DefaultSelector()
    for call in calls:
        selector.register(call.sip, selectors.EVENT_READ, call)
        selector.register(call.rtp, selectors.EVENT_READ, call)
    deadline = time.monotonic() + timeout
    try:
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for key, _ in selector.select(min(left, 0.05)):
                key.data.read(key.fileobj)
        return True
    finally:
        selector.close()


def slot_free(server: Server) -> bool:
    """Whether a real call gets through now: 200 (then hung up) or 486 Busy Here."""
    with RtpCaller((SERVER_HOST, server.sip_port), bind=PBX_HOST) as caller:
        status = caller.invite(INBOX, timeout=5)
        if status == 200:
            caller.hangup()
        assert status in (200, 486), status
        return status == 200


def stored(server: Server, inbox: str = INBOX) -> list[dict[str, Any]]:
    result = server.cli("messages", "--inbox", inbox, "--json")
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def sipp_deposit(kit: Kit, server: Server, name: str, pcap: Path, seconds: float) -> None:
    """A sipp caller on the PBX address: INVITE, ACK, play ``pcap``, BYE."""
    args = [
        server.uri_host,
        "-sf",
        str(SCENARIOS / "uac_deposit.xml"),
        "-s",
        INBOX,
        "-p",
        str(free_sip_port(PBX_HOST)),
        "-d",
        str(int(seconds * 1000) + 500),
        "-key",
        "caller",
        "5550199",
        "-key",
        "caller_name",
        "Sipp",
        "-key",
        "pcap",
        str(pcap),
        "-key",
        "extra_header",
        "X-Test: deposit",
    ]
    sipp = kit.sipp(name, args, host=PBX_HOST)
    assert sipp.finish(60) == 0, sipp.stderr()


def test_four_ghosts_give_their_slots_back_after_no_media_s_and_leave_nothing(
    server: Server, kit: Kit
) -> None:
    ghosts = [RawCall(server) for _ in range(4)]
    try:
        for ghost in ghosts:
            ghost.invite()
        assert pump(ghosts, lambda: all(g.answer for g in ghosts), 10), [g.got for g in ghosts]
        answered = max(g.times("SIP/2.0 200")[0] for g in ghosts)
        # the ghosts hold every slot: a real call is refused meanwhile
        assert not slot_free(server)
        free_at = None
        deadline = answered + NO_MEDIA_S + MARGIN_S
        while free_at is None and time.monotonic() < deadline:
            pump(ghosts, lambda: False, 0.5)
            if slot_free(server):
                free_at = time.monotonic()
        assert free_at is not None, "no slot came back:\n" + "\n".join(server.log[-20:])
        pump(ghosts, lambda: all(g.times("BYE") for g in ghosts), 3)
        # a little longer: a 200 retransmitted after the BYE would show now
        pump(ghosts, lambda: False, 1.5)
        for ghost in ghosts:
            first_200 = ghost.times("SIP/2.0 200")[0]
            bye = ghost.times("BYE")
            assert bye, ghost.got
            assert NO_MEDIA_S - 0.5 <= bye[0] - first_200 <= NO_MEDIA_S + MARGIN_S, ghost.got
            assert max(ghost.times("SIP/2.0 200")) < bye[0], ghost.got  # 200s stopped
            assert not ghost.loud  # no greeting was played to a caller that never confirmed
            server.wait_log(
                f"from {PBX_HOST}:{ghost.port}: no RTP {NO_MEDIA_S:g} s after the answer", 1
            )
        print(
            f"\nghost calls: slots back {free_at - answered:.2f} s after the 200s, "
            f"BYEs at {min(g.times('BYE')[0] - g.times('SIP/2.0 200')[0] for g in ghosts):.2f}"
            f"-{max(g.times('BYE')[0] - g.times('SIP/2.0 200')[0] for g in ghosts):.2f} s"
        )
    finally:
        for ghost in ghosts:
            ghost.close()
    # a real caller with something to say is stored, and nothing else is
    lead, tone_s = 7.0, 3.0  # after the greeting and beep (about 3.5 s)
    samples = bytes(int(lead * 8000) * 2) + tone_samples(700, tone_s).tobytes()
    wav = kit.tmp / "caller.wav"
    _write_pcm(wav, samples)
    pcap = write_rtp_pcap(kit.tmp / "caller.pcap", wav=wav)
    sipp_deposit(kit, server, "sipp", pcap.path, pcap.duration_s)
    server.wait_log("message stored", 15)
    (message,) = stored(server)
    assert message["caller"] == "5550199"
    out = kit.tmp / "stored.wav"
    export = server.cli(
        "message", "export", str(message["id"]), "--as", INBOX, "--format", "wav", "-o", str(out)
    )
    assert export.returncode == 0, export.stderr
    assert seconds_with_tone(read_pcm_mono(out), 8000, 700.0, window_s=0.1) == pytest.approx(
        tone_s, abs=0.7
    )


def test_acked_call_sending_only_silence_leaves_no_message(server: Server, kit: Kit) -> None:
    # A-law silence (the idle code) for the greeting, the beep and 6 s of "message".
    pcap = write_rtp_pcap(kit.tmp / "silence.pcap", seconds=20.0)
    sipp_deposit(kit, server, "silent", pcap.path, pcap.duration_s)
    line = server.wait_log(f"inbox {INBOX}: not stored: the caller sent only silence", 15)
    assert "dBFS" in line
    server.wait_log("no message", 5)
    assert stored(server) == []


def test_caller_sending_no_audio_at_all_leaves_no_message(tmp_path: Path) -> None:
    # With the RTP watchdog off, a confirmed call that sends no RTP gets its greeting and
    # beep; what it "records" has no packet in it.
    server = start_server(tmp_path, settings="no_media_s = 0")
    call = RawCall(server)
    try:
        call.invite()
        assert pump([call], lambda: bool(call.answer), 10), call.got
        call.ack()

        def greeting_and_beep_over() -> bool:
            # sound heard, then 2 s without any: the beep has played and recording runs
            return bool(call.loud) and time.monotonic() - call.loud[-1] >= 2.0

        assert pump([call], greeting_and_beep_over, 30), "no greeting heard"
        pump([call], lambda: False, 4.0)  # the caller "talks" 4 s more, without a packet
        call.bye()
        assert pump([call], lambda: bool(call.times("SIP/2.0 200", "BYE")), 5), call.got
        server.wait_log(f"inbox {INBOX}: not stored: the caller sent no audio", 10)
        assert stored(server) == []
    finally:
        call.close()
        assert server.stop() == 0


def _write_pcm(path: Path, samples: bytes) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples)


def test_without_the_rtp_check_a_ghost_is_ended_at_timer_h(tmp_path: Path) -> None:
    # [sip] no_media_s = 0: only the missing ACK ends the call, 64 x T1 = 32 s after the 200
    # (pjsip alone would keep the slot about 64 s: Timer H, then its BYE's Timer F).
    server = start_server(tmp_path, settings="no_media_s = 0")
    ghost = RawCall(server)
    try:
        ghost.invite()
        assert pump([ghost], lambda: bool(ghost.answer), 10), ghost.got
        answered = ghost.times("SIP/2.0 200")[0]
        assert pump([ghost], lambda: bool(ghost.times("BYE")), TIMER_H_S + MARGIN_S + 2)
        assert TIMER_H_S - 0.5 <= ghost.times("BYE")[0] - answered <= TIMER_H_S + MARGIN_S
        server.wait_log(f"from {PBX_HOST}:{ghost.port}: no ACK 32 s after the answer", 2)
        assert slot_free(server)
        assert not ghost.loud
    finally:
        ghost.close()
        assert server.stop() == 0
    assert stored(server) == []
