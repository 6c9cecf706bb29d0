"""Benchmark: message-waiting lamps (MWI NOTIFY fan-out) through the real pjsua2 engine.

Prints figures, asserts nothing about speed:

    python tests/bench/bench_mwi.py [--users 1000] [--members 20] [--rounds 50]
                                    [--poll-s 0.25] [--coalesce-s 0.2] [--max-per-s 200]

Wired as ``sipvm serve`` wires it (``server.start_notify``): a ``SipWorker`` (pjsua2, its own
free SIP port on 127.0.0.1) sends the NOTIFYs of an ``MwiNotifier`` driven by a ``Notifier``
polling a real store (``App.open`` in a temporary directory). Every phone AOR points at one
phone sink: a plain UDP socket on 127.0.0.1 served by a thread, which parses each NOTIFY,
stamps it with ``time.monotonic()`` and answers 200 OK (so pjsip's transactions complete and
the engine stops at once). Retransmissions (same Call-ID and CSeq) are answered again but
counted once.

1. Startup refresh: ``--users`` users with one phone each, all members of one call queue, so
   every phone shows two lamps (2 x users NOTIFYs). Timed from ``Notifier.start()`` to the
   sink receiving the last expected NOTIFY; "missing" counts (phone, inbox) lamps the sink
   never got. It runs twice over the same store: paced at ``--max-per-s`` (the notifier's
   default, what ``serve`` runs) and unpaced, which shows what the engine itself sustains.
2. Memory and CPU of the paced refresh: process RSS (``/proc/self/status``) before and after,
   and process CPU seconds minus the sink thread's own.
3. Change latency: a queue of ``--members`` members on a fresh store; each round another
   ``App`` on the same data directory (as a worker or the ``sipvm`` command would) deposits a
   message in the queue, and for each member's phone the time from the deposit returning to
   the sink receiving the NOTIFY with the queue's new counts is one sample. Rounds are spaced
   by ``coalesce_s`` plus a random part of ``poll_s`` (seeded), so each is a fresh change and
   commits fall at every phase of the poll; expect about ``poll_s / 2`` plus a little.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import random
import resource
import socket
import statistics
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a script: make the tests package importable

from sipvm.app import App, utc_now  # noqa: E402
from sipvm.domain.messages import DepositFacts  # noqa: E402
from sipvm.domain.model import Directory, Extension, Grant, Kind, Right, Site  # noqa: E402
from sipvm.domain.mwi import message_account, reachable_without_proxy  # noqa: E402
from sipvm.notify.mwi import MwiNotifier  # noqa: E402
from sipvm.notify.notifier import Notifier  # noqa: E402
from sipvm.sip.engine import EngineConfig  # noqa: E402
from sipvm.sip.worker import SipWorker  # noqa: E402
from tests.support.tones import write_tone_wav  # noqa: E402

HOST = "127.0.0.1"
#: Header names in their compact forms (RFC 3261 section 7.3.3).
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "l": "content-length"}
#: A stall this long (no NOTIFY at all) ends a wait.
IDLE_S = 5.0


# -- the phone sink ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SipRequest:
    """The parts of a request the sink uses (header names lower-case, full forms)."""

    method: str
    uri: str
    headers: dict[str, list[str]]
    body: str

    def first(self, name: str) -> str:
        return self.headers[name][0]


def parse_request(data: bytes) -> SipRequest | None:
    """A SIP request from one datagram; None when it is not one (or lacks what we copy)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("utf-8", "replace").split("\r\n")
    start = lines[0].split(" ")
    if len(start) != 3 or start[2] != "SIP/2.0":
        return None
    headers: dict[str, list[str]] = {}
    last: list[str] | None = None
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and last:  # folded continuation of the previous header
            last[-1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            return None
        key = COMPACT.get(name.strip().lower(), name.strip().lower())
        last = headers.setdefault(key, [])
        last.append(value.strip())
    if any(h not in headers for h in ("via", "from", "to", "call-id", "cseq")):
        return None
    length = int(headers.get("content-length", ["0"])[0])
    return SipRequest(start[0], start[1], headers, rest[:length].decode("utf-8", "replace"))


def ok_response(request: SipRequest) -> bytes:
    """200 OK for ``request`` (Via, From, To with a tag, Call-ID and CSeq copied)."""
    call_id = request.first("call-id")
    to = request.first("to")
    if ";tag=" not in to.replace(" ", "").lower():
        to += f";tag=sink{zlib.crc32(call_id.encode()):08x}"  # same tag for retransmissions
    lines = [
        "SIP/2.0 200 OK",
        *(f"Via: {via}" for via in request.headers["via"]),
        f"From: {request.first('from')}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {request.first('cseq')}",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


@dataclass(frozen=True)
class Received:
    """One NOTIFY as the phone got it."""

    at: float
    """``time.monotonic()`` when the datagram was read."""
    uri: str
    body: str

    @property
    def account(self) -> str:
        return _body_field(self.body, "Message-Account")

    @property
    def voice(self) -> str:
        return _body_field(self.body, "Voice-Message")


def _body_field(body: str, name: str) -> str:
    for line in body.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return value.strip()
    return ""


class PhoneSink:
    """Every desk phone at once: answers each NOTIFY 200 OK and records it (in a thread)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, 0))
        self._sock.settimeout(0.1)
        self.port: int = self._sock.getsockname()[1]
        self.received: list[Received] = []
        """Each NOTIFY once, in arrival order (retransmissions left out)."""
        self.retransmissions = 0
        self.other = 0
        """Datagrams that were not a NOTIFY we could parse (not answered)."""
        self.cpu_s = 0.0
        """CPU seconds of the sink's own thread so far."""
        self._seen: set[tuple[str, str]] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="phone-sink", daemon=True)

    def phone(self, ext: str) -> str:
        """The AOR of extension ``ext``'s desk phone (this sink)."""
        return f"sip:{ext}@{HOST}:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()

    def mark(self) -> int:
        """Where the next NOTIFY will be in ``received``."""
        with self._cond:
            return len(self.received)

    def wait(self, done: Callable[[list[Received]], bool], timeout_s: float) -> bool:
        """Block until ``done(received)`` holds (True), ``timeout_s`` passes or no NOTIFY
        comes for ``IDLE_S`` (False). ``done`` runs under the sink's lock."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while not done(self.received):
                left = deadline - time.monotonic()
                if left <= 0 or not self._cond.wait(min(left, IDLE_S)):
                    return done(self.received)
        return True

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            at = time.monotonic()
            request = parse_request(data)
            if request is None or request.method != "NOTIFY":
                self.other += 1
                continue
            self._sock.sendto(ok_response(request), peer)
            key = (request.first("call-id"), request.first("cseq"))
            with self._cond:
                if key in self._seen:
                    self.retransmissions += 1
                else:
                    self._seen.add(key)
                    self.received.append(Received(at, request.uri, request.body))
                    self._cond.notify_all()
            self.cpu_s = time.thread_time()


# -- the server side ---------------------------------------------------------------------------


class RefuseCalls:
    """This benchmark takes no calls (``sip.worker.InviteRouter``)."""

    draining = False

    async def on_invite(self, control: SipWorker, key: int, raw: str, source: str) -> None:
        await control.reject(key, 403)


def free_port() -> int:
    """A port free on ``HOST`` for both UDP and TCP (pjsua listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return port


def build_directory(sink: PhoneSink, users: int, first: int, queue: str) -> Directory:
    """``users`` users (one phone each at the sink), all members of call queue ``queue``."""
    exts = {
        str(n): Extension(str(n), Kind.USER, f"User {n}", "HQ", phones=(sink.phone(str(n)),))
        for n in range(first, first + users)
    }
    members = tuple(Grant(ext, frozenset({Right.PLAY})) for ext in exts)
    exts[queue] = Extension(queue, Kind.CALL_QUEUE, "Queue", "HQ", members=members)
    return Directory(sites={"HQ": Site("HQ", "UTC")}, extensions=exts)


def lamps_of(directory: Directory, queue: str) -> set[tuple[str, str]]:
    """(phone, Message-Account) of every lamp: each user's own inbox and the queue."""
    return {
        (phone, message_account(inbox, phone))
        for ext in directory.extensions.values()
        for phone in ext.phones
        for inbox in (ext.ext, queue)
    }


class Lamps:
    """A running ``MwiNotifier`` + ``Notifier`` pair over one store, as ``serve`` starts them."""

    def __init__(
        self, app: App, worker: SipWorker, poll_s: float, coalesce_s: float, max_per_s: float
    ) -> None:
        self.mwi = MwiNotifier(
            worker,
            app.message_repo,
            coalesce_s=coalesce_s,
            max_per_s=max_per_s,
            reachable=reachable_without_proxy,
        )
        self.notifier = Notifier(
            directory=app.directory,
            repo=app.notify_repo,
            mwi=self.mwi,
            email=False,
            clock=utc_now,
            poll_s=poll_s,
        )
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.mwi.run()))
        await self.notifier.start()
        self._tasks.append(asyncio.create_task(self.notifier.run()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def rss_mb() -> float:
    """Resident set size of this process now (peak RSS where /proc is missing)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class NewCounts:
    """A ``PhoneSink.wait`` condition: each of ``phones`` has got, since ``start``, the NOTIFY
    for ``account`` whose Voice-Message starts with ``voice``; ``times`` has when."""

    def __init__(self, phones: Iterable[str], account: str, voice: str, start: int) -> None:
        self.waiting = set(phones)
        self.times: dict[str, float] = {}
        self._account = account
        self._voice = voice
        self._pos = start

    def __call__(self, received: list[Received]) -> bool:
        for r in received[self._pos :]:
            wanted = r.account == self._account and r.voice.startswith(self._voice)
            if wanted and r.uri in self.waiting:
                self.waiting.discard(r.uri)
                self.times[r.uri] = r.at
        self._pos = len(received)
        return not self.waiting


class Coverage:
    """A ``PhoneSink.wait`` condition: each expected (phone, Message-Account) has arrived
    since ``start``; ``last`` is when the latest of them did."""

    def __init__(self, expected: Iterable[tuple[str, str]], start: int) -> None:
        self.remaining = set(expected)
        self.last = math.nan
        self._pos = start

    def __call__(self, received: list[Received]) -> bool:
        for r in received[self._pos :]:
            if (r.uri, r.account) in self.remaining:
                self.remaining.discard((r.uri, r.account))
                self.last = r.at
        self._pos = len(received)
        return not self.remaining


# -- the measurements --------------------------------------------------------------------------


async def refresh(
    data: Path,
    worker: SipWorker,
    sink: PhoneSink,
    expected: set[tuple[str, str]],
    label: str,
    *,
    poll_s: float,
    coalesce_s: float,
    max_per_s: float,
) -> tuple[str, str]:
    """Open the store in ``data``, start its notifier and time its first full refresh;
    returns (refresh line, cost line).

    Each refresh gets its own ``App``, closed after the notifier stops, as ``serve`` does:
    a task cancelled while awaiting ``Database.read``'s ``BEGIN`` leaves that connection
    inside a transaction (the statement runs anyway; the ``finally`` that commits is never
    entered), and its next ``BEGIN`` fails.
    """
    app = await App.open(data)
    lamps = Lamps(app, worker, poll_s, coalesce_s, max_per_s)
    done = Coverage(expected, sink.mark())
    rss0, cpu0, sink_cpu0 = rss_mb(), time.process_time(), sink.cpu_s
    retransmitted0 = sink.retransmissions
    try:
        t0 = time.monotonic()
        await lamps.start()
        timeout = 60 + 4 * len(expected) / min(max_per_s, 200.0)
        await asyncio.to_thread(sink.wait, done, timeout)
        cpu = time.process_time() - cpu0 - (sink.cpu_s - sink_cpu0)
        rss1 = rss_mb()
    finally:
        await lamps.stop()
        await app.close()
    missing = len(done.remaining)
    got = len(expected) - missing
    elapsed = (done.last if got else time.monotonic()) - t0
    answered = "all answered" if not missing else f"{got} answered"
    refresh_line = (
        f"{label}: {got} NOTIFYs in {elapsed:.2f} s = {got / elapsed:.0f}/s, {answered} "
        f"(missing {missing}, retransmitted {sink.retransmissions - retransmitted0})"
    )
    cost_line = (
        f"RSS {rss1 - rss0:+.1f} MB ({rss0:.1f} -> {rss1:.1f} MB), CPU {cpu:.2f} s "
        f"for the {label} (sink thread excluded)"
    )
    return refresh_line, cost_line


async def change_latency(
    data: Path,
    worker: SipWorker,
    sink: PhoneSink,
    members: int,
    rounds: int,
    *,
    poll_s: float,
    coalesce_s: float,
    max_per_s: float,
) -> str:
    """Deposit in a queue of ``members`` from another App; time each phone's NOTIFY."""
    queue = "9002"
    app = await App.open(data)
    directory = build_directory(sink, members, 20000, queue)
    await app.directory.apply(directory, source="bench")
    lamps = Lamps(app, worker, poll_s, coalesce_s, max_per_s)
    other: App | None = None
    samples: list[float] = []
    missing = 0
    try:
        await lamps.start()  # its refresh must be over before the first round
        await asyncio.to_thread(sink.wait, Coverage(lamps_of(directory, queue), 0), 60)
        other = await App.open(data)  # a worker process or the `sipvm` command
        seconds = directory.defaults.min_message_s + 1.0  # shorter ones are discarded
        wav = write_tone_wav(data.parent / "tone.wav", 440.0, seconds)
        phones = [sink.phone(ext) for ext in directory.extensions if ext != queue]
        account = message_account(queue, phones[0])
        rng = random.Random(1)
        for _ in range(rounds):
            await asyncio.sleep(coalesce_s + rng.uniform(0, poll_s))
            start = sink.mark()
            facts = DepositFacts(inbox=queue, received_at=utc_now(), caller="5551234")
            stored = await other.deposits.deposit_file(facts, wav)
            committed = time.monotonic()
            if stored is None:
                raise RuntimeError(f"the deposit of {wav} was discarded")
            counts = (await other.message_repo.counts([queue]))[queue]
            arrived = NewCounts(phones, account, f"{counts.new}/{counts.old} ", start)
            await asyncio.to_thread(sink.wait, arrived, poll_s + coalesce_s + IDLE_S)
            samples += [(at - committed) * 1000 for at in arrived.times.values()]
            missing += len(arrived.waiting)
    finally:
        await lamps.stop()
        if other is not None:
            await other.close()
        await app.close()
    label = (
        f"change -> NOTIFY at phone ({members} phones, {rounds} rounds, poll {poll_s:g} s, "
        f"coalesce {coalesce_s:g} s)"
    )
    if len(samples) < 2:
        return f"{label}: too few NOTIFYs to measure ({len(samples)}; missing {missing})"
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"{label}: p50 {q[49]:.1f} ms p99 {q[98]:.1f} ms max {max(samples):.1f} ms "
        f"(missing {missing})"
    )


async def refreshes(
    data: Path,
    worker: SipWorker,
    sink: PhoneSink,
    users: int,
    *,
    poll_s: float,
    coalesce_s: float,
    max_per_s: float,
) -> list[str]:
    """The startup refresh paced as configured, its cost, then unpaced (same store)."""
    queue = "9001"
    directory = build_directory(sink, users, 10000, queue)
    provisioning = await App.open(data)
    try:
        await provisioning.directory.apply(directory, source="bench")
    finally:
        await provisioning.close()
    expected = lamps_of(directory, queue)
    timing = {"poll_s": poll_s, "coalesce_s": coalesce_s}
    paced, cost = await refresh(
        data, worker, sink, expected, "startup refresh", max_per_s=max_per_s, **timing
    )
    unpaced, _ = await refresh(
        data, worker, sink, expected, "startup refresh, unpaced", max_per_s=math.inf, **timing
    )
    return [paced, unpaced, cost]


async def run(
    users: int = 1000,
    members: int = 20,
    rounds: int = 50,
    *,
    poll_s: float = 0.25,
    coalesce_s: float = 0.2,
    max_per_s: float = 200.0,
) -> list[str]:
    """Run the three measurements; returns the lines to print."""
    sink = PhoneSink()
    sink.start()
    config = EngineConfig(bind=HOST, port=free_port(), rtp_port=free_port(), rtp_port_range=10)
    worker = SipWorker(config, RefuseCalls())
    lines = [
        f"MWI fan-out via pjsua2 on {HOST}: {users} users x (own inbox + 1 queue of all) = "
        f"{2 * users} lamps; changes on a queue of {members} members x {rounds} rounds; "
        f"poll {poll_s:g} s, coalesce {coalesce_s:g} s, paced at {max_per_s:g} NOTIFY/s"
    ]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            await worker.start()
            try:
                lines += await refreshes(
                    Path(tmp) / "refresh",
                    worker,
                    sink,
                    users,
                    poll_s=poll_s,
                    coalesce_s=coalesce_s,
                    max_per_s=max_per_s,
                )
                lines.append(
                    await change_latency(
                        Path(tmp) / "changes",
                        worker,
                        sink,
                        members,
                        rounds,
                        poll_s=poll_s,
                        coalesce_s=coalesce_s,
                        max_per_s=max_per_s,
                    )
                )
            finally:
                began = time.monotonic()
                await worker.stop()
                lines.append(f"SIP engine stopped in {time.monotonic() - began:.2f} s")
    finally:
        sink.close()
    if sink.other:
        lines.append(f"phone sink: {sink.other} datagrams that were not a NOTIFY")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--members", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--poll-s", type=float, default=0.25)
    parser.add_argument("--coalesce-s", type=float, default=0.2)
    parser.add_argument("--max-per-s", type=float, default=200.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    lines = asyncio.run(
        run(
            args.users,
            args.members,
            args.rounds,
            poll_s=args.poll_s,
            coalesce_s=args.coalesce_s,
            max_per_s=args.max_per_s,
        )
    )
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
