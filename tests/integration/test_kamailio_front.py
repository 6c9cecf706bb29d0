"""A real Kamailio, started from the rendered front config, before real SIP workers.

The workers are sipp UAS processes (one pjsua2 scripted peer in one test), the callers sipp
UACs and a few raw UDP requests. Addresses, all on 127.0.0.0/8:

- the front listens for callers on 127.0.0.10 (UDP and TCP) and talks to the workers from its
  own UDP socket on 127.0.0.1 (``worker_side``), as it would with a public address;
- the workers listen on 127.0.0.1;
- the trusted PBX sends from 127.0.0.2; 127.0.0.3 is a stranger.

What each worker received is read from sipp's ``-trace_msg`` log. Every process is started by
the ``lab`` fixture and killed on teardown; nothing runs past a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sipvm.front.kamailio import FrontConfig, kamailio_command, render
from tests.e2e.conftest import TESTPEER, repo_env
from tests.support.ports import free_ports

from .slot_worker import SlotWorker

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed"),
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]

PUBLIC = "127.0.0.10"
"""The front's caller-side address."""
PRIVATE = "127.0.0.1"
"""The workers' address, and the front's worker-side socket."""
PBX = "127.0.0.2"
STRANGER = "127.0.0.3"
RETRY_AFTER = 7
KEEPALIVE_S = 2

# -- sipp scenarios ---------------------------------------------------------------------------

SDP = """v=0
o=- 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
"""

REPLY_HEAD = """SIP/2.0 {status}
[last_Via:]
[last_From:]
[last_To:]{tag}
[last_Call-ID:]
[last_CSeq:]
"""

OPTIONS_BRANCH = f"""
  <label id="options"/>
  <send><![CDATA[

{REPLY_HEAD.format(status="200 OK", tag=";tag=[pid]o[call_number]")}Content-Length: 0

  ]]></send>
"""


def worker_scenario(answer: str) -> str:
    """A sipp UAS standing in for a worker: answers OPTIONS 200, and INVITE with ``answer``
    (``"200 OK"``: then waits for ACK and BYE; else a final error, then its ACK)."""
    if answer == "200 OK":
        head = REPLY_HEAD.format(status=answer, tag=";tag=[pid]w[call_number]")
        call = f"""
  <send><![CDATA[

{head}[last_Record-Route:]
Contact: <sip:[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{SDP}
  ]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send next="done"><![CDATA[

{REPLY_HEAD.format(status="200 OK", tag="")}Content-Length: 0

  ]]></send>"""
    else:
        head = REPLY_HEAD.format(status=answer, tag=";tag=[pid]b[call_number]")
        call = f"""
  <send><![CDATA[

{head}Content-Length: 0

  ]]></send>
  <recv request="ACK" next="done"/>"""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="worker">
  <recv request="OPTIONS" optional="true" next="options"/>
  <recv request="INVITE"/>{call}{OPTIONS_BRANCH}
  <label id="done"/>
