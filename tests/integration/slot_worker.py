"""A stand-in media worker that keeps pjsua's books on call slots, for tests of the front.

A sipvm worker (one pjsua2 Endpoint) holds at most 4 calls; pjsua answers one more INVITE
with a stateless 486 and frees a slot when the call is DISCONNECTED: at once when the caller's
BYE arrives, but only when the final reply to its *own* BYE comes back. :class:`SlotWorker`
does the same over a raw UDP socket on 127.0.0.1, in a thread, and counts what it saw (the
most calls it ever held, each 486 it sent), so a test can tell whether the front's idea of a
worker's load followed the worker's real state.

Modes: ``answer`` (200 with SDP at once; optionally hang up ``hangup_after_s`` after the ACK),
``ring`` (180 and no answer: the caller's CANCEL gets 200 and the INVITE 487, as pjsua does).
Every worker answers OPTIONS 200 (the front's keepalives).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

HOST = "127.0.0.1"
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 9 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
)
RETRANSMIT_S = (0.5, 1.0, 2.0, 4.0)
"""When an unacknowledged 200 or an unanswered BYE is sent again (after the first send)."""


@dataclass
class Message:
    """A SIP message as received: first line, headers (in order) and body."""

    first_line: str
    headers: list[tuple[str, str]]
    body: str = ""

    @classmethod
    def parse(cls, data: bytes) -> Message:
        text = data.decode(errors="replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        headers = [
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:])
        ]
        return cls(lines[0], headers, body)

    @property
    def method(self) -> str:
        return "" if self.first_line.startswith("SIP/2.0") else self.first_line.split()[0]

    @property
    def status(self) -> int:
        return int(self.first_line.split()[1]) if self.first_line.startswith("SIP/2.0") else 0

    def all(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def one(self, name: str) -> str:
        values = self.all(name)
        return values[0] if values else ""

    @property
    def call_id(self) -> str:
        return self.one("Call-ID") or self.one("i")

    @property
    def cseq_method(self) -> str:
        return self.one("CSeq").split()[-1] if self.one("CSeq") else ""


def _uri(name_addr: str) -> str:
    """The URI inside ``<...>`` (or the value itself)."""
    found = re.search(r"<([^>]*)>", name_addr)
    return found.group(1) if found else name_addr.split(";")[0].strip()


def _host_port(uri: str) -> tuple[str, int]:
    found = re.match(r"sips?:(?:[^@;>]*@)?([^:;>]+)(?::(\d+))?", uri)
    assert found, uri
    return found.group(1), int(found.group(2) or 5060)


@dataclass
class Dialog:
    """One call the worker holds."""

    invite: Message
    to_tag: str
    response: bytes
    source: tuple[str, int]
    answered_at: float
    acked: bool = False
    retransmits: list[float] = field(default_factory=list)
    hangup_at: float | None = None
    bye: bytes = b""
    bye_to: tuple[str, int] = ("", 0)
    bye_retransmits: list[float] = field(default_factory=list)
    bye_sent_at: float | None = None


@dataclass
class SlotWorker:
    """A worker with ``slots`` call slots on 127.0.0.1:``port`` (0: pick a free port)."""

    name: str
    slots: int = 4
    mode: Literal["answer", "ring"] = "answer"
    hangup_after_s: float | None = None
    """answer mode: the worker hangs up this long after the ACK (its own BYE)."""
    port: int = 0

    invites: int = 0
    """New INVITEs received (retransmissions not counted)."""
    answered: int = 0
    busy: int = 0
    """INVITEs refused 486 because every slot was taken."""
    most_calls: int = 0
    byes_from_caller: int = 0
    byes_sent: int = 0
    byes_answered: int = 0
    cancelled: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, self.port))
        self._sock.settimeout(0.02)
        self.port = int(self._sock.getsockname()[1])
        self._calls: dict[str, Dialog] = {}
        self._replied: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._tags = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    @property
    def uri(self) -> str:
        return f"sip:{HOST}:{self.port}"

    @property
    def calls(self) -> int:
        """Calls held right now."""
        with self._lock:
            return len(self._calls)

    @property
    def byes_pending(self) -> int:
        """Own BYEs sent and not yet answered (their calls still hold a slot)."""
        with self._lock:
            return sum(1 for d in self._calls.values() if d.bye_sent_at is not None)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()

    # -- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._timers(time.monotonic())
            try:
                data, source = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._handle(Message.parse(data), source)

    def _send(self, data: bytes, to: tuple[str, int]) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendto(data, to)

    def _handle(self, msg: Message, source: tuple[str, int]) -> None:
        if msg.status:
            self._response(msg)
        elif msg.method == "INVITE":
            self._invite(msg, source)
        elif msg.method == "ACK":
            dialog = self._calls.get(msg.call_id)
            if dialog is not None and not dialog.acked and dialog.to_tag in msg.one("To"):
                dialog.acked = True
                if self.hangup_after_s is not None:
                    dialog.hangup_at = time.monotonic() + self.hangup_after_s
        elif msg.method == "BYE":
            self._send(self._reply(msg, "200 OK"), source)
            if self._calls.pop(msg.call_id, None) is not None:
                self.byes_from_caller += 1
        elif msg.method == "CANCEL":
            self._send(self._reply(msg, "200 OK"), source)
            dialog = self._calls.pop(msg.call_id, None)
            if dialog is not None:
                self.cancelled += 1
                terminated = self._reply(dialog.invite, "487 Request Terminated", dialog.to_tag)
                self._send(terminated, source)
        elif msg.method == "OPTIONS":
            self._send(self._reply(msg, "200 OK", f"o{next(self._tags)}"), source)

    def _invite(self, msg: Message, source: tuple[str, int]) -> None:
        branch = msg.one("Via")
        key = (msg.call_id, branch)
        if key in self._replied:  # a retransmission: the same answer again
            self._send(self._replied[key], source)
            return
        self.invites += 1
        tag = f"{self.name}-{next(self._tags)}"
        if len(self._calls) >= self.slots:
            # pjsua: PJSUA_MAX_CALLS reached, a stateless 486 and nothing remembered.
            self.busy += 1
            self._replied[key] = self._reply(msg, "486 Busy Here", tag)
            self._send(self._replied[key], source)
            return
        if self.mode == "ring":
            response = self._reply(msg, "180 Ringing", tag, contact=True)
        else:
            response = self._reply(msg, "200 OK", tag, contact=True, body=SDP)
            self.answered += 1
        self._replied[key] = response
        now = time.monotonic()
        retransmits = [now + s for s in RETRANSMIT_S] if self.mode == "answer" else []
        self._calls[msg.call_id] = Dialog(msg, tag, response, source, now, retransmits=retransmits)
        self.most_calls = max(self.most_calls, len(self._calls))
        self._send(response, source)

    def _response(self, msg: Message) -> None:
        dialog = self._calls.get(msg.call_id)
        if dialog is None or msg.cseq_method != "BYE" or msg.status < 200:
            return
        # pjsua: the call is DISCONNECTED, and its slot free, only now.
        del self._calls[msg.call_id]
        self.byes_answered += 1

    def _timers(self, now: float) -> None:
        for call_id, dialog in list(self._calls.items()):
            if not dialog.acked and dialog.retransmits and dialog.retransmits[0] <= now:
                dialog.retransmits.pop(0)
                self._send(dialog.response, dialog.source)
            if dialog.hangup_at is not None and dialog.hangup_at <= now:
                dialog.hangup_at = None
                self._hang_up(dialog, now)
            if dialog.bye_sent_at is not None:
                if dialog.bye_retransmits and dialog.bye_retransmits[0] <= now:
                    dialog.bye_retransmits.pop(0)
                    self._send(dialog.bye, dialog.bye_to)
                elif now - dialog.bye_sent_at > 16:  # Timer F: the call ends anyway
                    del self._calls[call_id]

    def _hang_up(self, dialog: Dialog, now: float) -> None:
        """Send our own BYE along the recorded route (the front's Record-Route, in order)."""
        invite = dialog.invite
        routes = [
            part.strip()
            for header in invite.all("Record-Route")
            for part in re.findall(r"<[^>]*>", header)
        ]
        target = _uri(invite.one("Contact"))
        next_hop = _host_port(_uri(routes[0])) if routes else _host_port(target)
        to = invite.one("To")
        branch = f"z9hG4bK{self.name}b{next(self._tags)}"
        lines = [
            f"BYE {target} SIP/2.0",
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch={branch};rport",
            *(f"Route: {route}" for route in routes),
            f"From: {to};tag={dialog.to_tag}",
            f"To: {invite.one('From')}",
            f"Call-ID: {invite.call_id}",
            "CSeq: 1 BYE",
            "Max-Forwards: 70",
            "Content-Length: 0",
        ]
        dialog.bye = ("\r\n".join(lines) + "\r\n\r\n").encode()
        dialog.bye_to = next_hop
        dialog.bye_sent_at = now
        dialog.bye_retransmits = [now + s for s in RETRANSMIT_S]
        self.byes_sent += 1
        self._send(dialog.bye, next_hop)

    def _reply(
        self,
        msg: Message,
        status: str,
        to_tag: str = "",
        *,
        contact: bool = False,
        body: str = "",
    ) -> bytes:
        to = msg.one("To")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {status}", *(f"Via: {via}" for via in msg.all("Via"))]
        if contact:
            lines += [f"Record-Route: {rr}" for rr in msg.all("Record-Route")]
        lines += [f"From: {msg.one('From')}", f"To: {to}", f"Call-ID: {msg.call_id}"]
        lines.append(f"CSeq: {msg.one('CSeq')}")
        if contact:
            lines.append(f"Contact: <sip:{self.name}@{HOST}:{self.port}>")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
