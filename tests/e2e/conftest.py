"""End-to-end fixtures: a real `sipvm serve` process on loopback ports, real peers against it.

Every address here is on 127.0.0.0/8. The server listens on 127.0.0.1; the "PBX" peers that
it trusts send from 127.0.0.2, so anything from 127.0.0.1 (the scanners) is untrusted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sipvm.app import App
from sipvm.domain.messages import DepositFacts, Message
from sipvm.pool import RTP_PORTS_PER_WORKER
from sipvm.storage.messages import AuditEntry, SqliteMessageRepo
from tests.support.ports import free_ports
from tests.support.tones import write_tone_wav

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "provisioning" / "examples" / "small-office.toml"
SERVER_HOST = "127.0.0.1"
PBX_HOST = "127.0.0.2"
POOL_PORTS = 3
"""SIP ports a test server reserves: its own and those of up to two pool workers (port + K)."""
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
TESTPEER = [sys.executable, "-m", "tests.support.testpeer"]
"""The scripted pjsua2 peer's command line; start it with :func:`repo_env` as its environment."""


def repo_env() -> dict[str, str]:
    """This process's environment with the repository first on ``PYTHONPATH``.

    Peers run in a temporary working directory, where ``python -m tests.support.testpeer``
    would not find the ``tests`` package without it.
    """
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def free_sip_port(host: str = "127.0.0.1") -> int:
    """A SIP port nobody uses on ``host`` (UDP and TCP both free), dealt to this test process
    alone (see :mod:`tests.support.ports`)."""
    return free_ports(host, 1, tcp=True)


@dataclass
class Server:
    """A running `sipvm serve`."""

    data: Path
    sip_port: int
    proc: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def uri_host(self) -> str:
        return f"{SERVER_HOST}:{self.sip_port}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `sipvm` command against this server's data directory."""
        return subprocess.run(
            [sys.executable, "-m", "sipvm", *args, "--data", str(self.data)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        if self.reader is not None:
            self.reader.join(5)
        return code

    def read_log(self) -> None:
        """Keep draining the server's stderr (a full pipe would block its logging)."""
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip())
        self.proc.stderr.close()

    def wait_log(self, text: str, timeout: float = 10) -> str:
        """The first log line containing ``text``, waiting for it to appear."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if text in line:
                    return line
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged:\n" + "\n".join(self.log[-30:]))


SHARED_PROMPT_CACHE = Path(tempfile.gettempdir()) / "sipvm-tests-prompt-cache"
"""One prompt cache for every test server: the prompts (and spoken names) are prepared once, not
at each of the suite's ~150 server starts. Safe to share: files are named by a digest of their
source and settings and written atomically (as the workers of one pool share theirs)."""


def start_server(
    tmp: Path,
    *,
    trusted: str = PBX_HOST,
    extra: tuple[str, ...] = (),
    settings: str = "",
    directory: Path = EXAMPLE,
    shared_prompts: bool = True,
) -> Server:
    """``sipvm serve`` on a fresh port block; ``shared_prompts=False`` gives it a prompt cache
    of its own (for the tests of the cache itself)."""
    data = tmp / "data"
    cache = data / "prompt-cache"
    if shared_prompts and not cache.exists() and not cache.is_symlink():
        SHARED_PROMPT_CACHE.mkdir(parents=True, exist_ok=True)
        SHARED_PROMPT_CACHE.chmod(0o700)  # private, as sipvm keeps everything in its data
        data.mkdir(parents=True, exist_ok=True)
        cache.symlink_to(SHARED_PROMPT_CACHE, target_is_directory=True)
    sip_port = free_ports(SERVER_HOST, POOL_PORTS, tcp=True)  # a pool's workers take port + K
    rtp_port = free_ports(SERVER_HOST, POOL_PORTS * RTP_PORTS_PER_WORKER)
    config = tmp / "sipvm.toml"
    # Six test processes load two cores far beyond what a server meets: the load guard
    # (503 while the event loop lags) would refuse the suite's calls; its own test turns it on.
    guard = "" if "behind_lag_ms" in settings else "behind_lag_ms = 0\n"
    config.write_text(
        f"[sip]\nrtp_port = {rtp_port}\ndrain_s = 5\n{guard}{settings}\n", encoding="utf-8"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sipvm",
            "serve",
            "--config",
            str(config),
            "--data",
            str(data),
            "--directory",
            str(directory),
            "--bind",
            SERVER_HOST,
            "--sip-port",
            str(sip_port),
            "--trusted-peer",
            trusted,
            *extra,
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    server = Server(data, sip_port, proc)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        server.log.append(line.rstrip())
        if "sipvm ready" in line:
            server.reader = threading.Thread(target=server.read_log, daemon=True)
            server.reader.start()
            return server
    proc.kill()
    proc.communicate()
    raise AssertionError("sipvm serve did not start:\n" + "\n".join(server.log))


def seed_message(
    server: Server, tmp: Path, inbox: str, freq_hz: float = 1200.0, seconds: float = 3.0
) -> int:
    """Store a message of a ``freq_hz`` tone in ``inbox`` while the server runs (the store is
    shared: SQLite WAL); returns its id."""

    async def run() -> int:
        app = await App.open(server.data)
        try:
            wav = write_tone_wav(tmp / f"seed-{freq_hz:.0f}.wav", freq_hz, seconds)
            facts = DepositFacts(inbox=inbox, received_at=datetime.now(UTC), caller="5551234")
            stored = await app.deposits.deposit_file(facts, wav)
            assert stored is not None
            return stored.id
        finally:
            await app.close()

    return asyncio.run(run())


def stored_message(server: Server, message_id: int) -> tuple[Message, list[AuditEntry]]:
    """A message as the store holds it (deleted ones too, until purged) and its audit trail."""

    async def run() -> tuple[Message, list[AuditEntry]]:
        app = await App.open(server.data)
        try:
            repo = SqliteMessageRepo(app.db)
            found = await repo.get(message_id)
            assert found is not None, f"message {message_id} is not in the store"
            return found, await repo.audit_trail(message_id)
        finally:
            await app.close()

    return asyncio.run(run())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """`sipvm serve` on the example directory, trusting the PBX address 127.0.0.2."""
    running = start_server(tmp_path)
    try:
        yield running
    finally:
        code = running.stop()
        assert code == 0, "\n".join(running.log[-30:])


# -- peers: the scripted pjsua2 peer and sipp, as child processes ------------------------

HOST = "127.0.0.1"


def free_port() -> int:
    """A UDP port on 127.0.0.1 nobody uses, dealt to this test process alone."""
    return free_ports(HOST)


def free_rtp_port(host: str = HOST) -> int:
    """An even UDP port whose three successors are free too: sipp's ``-mp`` binds audio RTP and
    RTCP there and video RTP and RTCP on the next two."""
    return free_ports(host, 4)


@dataclass
class Proc:
    """A child process whose stdout and stderr go to files (no pipe can fill up)."""

    name: str
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def finish(self, timeout: float = 30) -> int:
        """Wait for the exit; returns the exit status (a signal gives a negative one)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"{self.name} did not finish:\n{self.stderr()}") from None

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")[-3000:]

    def wait_for(self, text: str, timeout: float = 10) -> None:
        """Wait until ``text`` shows on stderr (e.g. the peer's ready line)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.err.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: no {text!r} on stderr:\n{self.stderr()}")

    def report(self, timeout: float = 30) -> dict[str, Any]:
        """The scripted peer's JSON report, after a clean exit (0: no SIGABRT at teardown)."""
        code = self.finish(timeout)
        assert code == 0, f"{self.name} exited {code}:\n{self.stderr()}"
        report: dict[str, Any] = json.loads(self.out.read_text())
        assert report["error"] is None
        return report