</scenario>
"""


ROUTING_HEADERS = {
    "Diversion": "<sip:2001@[local_ip]>;reason=no-answer;counter=1",
    "History-Info": "<sip:2001@[local_ip]?Reason=SIP%3Bcause%3D408>;index=1",
    "P-Asserted-Identity": '"Caller" <sip:5551234@[local_ip]>',
}
ROUTING_LINES = "\n".join(f"{name}: {value}" for name, value in ROUTING_HEADERS.items())
FORGED = ("X-Sipvm-Source: 6.6.6.6:666", "x-sipvm-source: 7.7.7.7:777")
"""What a caller might send to pass for someone else: both spellings must be removed."""

INVITE = f"""
  <send retrans="500"><![CDATA[

INVITE sip:2001@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:5551234@[local_ip]:[local_port]>;tag=[pid]c[call_number]
To: <sip:2001@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:5551234@[local_ip]:[local_port];transport=[transport]>
Max-Forwards: 70
{FORGED[0]}
{ROUTING_LINES}
{FORGED[1]}
Content-Type: application/sdp
Content-Length: [len]

{SDP}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>"""

IN_DIALOG = """
  <send{retrans}><![CDATA[

{method} [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Caller" <sip:5551234@[local_ip]:[local_port]>;tag=[pid]c[call_number]
[last_To:]
[routes]
Call-ID: [call_id]
CSeq: {cseq} {method}
Max-Forwards: 70
Content-Length: 0

  ]]></send>"""


NEGATIVE_ACK = """
  <send><![CDATA[

ACK sip:2001@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: "Caller" <sip:5551234@[local_ip]:[local_port]>;tag=[pid]c[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

  ]]></send>"""

CANCEL = """
  <send><![CDATA[

CANCEL sip:2001@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
From: "Caller" <sip:5551234@[local_ip]:[local_port]>;tag=[pid]c[call_number]
To: <sip:2001@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 CANCEL
Max-Forwards: 70
Content-Length: 0

  ]]></send>"""

#: How long a "slow_bye" caller takes to answer the worker's BYE.
SLOW_BYE_MS = 4000


def caller_scenario(expect: str) -> str:
    """A sipp UAC: an INVITE with routing headers and two forged X-Sipvm-Source headers.

    ``"answer"``: ACK, hold (``-d``), BYE; ``"hears_bye"``: ACK, then the worker hangs up;
    ``"slow_bye"``: the same, but the caller answers the BYE only after ``SLOW_BYE_MS``;
    ``"503"``: the front's refusal, then its ACK; ``"answer_or_503"``: either of those two
    (a burst beyond capacity); ``"cancel"``: the worker rings, the caller gives up."""
    if expect == "503":
        rest = '\n  <recv response="503"/>' + NEGATIVE_ACK
    elif expect == "cancel":
        rest = '\n  <recv response="180"/>' + CANCEL
        rest += '\n  <recv response="200"/>\n  <recv response="487"/>' + NEGATIVE_ACK
    elif expect == "answer_or_503":
        rest = '\n  <recv response="503" optional="true" next="refused"/>'
        rest += '\n  <recv response="200" rrs="true"/>'
        rest += IN_DIALOG.format(retrans="", method="ACK", cseq=1)
        rest += "\n  <pause/>" + IN_DIALOG.format(retrans=' retrans="500"', method="BYE", cseq=2)
        rest += '\n  <recv response="200" next="done"/>'
        rest += '\n  <label id="refused"/>' + NEGATIVE_ACK + '\n  <label id="done"/>'
    else:
        rest = '\n  <recv response="200" rrs="true"/>' + IN_DIALOG.format(
            retrans="", method="ACK", cseq=1
        )
        if expect == "answer":
            rest += "\n  <pause/>" + IN_DIALOG.format(
                retrans=' retrans="500"', method="BYE", cseq=2
            )
            rest += '\n  <recv response="200"/>'
        else:
            pause = f'<pause milliseconds="{SLOW_BYE_MS}"/>' if expect == "slow_bye" else ""
            rest += f"""
  <recv request="BYE"/>{pause}
  <send><![CDATA[

{REPLY_HEAD.format(status="200 OK", tag="")}Content-Length: 0

  ]]></send>"""
    invite = INVITE
    if expect == "cancel":  # the 180 is awaited, not optional
        invite = INVITE.replace('\n  <recv response="180" optional="true"/>', "")
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller">{invite}{rest}
</scenario>
"""


# -- SIP messages as the peers logged them ----------------------------------------------------


@dataclass(frozen=True)
class SipMessage:
    """One message from a sipp ``-trace_msg`` log (or a raw reply)."""

    first_line: str
    headers: tuple[tuple[str, str], ...]
    received: bool = True

    @classmethod
    def parse(cls, text: str, received: bool = True) -> SipMessage:
        head = text.replace("\r\n", "\n").split("\n\n", 1)[0].strip("\n")
        lines = head.split("\n")
        headers = tuple(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:])
        )
        return cls(lines[0], headers, received)

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
        assert len(values) == 1, f"{name}: {values} in\n{self}"
        return values[0]


def read_trace(path: Path) -> list[SipMessage]:
    """Every message in a sipp ``-trace_msg`` file, in order."""
    if not path.exists():
        return []
    text = path.read_text(errors="replace")
    messages = []
    for block in re.split(r"^-{40,} [^\n]*\n", text, flags=re.MULTILINE)[1:]:
        kind, _, body = block.partition("\n")
        if "message" in kind and body.strip():
            messages.append(SipMessage.parse(body.lstrip("\n"), received="received" in kind))
    return messages


# -- processes --------------------------------------------------------------------------------


def free_port(host: str) -> int:
    """A port free for UDP and TCP on ``host``, dealt to this test process alone."""
    return free_ports(host, tcp=True)


def udp_port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
        return False


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` every 20 ms; its first true value, or fail saying ``what``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Worker:
    """A sipp UAS worker on 127.0.0.1 and the log of what it received."""

    name: str
    port: int
    trace: Path
    proc: subprocess.Popen[bytes]

    @property
    def uri(self) -> str:
        return f"sip:{PRIVATE}:{self.port}"

    def received(self, method: str) -> list[SipMessage]:
        return [m for m in read_trace(self.trace) if m.received and m.method == method]

    def call_ids(self, method: str) -> set[str]:
        return {m.one("Call-ID") for m in self.received(method)}

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(5)


@dataclass
class Front:
    """The running Kamailio front."""

    config: FrontConfig
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def worker_side(self) -> tuple[str, int]:
        """The socket the front talks to workers from."""
        assert self.config.worker_side is not None
        return self.config.worker_side

    def log_lines(self, text: str) -> list[str]:
        return [line for line in self.log.read_text(errors="replace").splitlines() if text in line]

    def dispatcher_list(self) -> str:
        """``kamcmd dispatcher.list``: every worker, its flags and (least-busy) its load."""
        return subprocess.run(
            ["kamcmd", "-s", f"unix:{self.config.paths.ctl_socket}", "dispatcher.list"],
            capture_output=True,
            text=True,
            timeout=20,  # a loaded CI machine starts sipp slowly
            check=True,
        ).stdout

    def rotation(self) -> dict[str, str]:
        """Each worker URI → its dispatcher flags (``AP`` in rotation, ``IP`` out)."""
        return dict(re.findall(r"URI: (\S+)\s+FLAGS: (\S+)", self.dispatcher_list()))

    def loads(self) -> dict[str, int]:
        """Each worker URI → the calls the front counts on it (least-busy's DLGLOAD)."""
        found = re.findall(r"URI: (\S+).*?DLGLOAD: (\d+)", self.dispatcher_list(), re.DOTALL)
        return {uri: int(load) for uri, load in found}


@dataclass
class Calls:
    """One sipp UAC run: its exit status, statistics and what it received."""

    code: int
    stdout: str
    trace: Path
    seconds: float
    port: int
    """The caller's SIP port (on 127.0.0.2)."""

    def count(self, what: str) -> int:
        """The cumulative 'Successful call' / 'Failed call' figure of sipp's final screen."""
        found = re.findall(rf"{what}\s+\|\s+\d+\s+\|\s+(\d+)", self.stdout)
        assert found, self.stdout[-2000:]
        return int(found[-1])

    def received(self) -> list[SipMessage]:
        return [m for m in read_trace(self.trace) if m.received]

    def final_replies(self) -> dict[str, list[SipMessage]]:
        """Each call's final replies to its INVITE (a retransmitted one counted once)."""
        finals: dict[str, dict[str, SipMessage]] = {}
        for m in self.received():
            if m.status >= 200 and m.one("CSeq").endswith("INVITE"):
                finals.setdefault(m.one("Call-ID"), {})[m.first_line] = m
        return {call: list(replies.values()) for call, replies in finals.items()}


@dataclass
class Lab:
    """Starts workers, the front and callers; kills whatever still runs at the end."""

    tmp: Path
    state_dir: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    """Process groups of the fronts (Kamailio and its children)."""
    counter: Iterator[int] = field(default_factory=lambda: iter(range(1000)))
    fakes: list[SlotWorker] = field(default_factory=list)

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """Start ``args``; stdout and stderr go to ``name.out`` and ``name.err``."""
        with (
            (self.tmp / f"{name}.out").open("wb") as out,
            (self.tmp / f"{name}.err").open("wb") as err,
        ):
            proc = subprocess.Popen(
                args, cwd=self.tmp, env=repo_env(), stdout=out, stderr=err, stdin=subprocess.DEVNULL
            )
        self.procs.append(proc)
        return proc

    def scenario(self, name: str, text: str) -> Path:
        path = self.tmp / f"{name}.xml"
        path.write_text(text)
        return path

    def worker(self, name: str, answer: str = "200 OK", port: int | None = None) -> Worker:
        """A sipp UAS on 127.0.0.1 answering INVITEs with ``answer``; ready when it returns."""
        port = port or free_port(PRIVATE)
        scenario = self.scenario(f"worker-{answer.split()[0]}", worker_scenario(answer))
        trace = self.tmp / f"{name}-{next(self.counter)}.msgs"
        args = ["sipp", "-sf", str(scenario), "-i", PRIVATE, "-p", str(port)]
        args += ["-mi", PRIVATE, "-mp", str(free_port(PRIVATE)), "-nostdin"]
        args += ["-trace_msg", "-message_file", str(trace)]
        proc = self.spawn(f"{name}-{port}", args)
        wait_until(lambda: udp_port_taken(PRIVATE, port), 20, f"{name} on port {port}")
        return Worker(name, port, trace, proc)

    def front(
        self, workers: list[Worker], more_ports: Sequence[int] = (), **settings: Any
    ) -> Front:
        """Kamailio from the rendered config (``more_ports``: workers on 127.0.0.1 that are
        not sipp); ready when it answers OPTIONS."""
        config = FrontConfig(
            address=PUBLIC,
            port=free_port(PUBLIC),
            worker_side=(PRIVATE, free_port(PRIVATE)),
            workers=[(PRIVATE, port) for port in [w.port for w in workers] + list(more_ports)],
            trusted_peers=[PBX],
            state_dir=self.state_dir,
            keepalive_s=settings.pop("keepalive_s", KEEPALIVE_S),
            retry_after_s=RETRY_AFTER,
            **settings,
        )
        for path, text in render(config).items():
            Path(path).write_text(text)
        log = self.tmp / "kamailio.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                kamailio_command(config.paths),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs.append(proc)
        self.groups.append(proc.pid)
        front = Front(config, proc, log)

        def answers() -> bool:
            assert proc.poll() is None, log.read_text()
            with contextlib.suppress(OSError):  # a timeout included
                return request(front, STRANGER, "OPTIONS", timeout=0.2).status in (200, 503)
            return False

        wait_until(answers, 10, "Kamailio to answer OPTIONS")
        return front

    def _caller(
        self,
        front: Front,
        count: int,
        expect: str,
        *,
        hold_ms: int = 100,
        rate: int = 20,
        concurrent: int = 0,
        transport: str = "u1",
    ) -> tuple[list[str], Path, int]:
        """sipp UAC arguments for ``count`` calls from the PBX through the front, ``rate`` a
        second, at most ``concurrent`` at a time (0: no limit); its trace file and port."""
        scenario = self.scenario(f"caller-{expect}", caller_scenario(expect))
        trace = self.tmp / f"caller-{next(self.counter)}.msgs"
        port = free_port(PBX)
        args = ["sipp", "-sf", str(scenario), "-i", PBX, "-p", str(port)]
        args += ["-mi", PBX, "-mp", str(free_port(PBX)), "-t", transport]
        args += ["-m", str(count), "-r", str(rate), "-d", str(hold_ms), "-nostdin"]
        args += ["-l", str(concurrent)] if concurrent else []
        args += ["-timeout", "20s", "-timeout_error", "-trace_msg", "-message_file", str(trace)]
        return [*args, f"{PUBLIC}:{front.port}"], trace, port

    def calls(self, front: Front, count: int = 1, expect: str = "answer", **options: Any) -> Calls:
        """Run ``count`` calls to the end (see :meth:`_caller` for the options)."""
        args, trace, port = self._caller(front, count, expect, **options)
        started = time.monotonic()
        done = subprocess.run(args, cwd=self.tmp, capture_output=True, text=True, timeout=30)
        return Calls(done.returncode, done.stdout, trace, time.monotonic() - started, port)

    def calls_in_background(
        self, front: Front, count: int, expect: str = "answer", **options: Any
    ) -> subprocess.Popen[bytes]:
        """Start ``count`` calls (answered ones by default); the process exits 0 when all
        went as ``expect`` says."""
        args, _, _ = self._caller(front, count, expect, **options)
        return self.spawn(f"caller-{next(self.counter)}", args)

    def slot_workers(self, count: int, **options: Any) -> list[SlotWorker]:
        """``count`` stand-in workers keeping pjsua's slot books (closed at the end)."""
        made = [SlotWorker(f"s{next(self.counter)}", **options) for _ in range(count)]
        self.fakes += made
        return made

    def answered_calls(self, front: Front, count: int = 1, **options: Any) -> Calls:
        """``count`` calls, each of them answered and hung up cleanly."""
        result = self.calls(front, count, **options)
        assert result.code == 0, result.stdout[-2500:]
        assert result.count("Successful call") == count
        return result

    def refused_call(self, front: Front) -> SipMessage:
        """One call the front must refuse; its final reply (checked: 503)."""
        result = self.calls(front, 1, "503")
        assert result.code == 0, result.stdout[-2500:]
        (final,) = [m for m in result.received() if m.status >= 200]
        assert final.status == 503
        return final

    def close(self) -> None:
        """SIGTERM to everything still running (Kamailio stops its children), then SIGKILL;
        the front's process group is killed too, in case its main process died alone."""
        for fake in self.fakes:
            fake.close()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for pgid in self.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        shutil.rmtree(self.state_dir, ignore_errors=True)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    # A short state directory: the control socket's path must fit a unix socket address.
    running = Lab(tmp_path, Path(tempfile.mkdtemp(prefix="kfront-")))
    try:
        yield running
    finally:
        running.close()


def request(
    front: Front,
    source: str,
    method: str,
    *,
    uri: str = "",
    in_dialog: bool = False,
    timeout: float = 3,
) -> SipMessage:
    """One raw UDP request to the front from ``source``; its final reply. ``in_dialog``: with
    a To tag and the front's own Record-Route as a Route, as a peer in a call would send it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.settimeout(timeout)
        host, port = sock.getsockname()
        uri = uri or f"sip:{PUBLIC}:{front.port}"
        tag = f"{method}-{port}-{time.monotonic_ns()}"
        to_tag = ";tag=far" if in_dialog else ""
        route = f"Route: <sip:{PUBLIC}:{front.port};r2=on;lr>\r\n" if in_dialog else ""
        text = (
            f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{tag}\r\n"
            f"{route}From: <sip:probe@{host}>;tag={port}\r\nTo: <{uri}>{to_tag}\r\n"
            f"Call-ID: {tag}\r\nCSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        sock.sendto(text.encode(), (PUBLIC, front.port))
        while True:
            reply = SipMessage.parse(sock.recv(65535).decode())
            if reply.status >= 200:
                return reply


def assert_dialogs_stay_on_their_worker(workers: list[Worker], total: int) -> None:
    """Each call's INVITE, ACK and BYE reached one worker, and every call reached one."""
    seen: set[str] = set()
    for worker in workers:
        invites = worker.call_ids("INVITE")
        assert worker.call_ids("ACK") == invites, worker.name
        assert worker.call_ids("BYE") == invites, worker.name
        assert not invites & seen
        seen |= invites
    assert len(seen) == total


# -- (a) spreading, (b) dialogs, headers ------------------------------------------------------


def test_round_robin_spreads_calls_and_keeps_each_dialog_on_its_worker(lab: Lab) -> None:
    workers = [lab.worker(f"w{i}") for i in range(3)]
    front = lab.front(workers, algorithm="round-robin")

    calls = lab.answered_calls(front, 9)

    assert [len(w.received("INVITE")) for w in workers] == [3, 3, 3]
    assert_dialogs_stay_on_their_worker(workers, 9)
    for worker in workers:
        for invite in worker.received("INVITE"):
            for name, value in ROUTING_HEADERS.items():
                assert invite.one(name) == value.replace("[local_ip]", PBX)
            # Both forged headers are gone; the one left is the front's, naming the PBX.
            source = invite.one("X-Sipvm-Source")
            assert source == f"{PBX}:{calls.port}"
            # The INVITE came through the front's worker-side socket, which record-routes.
            assert invite.all("Via")[0].startswith("SIP/2.0/UDP {}:{};".format(*front.worker_side))
            assert len(invite.all("Record-Route")) == 2
        for bye in worker.received("BYE"):
            assert bye.one("X-Sipvm-Source").startswith(f"{PBX}:")
    assert front.log_lines("ERROR") == []


def test_least_busy_sends_calls_to_the_emptiest_worker_and_caps_each_worker(lab: Lab) -> None:
    workers = [lab.worker(f"w{i}") for i in range(2)]
    front = lab.front(workers, algorithm="least-busy", calls_per_worker=2)

    long_call = lab.calls_in_background(front, 1, hold_ms=6000)
    (busy,) = wait_until(
        lambda: [w for w in workers if w.received("ACK")], 5, "the long call to be answered"
    )
    (idle,) = [w for w in workers if w is not busy]
    lab.answered_calls(front, 4, rate=10, concurrent=1)
    # Round robin would have sent two of these to the busy worker.
    assert (len(idle.received("INVITE")), len(busy.received("INVITE"))) == (4, 1)

    # Fill both workers (2 calls each), then one more: refused by the front itself.
    filling = lab.calls_in_background(front, 3, hold_ms=4000)
    wait_until(lambda: sum(len(w.received("ACK")) for w in workers) == 1 + 4 + 3, 5, "4 up")
    refused = lab.refused_call(front)
    assert refused.one("Retry-After") == str(RETRY_AFTER)
    assert sum(len(w.received("INVITE")) for w in workers) == 8  # no worker saw the 9th

    assert long_call.wait(20) == 0 and filling.wait(20) == 0
    # Their BYEs gave the capacity back.
    lab.answered_calls(front, 4, hold_ms=500)
    assert_dialogs_stay_on_their_worker(workers, 12)
    assert front.log_lines("ERROR") == []


def test_calls_over_tcp_reach_udp_workers_and_complete(lab: Lab) -> None:
    workers = [lab.worker(f"w{i}") for i in range(2)]
    front = lab.front(workers, algorithm="round-robin")

    lab.answered_calls(front, 2, transport="t1")

    assert [len(w.received("INVITE")) for w in workers] == [1, 1]
    assert_dialogs_stay_on_their_worker(workers, 2)


# -- (c) a dead worker leaves rotation, (e) and comes back ------------------------------------


def test_a_killed_worker_leaves_rotation_within_seconds_and_comes_back(lab: Lab) -> None:
    workers = [lab.worker(f"w{i}") for i in range(3)]
    front = lab.front(workers, algorithm="round-robin", probing_threshold=2)
    dead = workers[1]
    wait_until(lambda: dead.received("OPTIONS"), 5, "a first keepalive")

    dead.kill()
    killed = time.monotonic()
    wait_until(lambda: front.log_lines(f"{dead.uri} out of rotation"), 10, "the dead worker out")
    gone_after = time.monotonic() - killed
    print(f"dead worker out of rotation after {gone_after:.2f} s")
    # Worst case: a ping just missed, then two unanswered ones (1 s timeout each).
    assert gone_after <= KEEPALIVE_S * 2 + 1 + 1
    assert front.rotation()[dead.uri] == "IP"

    before = [len(w.received("INVITE")) for w in workers]
    calls = lab.answered_calls(front, 6, rate=20)
    assert [len(w.received("INVITE")) - b for w, b in zip(workers, before, strict=True)] == [
        3,
        0,
        3,
    ]
    assert front.log_lines("silent on call") == []  # no call waited on the dead worker
    assert calls.seconds < 3

    back = lab.worker("w1-again", port=dead.port)
    restarted = time.monotonic()
    wait_until(lambda: front.log_lines(f"{dead.uri} back in rotation"), 10, "the worker back")
    back_after = time.monotonic() - restarted
    print(f"restarted worker back in rotation after {back_after:.2f} s")
    assert back_after <= KEEPALIVE_S + 1.5
    assert front.rotation()[dead.uri] == "AP"

    lab.answered_calls(front, 6, rate=20)
    assert len(back.received("INVITE")) == 2
    assert_dialogs_stay_on_their_worker([workers[0], back, workers[2]], 6 + 6)


def test_a_call_to_a_silent_worker_moves_on_and_takes_it_out_at_once(lab: Lab) -> None:
    workers = [lab.worker(f"w{i}") for i in range(2)]
    # Keepalives every 30 s: only the call itself can notice the dead worker.
    front = lab.front(workers, algorithm="round-robin", keepalive_s=30)
    workers[0].kill()

    calls = lab.answered_calls(front, 4, rate=20, concurrent=1)

    assert len(workers[1].received("INVITE")) == 4
    assert len(front.log_lines("silent on call")) == 1
    assert len(front.log_lines(f"worker {workers[0].uri} out of rotation")) == 1
    assert front.rotation() == {workers[0].uri: "IP", workers[1].uri: "AP"}
    print(f"4 calls with one failover took {calls.seconds:.2f} s")


# -- (d) nobody free: 503 with Retry-After ----------------------------------------------------


def test_every_worker_busy_gets_503_with_retry_after_after_trying_each(lab: Lab) -> None:
    workers = [lab.worker("w0", answer="486 Busy Here"), lab.worker("w1", answer="503 Draining")]
    front = lab.front(workers, algorithm="round-robin")

    refused = lab.refused_call(front)

    assert refused.one("Retry-After") == str(RETRY_AFTER)
    assert [len(w.received("INVITE")) for w in workers] == [1, 1]
    assert [len(w.received("ACK")) for w in workers] == [1, 1]  # the front ACKed each refusal
    # Busy workers still answer keepalives: they stay in rotation.
    assert set(front.rotation().values()) == {"AP"}


def test_all_workers_dead_gets_503_with_retry_after_and_options_say_so(lab: Lab) -> None:
    workers = [lab.worker(f"w{i}") for i in range(2)]
    front = lab.front(workers, algorithm="least-busy", keepalive_s=30)
    for worker in workers:
        worker.kill()

    started = time.monotonic()
    first = lab.refused_call(front)  # waits on each worker in turn, takes both out
    between = time.monotonic()
    second = lab.refused_call(front)  # nobody left in rotation: at once
    ended = time.monotonic()

    for refused in (first, second):
        assert refused.one("Retry-After") == str(RETRY_AFTER)
    print(f"503 after {between - started:.2f} s (two silent workers), then {ended - between:.2f} s")
    assert ended - between < 1 < between - started
    assert set(front.rotation().values()) == {"IP"}
    options = request(front, PBX, "OPTIONS")
    assert (options.status, options.one("Retry-After")) == (503, str(RETRY_AFTER))


# -- (g) bursts: callers get 200 or 503, and the front's load counts follow the workers ------


def reply_codes(calls: Calls) -> Counter[int]:
    """How many callers got each final reply code (each call's first final reply)."""
    return Counter(replies[0].status for replies in calls.final_replies().values())


@pytest.mark.parametrize("slots", [4, 3], ids=["counts-agree", "worker-fuller-than-counted"])
def test_a_burst_at_twice_capacity_gets_200_or_503_and_every_slot_takes_a_call_again(
    lab: Lab, slots: int
) -> None:
    """4 workers x 4 slots, 32 calls at once: each caller is answered (200) or refused with
    503 and Retry-After, never 486/500; afterwards the front counts no call on any worker,
    and as many calls at once as there are slots fill every one again. With 3 real slots
    each, the front's count (4 a worker) is behind the workers, as when a worker still holds
    a slot the front cannot see: the calls it sends on meet 486s and move on or get 503,
    and those refused calls must leave no count behind."""
    workers = lab.slot_workers(4, slots=slots)
    front = lab.front([], more_ports=[w.port for w in workers], algorithm="least-busy")
    capacity = 4 * slots

    burst = lab.calls(front, 32, "answer_or_503", hold_ms=3000, rate=400)

    finals = burst.final_replies()
    assert len(finals) == 32, burst.stdout[-2500:]
    assert all(len(replies) == 1 for replies in finals.values()), finals  # one answer each
    codes = reply_codes(burst)
    print(
        f"32 calls at once into {capacity} slots: {dict(codes)}; workers sent 486 "
        f"{sum(w.busy for w in workers)} times, held at most {[w.most_calls for w in workers]}"
    )
    assert set(codes) <= {200, 503}, codes
    assert codes[200] == capacity, codes  # every slot was used
    for replies in finals.values():
        if replies[0].status == 503:
            assert replies[0].one("Retry-After") == str(RETRY_AFTER)
    assert burst.code == 0, burst.stdout[-2500:]

    wait_until(lambda: set(front.loads().values()) == {0}, 5, "the front's counts back to 0")
    assert sum(w.calls for w in workers) == 0
    again = lab.calls(front, capacity, "answer_or_503", hold_ms=2000, rate=400)
    assert reply_codes(again) == {200: capacity}
    assert [w.answered for w in workers] == [2 * slots] * 4
    wait_until(lambda: set(front.loads().values()) == {0}, 5, "the counts back to 0 again")
    assert front.log_lines("ERROR") == []


def test_a_workers_own_hangup_holds_its_slot_until_its_bye_is_answered(lab: Lab) -> None:
    """pjsua frees a slot when the caller answers the worker's BYE, not when it is sent: the
    front must count the call until then, or it sends the worker an INVITE it can only
    refuse 486."""
    (worker,) = lab.slot_workers(1, hangup_after_s=0.3)
    front = lab.front([], more_ports=[worker.port], algorithm="least-busy")
    callers = lab.calls_in_background(front, 4, "slow_bye", rate=100)
    wait_until(lambda: worker.byes_pending == 4, 10, "4 BYEs from the worker, unanswered")
    assert front.loads() == {worker.uri: 4}

    refused = lab.refused_call(front)  # the callers answer the BYEs 4 s late

    assert worker.byes_pending == 4, "the refused call came too late to test anything"
    assert refused.one("Retry-After") == str(RETRY_AFTER)
    assert (worker.invites, worker.busy) == (4, 0)  # the 5th INVITE never reached it
    assert callers.wait(20) == 0
    # the callers are gone once their last 200 is sent; the worker may read it a moment later
    wait_until(lambda: worker.byes_answered == 4, 5, "the worker saw its 4 BYEs answered")
    assert (worker.byes_answered, worker.calls) == (4, 0)
    wait_until(lambda: front.loads() == {worker.uri: 0}, 5, "the count back to 0")
    lab.answered_calls(front, 4, rate=100)
    assert worker.answered == 8
    assert front.log_lines("ERROR") == []


def test_a_cancelled_call_and_a_call_never_answered_give_their_slot_back(lab: Lab) -> None:
    (worker,) = lab.slot_workers(1, mode="ring")
    front = lab.front([], more_ports=[worker.port], algorithm="least-busy", answer_timeout_s=1)

    cancelled = lab.calls(front, 1, "cancel")
    assert cancelled.code == 0, cancelled.stdout[-2500:]
    assert worker.cancelled == 1
    wait_until(lambda: front.loads() == {worker.uri: 0}, 5, "the count back after CANCEL")

    # Rang and never answered (answer_timeout_s): the caller gets 503, not tm's 408.
    unanswered = lab.refused_call(front)
    assert unanswered.one("Retry-After") == str(RETRY_AFTER)
    assert worker.cancelled == 2  # the front cancelled the ringing branch
    wait_until(lambda: front.loads() == {worker.uri: 0}, 5, "the count back after the timeout")
    assert front.log_lines("ERROR") == []


def test_failover_is_bounded_and_ends_in_503_never_a_forking_error(lab: Lab) -> None:
    """14 workers that all say 486 while the front counts them idle (its count has drifted):
    the front tries a few, then answers 503 with Retry-After. tm allows 12 branches per
    call: trying every worker in the list ended in "500 Forking capacity exceeded"."""
    workers = lab.slot_workers(14, slots=0)
    front = lab.front([], more_ports=[w.port for w in workers], algorithm="least-busy")

    refused = lab.refused_call(front)

    tried = sum(w.invites for w in workers)
    print(f"14 busy workers: {tried} tried, then {refused.first_line}")
    assert refused.one("Retry-After") == str(RETRY_AFTER)
    assert tried == front.config.max_attempts
    assert set(front.loads().values()) == {0}
    assert front.log_lines("ERROR") == []


# -- (f) strangers, OPTIONS, other methods ----------------------------------------------------


def test_only_trusted_peers_may_invite_and_options_are_answered_by_the_front(lab: Lab) -> None:
    worker = lab.worker("w0")
    front = lab.front([worker])
    invite_uri = f"sip:2001@{PUBLIC}:{front.port}"

    assert request(front, STRANGER, "INVITE", uri=invite_uri).status == 403
    assert request(front, STRANGER, "MESSAGE", uri=invite_uri).status == 403
    assert request(front, STRANGER, "NOTIFY", uri=invite_uri).status == 403
    for source in (PBX, STRANGER):
        options = request(front, source, "OPTIONS")
        assert options.status == 200
        assert "INVITE" in options.one("Allow")
    register = request(front, PBX, "REGISTER")
    assert register.status == 405
    assert worker.received("INVITE") == worker.received("MESSAGE") == []
    assert front.log_lines(f"refused INVITE from untrusted {STRANGER}:")


def test_a_dialog_through_the_front_leads_to_a_worker_and_nowhere_else(lab: Lab) -> None:
    worker = lab.worker("w0")
    front = lab.front([worker])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as victim:
        victim.bind((STRANGER, 0))
        victim.settimeout(0.5)
        victim_uri = "sip:victim@{}:{}".format(*victim.getsockname())

        for source in (STRANGER, PBX):
            refused = request(front, source, "BYE", uri=victim_uri, in_dialog=True)
            assert refused.status == 403
        with pytest.raises(TimeoutError):
            victim.recv(65535)
    assert len(front.log_lines("refused in-dialog BYE")) == 2
    # The same request to a worker goes through (sipp answers any stray BYE 200).
    assert request(front, STRANGER, "BYE", uri=worker.uri, in_dialog=True).status == 200
    (bye,) = worker.received("BYE")
    assert bye.one("X-Sipvm-Source").startswith(f"{STRANGER}:")


def test_a_workers_notify_is_relayed_to_the_pbx(lab: Lab) -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw_worker,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as pbx,
    ):
        raw_worker.bind((PRIVATE, 0))
        pbx.bind((PBX, 0))
        for sock in (raw_worker, pbx):
            sock.settimeout(3)
        worker_port, pbx_port = raw_worker.getsockname()[1], pbx.getsockname()[1]
        front = lab.front([lab.worker("w0")], more_ports=[worker_port])
        notify = (
            f"NOTIFY sip:1001@{PBX}:{pbx_port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {PRIVATE}:{worker_port};branch=z9hG4bKmwi{worker_port}\r\n"
            f"From: <sip:voicemail@{PRIVATE}>;tag=mwi\r\nTo: <sip:1001@{PBX}>\r\n"
            f"Call-ID: mwi-{worker_port}\r\nCSeq: 1 NOTIFY\r\nMax-Forwards: 70\r\n"
            "Event: message-summary\r\nSubscription-State: terminated;reason=noresource\r\n"
            "Content-Type: application/simple-message-summary\r\nContent-Length: 21\r\n\r\n"
            "Messages-Waiting: yes"
        )
        raw_worker.sendto(notify.encode(), front.worker_side)

        relayed, (via_host, via_port) = pbx.recvfrom(65535)
        text = relayed.decode()
        message = SipMessage.parse(text)
        assert message.first_line == f"NOTIFY sip:1001@{PBX}:{pbx_port} SIP/2.0"
        assert message.one("Event") == "message-summary"
        assert text.endswith("Messages-Waiting: yes")
        assert message.all("X-Sipvm-Source") == []  # only added towards workers
        vias = message.all("Via")
        reply = "".join(f"Via: {v}\r\n" for v in vias)
        head = text.split("\r\n\r\n", 1)[0].split("\r\n")[1:]
        keep = [h for h in head if h.split(":")[0] in ("From", "To", "Call-ID", "CSeq")]
        pbx.sendto(
            (
                "SIP/2.0 200 OK\r\n" + reply + "\r\n".join(keep) + "\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            (via_host, via_port),
        )
        assert SipMessage.parse(raw_worker.recv(65535).decode()).status == 200


# -- a pjsua2 worker --------------------------------------------------------------------------


def test_a_pjsua2_worker_answers_keepalives_and_its_bye_reaches_the_caller(lab: Lab) -> None:
    port = free_port(PRIVATE)
    script = {
        "mode": "answer",
        "bind": PRIVATE,
        "port": port,
        "rtp_port": free_ports(PRIVATE, 24),
        "calls": 1,
        "steps": [{"wait": KEEPALIVE_S + 1.5}, {"hangup": True}],
        "timeout": 20,
    }
    (lab.tmp / "peer.json").write_text(json.dumps(script))
    peer = lab.spawn(
        "pjsua2-worker",
        [*TESTPEER, "--script", str(lab.tmp / "peer.json")],
    )
    wait_until(lambda: "testpeer ready" in (lab.tmp / "pjsua2-worker.err").read_text(), 10, "peer")
    stand_in = Worker("pjsua2", port, lab.tmp / "none.msgs", peer)
    front = lab.front([stand_in], algorithm="least-busy")

    calls = lab.answered_calls(front, 1, expect="hears_bye")

    assert calls.seconds > KEEPALIVE_S + 1
    assert front.rotation() == {stand_in.uri: "AP"}  # keepalives answered during the call
    assert peer.wait(10) == 0
    report = json.loads((lab.tmp / "pjsua2-worker.out").read_text())
    (call,) = report["calls"]
    assert call["disconnect"]["by"] == "local"
    assert call["source"] == "{}:{}".format(*front.worker_side)
    invite = SipMessage.parse(call["request"])
    assert invite.one("X-Sipvm-Source").startswith(f"{PBX}:")
    assert invite.one("Diversion") == ROUTING_HEADERS["Diversion"].replace("[local_ip]", PBX)
