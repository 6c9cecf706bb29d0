"""``sipvm serve --workers N``: N media workers behind a Kamailio front, under a supervisor.

The PyPI pjsua2 build takes 4 calls per process, so capacity comes from processes:
- the supervisor (``sipvm.server.supervise``) prepares the store (migrations, directory,
  purge), then ``run_pool`` writes the front's configuration (``sipvm.front.kamailio``) to
  ``DATA/front/``, starts Kamailio on the public SIP port, then N workers, each
  ``sipvm serve --worker-index K`` (``sipvm.server.run_server``) on the same address with its
  own SIP port (``port + K``) and RTP range, its own spool (``spool/wK``);
- the workers never migrate the store (they open it as prepared and refuse an older one); each
  reports on a pipe once it serves (``report_ready``), and "pool ready" counts only those; a
  worker that fails to start logs why and exits non-zero at once; one still not ready long
  after its start is killed;
- a worker or Kamailio that dies is started again (after 1 s, doubling to 30 s while it keeps
  dying); the front takes a dead worker out of rotation within seconds (OPTIONS pings);
- worker 1 also runs the notifier (lamps and email), so each event is notified once;
- SIGTERM: every worker drains (new calls 503, calls in progress may finish for
  ``[sip] drain_s``), then the front stops.
All workers share the one SQLite store (WAL; writers wait on each other with a busy timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sipvm.config import Settings
from sipvm.errors import InvalidInputError, SipvmError
from sipvm.front.kamailio import FrontConfig, kamailio_command, render

log = logging.getLogger(__name__)

#: RTP ports each worker may use (4 calls take 8).
RTP_PORTS_PER_WORKER = 100
#: Restart backoff for a child that keeps dying.
RESTART_FIRST_S, RESTART_MAX_S, STABLE_S = 1.0, 30.0, 60.0
#: How long the pool waits for its workers to report ready before it says which are not: a
#: base, plus a second per worker (two cores start about five pjsua2 workers a second). A
#: worker not ready twice that long after its start is killed, so it starts again.
READY_WAIT_BASE_S, READY_WAIT_PER_WORKER_S = 30.0, 1.0
#: The environment variable giving a worker the pipe it reports ready on (its descriptor).
READY_FD_ENV = "SIPVM_READY_FD"
#: For the pool's tests: a directory named here makes each worker an idle one (it opens the
#: store as a worker does, reports ready and waits, without SIP: cheap enough to start 150 on
#: two cores); a file ``fail-K`` in that directory makes worker K fail at start.
IDLE_WORKERS_ENV = "SIPVM_IDLE_WORKERS"


@dataclass
class Child:
    """A supervised process: how to start it, and its state."""

    name: str
    argv: list[str]
    reports_ready: bool = False
    """A worker: it reports on a pipe once it serves (``report_ready``)."""
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    delay: float = RESTART_FIRST_S
    restarts: int = 0
    due: float = field(default=0.0)
    ready: bool = False
    """Whether the running process has reported ready."""
    watch: asyncio.Task[None] | None = field(default=None, repr=False)
    pipe: asyncio.ReadTransport | None = field(default=None, repr=False)

    async def start(self) -> None:
        """Start the process (again); a worker's pipe is watched for its ready report."""
        self.ready = False
        if not self.reports_ready:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.DEVNULL
            )
        else:
            read_fd, write_fd = os.pipe()
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    pass_fds=(write_fd,),
                    env={**os.environ, READY_FD_ENV: str(write_fd)},
                )
            except BaseException:
                os.close(read_fd)
                raise
            finally:
                os.close(write_fd)  # the worker holds the only writing end: EOF when it dies
            self.stop_watching()
            reader = asyncio.StreamReader()
            self.pipe, _ = await asyncio.get_running_loop().connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
            )
            self.watch = asyncio.create_task(self._wait_ready(reader, self.proc))
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)

    async def _wait_ready(
        self, reader: asyncio.StreamReader, proc: asyncio.subprocess.Process
    ) -> None:
        line = await reader.readline()  # b"" when the worker exits without reporting
        self.stop_watching()
        if line.startswith(b"ready") and self.proc is proc and proc.returncode is None:
            self.ready = True
            if self.restarts:
                log.info("%s ready again (restart %d)", self.name, self.restarts)

    def stop_watching(self) -> None:
        """Stop waiting for the ready report (the pipe is closed)."""
        if self.watch is not None:
            if self.watch is not asyncio.current_task():
                self.watch.cancel()
            self.watch = None
        if self.pipe is not None:
            self.pipe.close()
            self.pipe = None


def report_ready() -> None:
    """In a worker: tell the supervisor it serves (once; nothing when started by other means)."""
    fd = os.environ.pop(READY_FD_ENV, "")
    if not fd.isdigit():
        return
    with contextlib.suppress(OSError):
        os.write(int(fd), b"ready\n")
    with contextlib.suppress(OSError):
        os.close(int(fd))


def idle_worker_kit() -> Path | None:
    """In a worker: the tests' directory that makes it an idle one (``IDLE_WORKERS_ENV``)."""
    value = os.environ.get(IDLE_WORKERS_ENV, "")
    return Path(value) if value else None


def ready_wait_s(workers: int) -> float:
    """How long the pool waits for ``workers`` workers to report ready."""
    return READY_WAIT_BASE_S + READY_WAIT_PER_WORKER_S * workers