@dataclass
class Kit:
    """Starts peers in ``tmp`` (their working directory) and kills leftovers afterwards."""

    tmp: Path
    procs: list[Proc]

    def spawn(self, name: str, args: list[str]) -> Proc:
        out, err = self.tmp / f"{name}.out", self.tmp / f"{name}.err"
        with out.open("wb") as o, err.open("wb") as e:
            proc = subprocess.Popen(
                args, cwd=self.tmp, env=repo_env(), stdout=o, stderr=e, stdin=subprocess.DEVNULL
            )
        started = Proc(name, proc, out, err)
        self.procs.append(started)
        return started

    def peer(self, name: str, script: dict[str, Any]) -> Proc:
        """Start the scripted peer (:data:`TESTPEER`) on a script (answer: wait until ready)."""
        path = self.tmp / f"{name}.json"
        script = {"rtp_port": free_ports(str(script.get("bind", HOST)), 24), **script}
        path.write_text(json.dumps(script))
        started = self.spawn(name, [*TESTPEER, "--script", str(path)])
        if script.get("mode") == "answer":
            started.wait_for("testpeer ready")
        return started

    def sipp(self, name: str, args: list[str], host: str = HOST) -> Proc:
        """Start sipp bound to ``host`` (SIP and media), one call, a global timeout."""
        base = ["sipp", "-i", host, "-mi", host, "-mp", str(free_rtp_port(host)), "-m", "1"]
        tail = ["-timeout", "30s", "-timeout_error", "-nostdin", "-trace_msg"]
        tail += ["-message_file", str(self.tmp / f"{name}.msgs")]
        return self.spawn(name, [*base, *args, *tail])


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    running = Kit(tmp_path, [])
    try:
        yield running
    finally:
        for p in running.procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(5)
