"""Robustness: malformed SIP datagrams against a live `sipvm serve`, then a real call.

Prints figures (no pass/fail on timing); exits 1 if the server did not survive:

    python tests/bench/bench_fuzz.py [--count 5000] [--seed 1] [--rate 200]

A fresh `sipvm serve` on 127.0.0.1 (example directory, trusting the "PBX" 127.0.0.2) gets
``--count`` datagrams, generated from ``--seed`` (the same seed sends the same bytes, up to
the Call-IDs of the final real call):
- ``garbage``: random bytes, 1 byte to 64 KB;
- ``truncated``: a well-formed request cut anywhere;
- ``bitflip``: a well-formed request with 1-16 bits flipped;
- ``huge-header``: one header of 2-60 KB, or hundreds of repeated headers;
- ``content-length``: negative, huge, not a number, shorter or longer than the body;
- ``broken-sdp``: a well-formed INVITE from the trusted PBX whose SDP is broken (no media,
  no connection, port 0 or 70000, no codec in common, SRTP only, 300 attributes, ...);
- ``odd-headers``: a well-formed INVITE from the trusted PBX with odd routing headers
  (Diversion, History-Info, RFC 4458 targets, long or escaped users, unicode names).
Only the last two come from the trusted address, so only they can be answered: their hosts
(Contact, Via, SDP ``c=``) are always numeric loopback addresses, so no answered call makes
pjsip or pjmedia resolve a name (nothing leaves 127.0.0.0/8). Three in four answered calls
are ACKed and hung up 0.3 s later (so the worker's 4 slots free up and later INVITEs reach
the router instead of a 486); the fourth is never ACKed: a ghost the server must end.

Then: is the process alive, does it answer OPTIONS, and does a real deposit (sipp, 700 Hz
tone, from the PBX) still become a message with the tone in it. Replies are counted by
status code (requests the server sends, e.g. BYE to the ghosts, by method).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import selectors
import socket
import sys
import tempfile
import time
import wave
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.e2e.conftest import (  # noqa: E402
    PBX_HOST,
    SCENARIOS,
    SERVER_HOST,
    Kit,
    Server,
    free_sip_port,
    start_server,
)
from tests.support.rtp_caller import RtpCaller  # noqa: E402
from tests.support.rtp_pcap import write_rtp_pcap  # noqa: E402
from tests.support.tones import read_pcm_mono, seconds_with_tone, tone_samples  # noqa: E402

UNTRUSTED = SERVER_HOST
"""Where most datagrams come from (127.0.0.1: the server does not trust it)."""
INBOX = "1002"
KINDS: dict[str, float] = {
    "garbage": 0.15,
    "truncated": 0.15,
    "bitflip": 0.25,
    "huge-header": 0.07,
    "content-length": 0.13,
    "broken-sdp": 0.15,
    "odd-headers": 0.10,
}
"""Share of each kind of datagram."""
TRUSTED_KINDS = frozenset({"broken-sdp", "odd-headers"})
METHODS = ("INVITE", "OPTIONS", "REGISTER", "BYE", "ACK", "CANCEL", "MESSAGE", "INFO", "NOTIFY")
HANG_UP_AFTER_S = 0.3
"""How long after the answer an ACKed fuzz call is hung up: a caller who gives up at once.
(Callers hanging up within milliseconds at dozens of calls a second are a known limit of the
pjsua2 build: see ``sip/engine.py``, ENDS_WINDOW_S.)"""
RATE = 200.0
"""Datagrams per second by default. Far faster, most datagrams only overrun the server's
socket buffer or meet a full worker (486); and a few dozen INVITEs a second that pjsua sets
up and ends at once (bad offers, CANCEL, instant hang-ups) outrun pjlib's socket recycling
and abort the worker (see ``sip/engine.py``, ENDS_WINDOW_S): ``--rate`` shows where."""


@dataclass
class FuzzReport:
    """What happened, for printing."""

    sent: Counter[str] = field(default_factory=Counter)
    replies: Counter[str] = field(default_factory=Counter)
    ended: int = 0
    """Answered fuzz calls ended at once with ACK and BYE (their slot is free again)."""
    ghosts: int = 0
    """Answered fuzz calls never ACKed: the server must end them ([sip] no_media_s)."""
    seconds: float = 0.0
    alive: bool = False
    options: int = 0
    """Status of an OPTIONS sent after the fuzz (0: no answer)."""
    deposit: bool = False
    tone_s: float = 0.0
    slot_wait_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.alive and self.options == 200 and self.deposit

    def lines(self) -> list[str]:
        sent = ", ".join(f"{k} {n}" for k, n in sorted(self.sent.items()))
        replies = ", ".join(f"{k} {n}" for k, n in sorted(self.replies.items())) or "none"
        return [
            f"sent {sum(self.sent.values())} datagrams in {self.seconds:.1f} s ({sent})",
            f"replies: {replies}",
            f"answered fuzz calls: {self.ended} ACKed and hung up {HANG_UP_AFTER_S:g} s later, "
            f"{self.ghosts} left as ghosts (never ACKed)",
            f"server alive: {'yes' if self.alive else 'NO'}; OPTIONS after: "
            f"{self.options or 'no answer'}",
            f"real deposit after (waited {self.slot_wait_s:.1f} s for a free slot): "
            + (f"stored, {self.tone_s:.1f} s of tone" if self.deposit else "NOT stored"),
        ]


# -- well-formed material ------------------------------------------------------------------


class Maker:
    """Builds the datagrams of one seeded run."""

    def __init__(self, rng: random.Random, server_port: int, ports: dict[str, int]) -> None:
        self.rng = rng
        self.server_port = server_port
        self.ports = ports  # source host -> its port

    def _token(self, n: int = 12) -> str:
        return "".join(self.rng.choice("abcdef0123456789") for _ in range(n))

    def sdp(self, host: str = PBX_HOST, lines: list[str] | None = None) -> str:
        body = lines or [
            "v=0",
            f"o=- {self.rng.randrange(1, 2**31)} 1 IN IP4 {host}",
            "s=-",
            f"c=IN IP4 {host}",
            "t=0 0",
            f"m=audio {self.rng.randrange(20000, 30000, 2)} RTP/AVP 8 0 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=sendrecv",
        ]
        return "\r\n".join(body) + "\r\n"

    def request(
        self,
        method: str,
        host: str,
        *,
        user: str = INBOX,
        extra: tuple[str, ...] = (),
        body: str = "",
        content_length: str | None = None,
    ) -> str:
        port = self.ports[host]
        target = f"sip:{user}@{SERVER_HOST}:{self.server_port}"
        head = [
            f"{method} {target} SIP/2.0",
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{self._token()};rport",
            f'From: "Fuzz" <sip:5550{self.rng.randrange(100, 999)}@{host}>;tag={self._token(8)}',
            f"To: <sip:{user}@{SERVER_HOST}>",
            f"Call-ID: {self._token(20)}@{host}",
            f"CSeq: {self.rng.randrange(1, 1000)} {method}",
            f"Contact: <sip:fuzz@{host}:{port}>",
            "Max-Forwards: 70",
            *extra,
        ]
        if body:
            head.append("Content-Type: application/sdp")
        length = str(len(body.encode())) if content_length is None else content_length
        head.append(f"Content-Length: {length}")
        return "\r\n".join(head) + "\r\n\r\n" + body

    def any_request(self, host: str) -> str:
        method = self.rng.choice(METHODS)
        return self.request(method, host, body=self.sdp(host) if method == "INVITE" else "")


def _protected(text: bytes) -> list[tuple[int, int]]:
    """Byte spans a bit flip must leave alone: the lines that carry addresses pjsip or
    pjmedia could send to (a flipped digit there could become a name to resolve)."""
    spans, pos = [], 0
    for line in text.split(b"\r\n"):
        name = line.split(b":", 1)[0].strip().lower()
        if name in (b"via", b"v", b"contact", b"m", b"route", b"record-route") or line.startswith(
            (b"c=", b"a=rtcp")
        ):
            spans.append((pos, pos + len(line)))
        pos += len(line) + 2
    return spans


def datagrams(
    count: int, seed: int, server_port: int, ports: dict[str, int]
) -> Iterator[tuple[str, str, bytes]]:
    """``(kind, source host, payload)`` for ``count`` datagrams of seed ``seed``."""
    rng = random.Random(seed)
    make = Maker(rng, server_port, ports)
    kinds, weights = list(KINDS), list(KINDS.values())
    extra: tuple[str, ...]
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        host = PBX_HOST if kind in TRUSTED_KINDS else UNTRUSTED
        if kind == "garbage":
            size = rng.choice([rng.randrange(1, 64), rng.randrange(64, 1500), 60000])
            host = rng.choice([UNTRUSTED, PBX_HOST])  # garbage never parses: harmless
            yield kind, host, rng.randbytes(size)
        elif kind == "truncated":
            raw = make.any_request(host).encode()
            yield kind, host, raw[: rng.randrange(1, len(raw))]
        elif kind == "bitflip":
            flipped = bytearray(make.any_request(host).encode())
            spans = _protected(bytes(flipped))
            for _ in range(rng.randrange(1, 17)):
                at = rng.randrange(len(flipped))
                if not any(a <= at < b for a, b in spans):
                    flipped[at] ^= 1 << rng.randrange(8)
            yield kind, host, bytes(flipped)
        elif kind == "huge-header":
            if rng.random() < 0.5:
                extra = (f"X-Big: {'a' * rng.randrange(2000, 60000)}",)
            else:
                extra = tuple(f"Diversion: <sip:{n}@10.0.0.1>;reason=busy" for n in range(400))
            yield kind, host, make.request("INVITE", host, extra=extra, body=make.sdp()).encode()
        elif kind == "content-length":
            body = make.sdp()
            length = rng.choice(["-1", "999999999", "abc", "0", "5", str(len(body) + 50), ""])
            text = make.request("INVITE", host, body=body, content_length=length)
            yield kind, host, text.encode()
        elif kind == "broken-sdp":
            yield kind, host, make.request("INVITE", host, body=_broken_sdp(make)).encode()
        else:
            user, extra = _odd_headers(make)
            yield (
                kind,
                host,
                make.request("INVITE", host, user=user, extra=extra, body=make.sdp()).encode(),
            )


def _broken_sdp(make: Maker) -> str:
    """An SDP offer broken in one to three ways; every address stays numeric loopback."""
    rng = make.rng
    lines = make.sdp().rstrip("\r\n").split("\r\n")
    breakages: list[Callable[[list[str]], list[str]]] = [
        lambda x: [],  # INVITE with Content-Type sdp and an empty body
        lambda x: ["v=0"],
        lambda x: [line for line in x if not line.startswith("m=")],
        lambda x: [line for line in x if not line.startswith("c=")],
        lambda x: [line for line in x if not line.startswith(("o=", "t=", "s="))],
        lambda x: [("m=audio 0 RTP/AVP 8" if line.startswith("m=") else line) for line in x],
        lambda x: [("m=audio 70000 RTP/AVP 8" if line.startswith("m=") else line) for line in x],
        lambda x: [("m=audio 4000 RTP/AVP" if line.startswith("m=") else line) for line in x],
        lambda x: [("m=audio -1 RTP/AVP 8" if line.startswith("m=") else line) for line in x],
        lambda x: [("m=audio 4000 RTP/SAVP 8" if line.startswith("m=") else line) for line in x],
        lambda x: (
            [
                ("m=audio 4000 RTP/AVP 99" if line.startswith("m=") else line)
                for line in x
                if not line.startswith("a=rtpmap")
            ]
            + ["a=rtpmap:99 opus/48000/2"]
        ),
        lambda x: [line for line in x if not line.startswith("m=")] + ["m=video 4002 RTP/AVP 31"],
        lambda x: [("c=IN IP6 ::1" if line.startswith("c=") else line) for line in x],
        lambda x: [("c=IN IP4 0.0.0.0" if line.startswith("c=") else line) for line in x],
        lambda x: [*x, "a=rtpmap:8 PCMA/0", "a=fmtp:101 " + "0-15," * 500],
        lambda x: x + [f"a=x-attr-{n}:{n}" for n in range(300)],
        lambda x: x + [f"m=audio {4000 + 2 * n} RTP/AVP 8" for n in range(12)],
        lambda x: [*x, "a=inactive"],
        lambda x: [line.replace("=", "") for line in x],
        lambda x: [line + "\x00" for line in x],
        lambda x: ["\n".join(x)],
    ]
    for breakage in rng.sample(breakages, rng.randrange(1, 4)):
        lines = breakage(lines)
    return "\r\n".join(lines) + ("\r\n" if lines else "")


def _odd_headers(make: Maker) -> tuple[str, tuple[str, ...]]:
    """A Request-URI user and extra headers that are legal but unusual for the router."""
    rng = make.rng
    users = [INBOX, "voicemail", "*97", "*97*2001", "9" * 200, "%31%30%30%32", "2001;x=y", "¿"]
    headers = [
        "Diversion: <sip:2001@pbx.example.com>;reason=no-answer;counter=99",
        "Diversion: <sip:2001@pbx.example.com>, <sip:9999@pbx.example.com>;reason=busy",
        "History-Info: <sip:2001@pbx.example.com>;index=1, <sip:x@y;cause=486>;index=1.1",
        "History-Info: <sip:@>;index=",
        'P-Asserted-Identity: "Ünïcødé ☎" <sip:5551234@pbx.example.com>',
        "P-Asserted-Identity: <tel:+1-555-0100;phone-context=example.com>",
        "X-Sipvm-Source: 127.0.0.9:5060",
        'From: "two froms" <sip:a@b>;tag=x',
        "Diversion: " + "<sip:1@a>," * 200,
    ]
    return rng.choice(users), tuple(rng.sample(headers, rng.randrange(1, 4)))


# -- running it ----------------------------------------------------------------------------


def fuzz(server: Server, count: int, seed: int, rate: float = RATE) -> FuzzReport:
    """Send the datagrams, count the replies, then check the server still answers."""
    report = FuzzReport()
    sockets = {host: _udp(host) for host in (UNTRUSTED, PBX_HOST)}
    ports = {host: int(s.getsockname()[1]) for host, s in sockets.items()}
    selector = selectors.DefaultSelector()
    for sock in sockets.values():
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        selector.register(sock, selectors.EVENT_READ)

    answered: set[str] = set()
    byes: list[tuple[float, socket.socket, str]] = []  # (when, socket, the 200 OK)
    server_addr = (SERVER_HOST, server.sip_port)

    def read(timeout: float) -> None:
        while byes and byes[0][0] <= time.monotonic():
            _, sock, answer = byes.pop(0)
            _in_dialog(sock, answer, server_addr, "BYE")
        for key, _ in selector.select(timeout):
            source: socket.socket = key.fileobj  # type: ignore[assignment]
            with contextlib.suppress(OSError):
                data = source.recv(65535)
                text = data.decode(errors="replace")
                start = text.split("\r\n", 1)[0].split()
                if len(start) >= 2 and start[0] == "SIP/2.0":
                    report.replies[start[1]] += 1
                elif start:
                    report.replies[start[0]] += 1
                if start[:2] == ["SIP/2.0", "200"] and _header(text, "CSeq").endswith("INVITE"):
                    call_id = _header(text, "Call-ID")
                    if call_id not in answered:
                        answered.add(call_id)
                        if zlib.crc32(call_id.encode()) % 4:  # 1 in 4 stays a ghost
                            _in_dialog(source, text, server_addr, "ACK")
                            byes.append((time.monotonic() + HANG_UP_AFTER_S, source, text))
                            report.ended += 1
                        else:
                            report.ghosts += 1

    started = time.monotonic()
    target = (SERVER_HOST, server.sip_port)
    for n, (kind, host, payload) in enumerate(datagrams(count, seed, server.sip_port, ports)):
        try:
            sockets[host].sendto(payload, target)
            report.sent[kind] += 1
        except OSError:  # e.g. larger than a datagram may be
            report.sent[f"{kind} (not sendable)"] += 1
        next_at = started + (n + 1) / rate
        while (left := next_at - time.monotonic()) > 0:
            read(left)
    report.seconds = time.monotonic() - started
    end = time.monotonic() + 1.0
    while time.monotonic() < end or byes:
        read(0.05)
    report.alive = server.proc.poll() is None
    selector.close()
    report.options = _options(server, sockets[UNTRUSTED], ports[UNTRUSTED])
    for sock in sockets.values():
        sock.close()
    return report


def _header(text: str, name: str) -> str:
    for line in text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


def _in_dialog(sock: socket.socket, answer: str, server: tuple[str, int], method: str) -> None:
    """Send ``method`` (ACK or BYE) in the dialog of a 200 OK, to its Contact (the server's
    own numeric address)."""
    host, port = sock.getsockname()
    target = _header(answer, "Contact").strip("<>").split(">")[0].split(";")[0]
    cseq = int(_header(answer, "CSeq").split()[0]) + (method == "BYE")
    sock.sendto(
        (
            f"{method} {target} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{method}{time.monotonic_ns()}\r\n"
            f"From: {_header(answer, 'From')}\r\nTo: {_header(answer, 'To')}\r\n"
            f"Call-ID: {_header(answer, 'Call-ID')}\r\nCSeq: {cseq} {method}\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ).encode(),
        server,
    )


def _udp(host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    return sock


def _options(server: Server, sock: socket.socket, port: int) -> int:
    """Status of one OPTIONS (0: no answer within 3 s)."""
    call_id = f"after-fuzz-{time.monotonic_ns()}"
    sock.sendto(
        (
            f"OPTIONS sip:{SERVER_HOST}:{server.sip_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {UNTRUSTED}:{port};branch=z9hG4bK{call_id}\r\n"
            f"From: <sip:probe@{UNTRUSTED}>;tag=p\r\nTo: <sip:{SERVER_HOST}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode(),
        (SERVER_HOST, server.sip_port),
    )
    sock.settimeout(0.2)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65535)
        except TimeoutError:
            continue
        if call_id.encode() in data and data.startswith(b"SIP/2.0 "):
            return int(data.split()[1])
    return 0


def deposit_after(server: Server, work: Path, report: FuzzReport) -> None:
    """A real caller (sipp, from the PBX) leaves a message of a 700 Hz tone."""
    started = time.monotonic()
    # Answered fuzz calls are ghosts until the server ends them ([sip] no_media_s).
    while time.monotonic() - started < 40:
        with RtpCaller((SERVER_HOST, server.sip_port), bind=PBX_HOST) as probe:
            if probe.invite(INBOX, timeout=5) == 200:
                probe.hangup()
                break
        time.sleep(0.25)
    report.slot_wait_s = time.monotonic() - started
    lead, tone_s = 7.0, 3.0  # the greeting and beep take about 3.5 s; 10 s of silence ends it
    wav = work / "caller.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(int(lead * 8000) * 2) + tone_samples(700, tone_s).tobytes())
    pcap = write_rtp_pcap(work / "caller.pcap", wav=wav)
    kit = Kit(work, [])
    sipp = kit.sipp(
        "deposit",
        [
            server.uri_host,
            *("-sf", str(SCENARIOS / "uac_deposit.xml"), "-s", INBOX),
            *("-p", str(free_sip_port(PBX_HOST)), "-d", str(int(pcap.duration_s * 1000) + 500)),
            *("-key", "caller", "5550777", "-key", "caller_name", "After"),
            *("-key", "pcap", str(pcap.path), "-key", "extra_header", "X-Test: after-fuzz"),
        ],
        host=PBX_HOST,
    )
    if sipp.finish(60) != 0:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        listing = server.cli("messages", "--inbox", INBOX, "--json")
        found = [m for m in json.loads(listing.stdout or "[]") if m["caller"] == "5550777"]
        if found:
            out = work / "stored.wav"
            exported = server.cli(
                "message",
                "export",
                str(found[0]["id"]),
                "--as",
                INBOX,
                "--format",
                "wav",
                "-o",
                str(out),
            )
            if exported.returncode == 0:
                report.tone_s = seconds_with_tone(read_pcm_mono(out), 8000, 700.0, window_s=0.1)
                report.deposit = report.tone_s >= tone_s - 0.7
            return
        time.sleep(0.3)


def run(
    count: int = 5000, seed: int = 1, work: Path | None = None, rate: float = RATE
) -> FuzzReport:
    """Start a server in ``work`` (a temporary directory if None), fuzz it, place a real
    call, stop it; returns the report (``report.lines()`` to print)."""
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sipvm-fuzz-")))
        server = _quiet_start(work)
        try:
            report = fuzz(server, count, seed, rate)
            if report.alive:
                deposit_after(server, work, report)
            report.alive = report.alive and server.proc.poll() is None
        finally:
            if server.proc.poll() is None:
                server.stop(60)
            else:
                server.proc.wait()
        return report


def _quiet_start(work: Path) -> Server:
    """``start_server`` with the server's stdout (where pjlib logs every datagram it cannot
    parse) sent to /dev/null, so the figures stay readable; its stderr is kept as always."""
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stdout.flush()
        os.dup2(devnull, 1)
        return start_server(work)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=RATE, help="datagrams per second")
    args = parser.parse_args()
    print(
        f"fuzz: {args.count} datagrams at {args.rate:g}/s, seed {args.seed}, sipvm serve on "
        "127.0.0.1",
        flush=True,
    )
    report = run(args.count, args.seed, rate=args.rate)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