def worker_ports(settings: Settings) -> list[tuple[int, int]]:
    """(SIP port, first RTP port) of each worker."""
    return [
        (settings.sip.port + k, settings.sip.rtp_port + (k - 1) * RTP_PORTS_PER_WORKER)
        for k in range(1, settings.workers + 1)
    ]


def front_config(settings: Settings) -> FrontConfig:
    """The Kamailio front for these settings (refuses what it cannot serve)."""
    bind = settings.sip.bind
    if bind in ("0.0.0.0", "::", ""):
        raise InvalidInputError(
            "sipvm serve --workers needs --bind (or [sip] bind) set to the address callers "
            "reach: the front and the workers' media listen on it, not on 0.0.0.0"
        )
    return FrontConfig(
        address=bind,
        port=settings.sip.port,
        workers=[(bind, sip) for sip, _ in worker_ports(settings)],
        trusted_peers=list(settings.sip.trusted_peers),
        state_dir=(settings.data / "front").resolve(),
        retry_after_s=30,
    )


def worker_argv(settings: Settings, config: Path | None, index: int) -> list[str]:
    """The command line of worker ``index`` (1-based)."""
    sip, rtp = worker_ports(settings)[index - 1]
    argv = [sys.executable, "-m", "sipvm", "serve", "--data", str(settings.data)]
    if config is not None:
        argv += ["--config", str(config)]
    argv += ["--bind", settings.sip.bind, "--sip-port", str(sip), "--rtp-port", str(rtp)]
    argv += ["--worker-index", str(index), "--front", settings.sip.bind]
    for peer in settings.sip.trusted_peers:
        argv += ["--trusted-peer", peer]
    return argv


async def run_pool(
    settings: Settings, front: FrontConfig, config: Path | None, stop: asyncio.Event
) -> int:
    """Run ``front`` (``front_config(settings)``) and the workers until ``stop`` is set;
    returns the exit code. Each worker re-reads ``config``, the supervisor's settings file."""
    executable = shutil.which("kamailio")
    if executable is None:
        raise SipvmError(
            "sipvm serve --workers needs Kamailio for its SIP front: apt-get install kamailio "
            "(or run without --workers: one worker, 4 calls)"
        )
    front.state_dir.mkdir(parents=True, exist_ok=True)
    for path, text in render(front).items():
        Path(path).write_text(text, encoding="utf-8")
    children = [Child("kamailio front", kamailio_command(front.paths, executable=executable))]
    workers = [
        Child(f"worker {k}", worker_argv(settings, config, k), reports_ready=True)
        for k in range(1, settings.workers + 1)
    ]
    children += workers
    began = time.monotonic()
    wait_s = ready_wait_s(len(workers))
    try:
        for child in children:
            await child.start()
        reported = False
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
            await _restart_dead(children, stuck_s=2 * wait_s)
            waited = time.monotonic() - began
            if not reported and (all(w.ready for w in workers) or waited > wait_s):
                _report_ready(settings, workers, waited)
                reported = True
        await _stop_all(workers, grace_s=settings.sip.drain_s + 45)
        await _stop_all(children[:1], grace_s=5)
    finally:
        for child in workers:
            child.stop_watching()
    log.info("pool stopped")
    return 0


def _report_ready(settings: Settings, workers: list[Child], waited: float) -> None:
    """Log how many workers serve (only those that reported ready) and which do not yet."""
    ready = sum(w.ready for w in workers)
    log.info(
        "sipvm pool ready: front on %s:%d, %d workers (%d calls) in %.1f s",
        settings.sip.bind,
        settings.sip.port,
        ready,
        4 * ready,
        waited,
    )
    missing = [w.name for w in workers if not w.ready]
    if missing:
        log.warning(
            "%d workers not ready after %.0f s: %s (each is started again when it exits)",
            len(missing),
            waited,
            ", ".join(missing),
        )


async def _restart_dead(children: list[Child], *, stuck_s: float) -> None:
    now = time.monotonic()
    for child in children:
        proc = child.proc
        if proc is None or proc.returncode is None:
            if proc is None:
                continue
            if child.reports_ready and not child.ready and now - child.started > stuck_s:
                log.warning("%s not ready %.0f s after its start: killing it", child.name, stuck_s)
                child.started = now  # one kill, one line
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            elif now - child.started > STABLE_S:
                child.delay = RESTART_FIRST_S
            continue
        child.ready = False
        if child.due == 0.0:
            child.due = now + child.delay
            log.warning(
                "%s exited with %s; starting it again in %.0f s",
                child.name,
                proc.returncode,
                child.delay,
            )
        elif now >= child.due:
            child.due = 0.0
            child.restarts += 1
            child.delay = min(RESTART_MAX_S, child.delay * 2)
            await child.start()


async def _stop_all(children: list[Child], *, grace_s: float) -> None:
    running = [c for c in children if c.proc is not None and c.proc.returncode is None]
    for child in running:
        assert child.proc is not None
        with contextlib.suppress(ProcessLookupError):
            child.proc.send_signal(signal.SIGTERM)
    for child in running:
        assert child.proc is not None
        try:
            await asyncio.wait_for(child.proc.wait(), grace_s)
        except TimeoutError:
            log.warning("%s did not stop in %.0f s: killing it", child.name, grace_s)
            child.proc.kill()
            await child.proc.wait()
