"""``sipvm serve --workers N``: N media workers behind a Kamailio front, under a supervisor.

The PyPI pjsua2 build takes 4 calls per process, so capacity comes from processes:
- the supervisor (``sipvm.server.supervise``) prepares the store (migrations, directory,
  purge), then ``run_pool`` writes the front's configuration (``sipvm.front.kamailio``) to
  ``DATA/front/``, starts Kamailio on the public SIP port, then N workers, each
  ``sipvm serve --worker-index K`` (``sipvm.server.run_server``) on the same address with its
  own SIP port (``port + K``) and RTP range, its own spool (``spool/wK``);
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


@dataclass
class Child:
    """A supervised process: how to start it, and its state."""

    name: str
    argv: list[str]
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    delay: float = RESTART_FIRST_S
    restarts: int = 0
    due: float = field(default=0.0)

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL
        )
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)


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
    children += [
        Child(f"worker {k}", worker_argv(settings, config, k))
        for k in range(1, settings.workers + 1)
    ]
    for child in children:
        await child.start()
    log.info(
        "sipvm pool ready: front on %s:%d, %d workers (%d calls)",
        settings.sip.bind,
        settings.sip.port,
        settings.workers,
        4 * settings.workers,
    )
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)
        await _restart_dead(children)
    await _stop_all(children[1:], grace_s=settings.sip.drain_s + 45)
    await _stop_all(children[:1], grace_s=5)
    log.info("pool stopped")
    return 0


async def _restart_dead(children: list[Child]) -> None:
    now = time.monotonic()
    for child in children:
        proc = child.proc
        if proc is None or proc.returncode is None:
            if proc is not None and now - child.started > STABLE_S:
                child.delay = RESTART_FIRST_S
            continue
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
