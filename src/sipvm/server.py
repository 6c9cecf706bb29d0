"""The running server, composed in one place: what ``sipvm serve`` builds in each process.

One ``Settings`` and the process's ``Role`` decide everything:

- **single server** (``workers = 1``): the store and its services (``App``, with the lockout
  policy of the settings), prepared (directory applied, recordings recovered, expired deletions
  purged); the SIP worker (prompts, call router, pjsua2 engine); the notifier (lamps through the
  SIP worker, email when ``[smtp] host`` is set); the directory follower and housekeeping;
  with ``[http] port`` set, the portal and HTTP API (fed live by the notifier).
- **pool supervisor** (``workers > 1``): checks the front's setup, prepares the store, then
  supervises the Kamailio front and the workers (``sipvm.pool``). With ``[http] port`` set it
  also serves the portal (once for the whole pool, from its own services over the same store:
  it follows the directory revisions and the audit log for the pages' live updates); without,
  it closes the store.
- **pool worker K**: a single server on its own ports and spool that trusts the front's address
  and only recovers its own spool (the supervisor prepared the store); worker 1 alone notifies,
  so each event is notified once.

Settings reach each part through its constructor: nothing is adjusted after it is built.
pjsua2 is loaded only by ``start_sip`` (through ``sipvm.sip``), so no other command loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from sipvm.app import App, embedded_directory, utc_now
from sipvm.config import Settings
from sipvm.domain.lockout import LockoutPolicy
from sipvm.domain.sip_uri import uri_host_port
from sipvm.errors import SipvmError
from sipvm.logs import name_worker
from sipvm.storage.db import retry_when_locked

if TYPE_CHECKING:
    from sipvm.flows.ports import Greetings
    from sipvm.notify.mwi import LampSender, MwiNotifier
    from sipvm.sip.worker import SipWorker
    from sipvm.web.events import EventHub
    from sipvm.web.http_server import HttpServer

log = logging.getLogger(__name__)

#: How often the server purges expired deletions.
HOUSEKEEPING_S = 3600.0
#: How long the start waits for the first round of spoken names (a small directory's take well
#: under a second, so its first calls hear them; a large one's go on in the background).
SPOKEN_NAMES_START_S = 5.0


@dataclass(frozen=True)
class Role:
    """The part of ``sipvm serve`` one process plays."""

    worker: int = 0
    """0: the single server (or, with ``workers > 1``, the pool's supervisor); K: pool worker K."""
    front: str | None = None
    """The pool front's address: the calls it relays are taken like a trusted peer's."""

    @property
    def in_pool(self) -> bool:
        """Whether this process is a worker started by the pool's supervisor."""
        return self.worker > 0

    @property
    def notifies(self) -> bool:
        """Whether this process runs the notifier (in a pool, worker 1 does for everyone)."""
        return self.worker <= 1

    @property
    def spool(self) -> str:
        """The name of this process's spool of recordings in progress ("" outside a pool)."""
        return f"w{self.worker}" if self.worker else ""


async def serve(
    settings: Settings, stop: asyncio.Event, *, role: Role = Role(), config: Path | None = None
) -> int:
    """Run the server as ``role`` until ``stop`` is set; returns the exit code.

    ``config`` is the settings file the pool's workers are started with.
    """
    if settings.workers > 1 and not role.in_pool:
        return await supervise(settings, stop, config=config)
    return await run_server(settings, stop, role=role)


async def supervise(settings: Settings, stop: asyncio.Event, *, config: Path | None) -> int:
    """The pool's supervisor: prepare the store once, then run the front and the workers."""
    from sipvm.pool import front_config, run_pool
    from sipvm.prompts.serving import warm

    front = front_config(settings)  # refuse a bad setup before touching the store
    app = await open_app(settings)
    try:
        await prepare(app, settings)
        # Every worker then reads one warm cache instead of converting every sound itself.
        await warm(settings.data, app.directory.current, names=settings.menu.spoken_names)
        if not settings.http.port:
            await app.close()
            return await run_pool(settings, front, config, stop)
        from sipvm.web.events import AuditFollower, EventHub

        # The notifier runs in worker 1: the portal's live updates follow the audit log here.
        hub = EventHub(app.directory)
        follower = AuditFollower(app.notify_repo, hub)
        await follower.start()
        web = await start_web(app, settings, hub)
        background = [
            asyncio.create_task(follower.run()),
            asyncio.create_task(app.directory.follow()),
            asyncio.create_task(_housekeeping(app, purge_messages=False)),
        ]
        try:
            return await run_pool(settings, front, config, stop)
        finally:
            await _stop_web(hub, web)
            await _cancel(background)
    finally:
        await app.close()


async def run_server(settings: Settings, stop: asyncio.Event, *, role: Role = Role()) -> int:
    """One serving process (the single server or a pool worker), until ``stop`` is set.

    A pool worker tells its supervisor when it serves (``sipvm.pool.report_ready``). One that
    fails, at start or later, logs one line and exits at once with a non-zero code, so that
    the supervisor starts it again: threads a failed start leaves behind (pjsua2's, the
    store's) cannot keep it alive without serving.
    """
    if not role.in_pool:
        return await _run_server(settings, stop, role, lambda: None)
    from sipvm.pool import idle_worker_kit, report_ready

    name_worker(role.worker)  # its log lines carry the worker's name
    serving = False

    def on_ready() -> None:
        nonlocal serving
        serving = True
        report_ready()

    try:
        return await _run_server(settings, stop, role, on_ready, idle=idle_worker_kit())
    except Exception as exc:
        _exit_failed_worker(exc, started=serving)


async def _run_server(
    settings: Settings,
    stop: asyncio.Event,
    role: Role,
    on_ready: Callable[[], None],
    *,
    idle: Path | None = None,
) -> int:
    if role.in_pool:
        app = await retry_when_locked(lambda: open_app(settings, role), what="opening the store")
    else:
        app = await open_app(settings, role)
    hub: EventHub | None = None
    web: HttpServer | None = None
    try:
        if role.in_pool:
            # The supervisor prepared the store; this worker's own spool may hold recordings.
            await retry_when_locked(lambda: recover(app), what="recovery at start")
        else:
            await prepare(app, settings)
        if idle is not None:
            await _serve_idle(app, settings, stop, role, idle, on_ready)
            return 0
        if settings.http.port and not role.in_pool:
            from sipvm.web.events import EventHub

            # Before SIP: an HTTP port in use stops the start with nothing else running yet.
            hub = EventHub(app.directory)
            web = await start_web(app, settings, hub)
        worker, sip_tasks = await start_sip(app, settings, front=role.front)
        log.info(
            "sipvm ready: data %s, %d extensions, SIP on %s:%d",
            settings.data,
            len(app.directory.current.extensions),
            settings.sip.bind,
            settings.sip.port,
        )
        on_ready()
        background = [
            *sip_tasks,
            asyncio.create_task(_housekeeping(app)),
            asyncio.create_task(app.directory.follow()),
        ]
        if role.notifies:
            background += await start_notify(app, settings, worker, hub=hub)
        await stop.wait()
        log.info("stopping: new calls get 503; %d calls in progress", worker.calls)
        await _stop_web(hub, web)
        web = None
        # Notifications stop first: the next start resends every lamp and queues any email
        # for messages left meanwhile (the notifier's cursors are stored).
        await _cancel(background)
        await worker.stop(grace_s=settings.sip.drain_s)
    finally:
        await _stop_web(hub, web)
        await app.close()
    log.info("stopped")
    return 0


async def _serve_idle(
    app: App,
    settings: Settings,
    stop: asyncio.Event,
    role: Role,
    kit: Path,
    on_ready: Callable[[], None],
) -> None:
    """The pool's tests' cheap worker (``sipvm.pool.IDLE_WORKERS_ENV``): the store opened as a
    worker opens it, then ready without SIP until ``stop``; a file ``fail-K`` in ``kit`` makes
    worker K fail at start instead."""
    if (kit / f"fail-{role.worker}").exists():
        raise RuntimeError(f"start failure injected by {kit / f'fail-{role.worker}'}")
    log.info(
        "sipvm ready: data %s, %d extensions, idle worker (no SIP) for port %d",
        settings.data,
        len(app.directory.current.extensions),
        settings.sip.port,
    )
    on_ready()
    await stop.wait()
    log.info("stopped")


def _exit_failed_worker(exc: Exception, *, started: bool) -> NoReturn:
    """Log why this pool worker failed, in one line, and end the process at once."""
    code = exc.exit_code if isinstance(exc, SipvmError) else 1
    what = "failed" if started else "failed to start"
    if isinstance(exc, SipvmError):
        log.error("%s: %s; exiting with %d", what, exc, code)
    else:
        log.error("%s: %s: %s; exiting with %d", what, type(exc).__name__, exc, code, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(code)


async def open_app(settings: Settings, role: Role = Role()) -> App:
    """The store in ``settings.data`` and its services, as the server runs them."""
    # Built first: a bad threshold stops the start before the store opens.
    lockout = LockoutPolicy(per_peer=settings.sip.peer_login_failures)
    return await App.open(
        settings.data,
        worker=role.spool,
        lockout=lockout,
        migrate=not role.in_pool,  # the supervisor migrated before starting the workers
        session_idle=timedelta(seconds=settings.http.session_idle_s),
    )


async def start_web(app: App, settings: Settings, hub: EventHub) -> HttpServer:
    """Serve the portal and the HTTP API on ``[http] bind`` and ``port``."""
    from sipvm.web import create_web_app
    from sipvm.web.http_server import start_http

    web = await start_http(
        create_web_app(app, settings, hub),
        settings.http.bind,
        settings.http.port,
        proxies=settings.http.proxies,
    )
    log.info("portal: %s", web.url)
    return web


async def start_sip(
    app: App, settings: Settings, *, front: str | None = None
) -> tuple[SipWorker, list[asyncio.Task[None]]]:
    """Load the prompts (a missing sound stops the start) and start the SIP worker; also
    returns its background tasks (the spoken names), for the caller to cancel at the end."""
    # Imported here so that the other commands never load pjsua2.
    from sipvm.domain.load import LagTracker
    from sipvm.flows.router import CallRouter, RouterSettings
    from sipvm.prompts.serving import follow_names, load_prepared, spoken_names
    from sipvm.services.spoken_names import SpokenNameGreetings
    from sipvm.sip.engine import EngineConfig
    from sipvm.sip.worker import SipWorker

    prompts = await load_prepared(settings.data, app.directory.current.defaults.language)
    greetings: Greetings = app.greetings
    tasks: list[asyncio.Task[None]] = []
    first_names = asyncio.Event()
    if settings.menu.spoken_names:
        names = spoken_names(settings.data)
        greetings = SpokenNameGreetings(app.greetings, names, app.directory)
        if names.available:
            tasks.append(asyncio.create_task(follow_names(names, app.directory, first_names)))
        else:
            log.warning(
                "espeak-ng is not installed: inboxes without a recorded name are announced by "
                "their extension (apt-get install espeak-ng)"
            )
    router = CallRouter(
        RouterSettings(
            trusted_peers=frozenset(settings.sip.trusted_peers),
            pilots=frozenset(settings.sip.pilot),
            proxy_host=uri_host_port(settings.sip.proxy),
            front=frozenset({front}) if front else frozenset(),
        ),
        directory=app.directory,
        prompts=prompts,
        greetings=greetings,
        sink=app.deposits,
        clock=utc_now,
        menu=app.menu_services(
            prompts, utc_now, envelope=settings.menu.envelope, greetings=greetings
        ),
        routing=app.routing,
    )
    engine = EngineConfig(
        bind=settings.sip.bind,
        port=settings.sip.port,
        rtp_port=settings.sip.rtp_port,
        proxy=settings.sip.proxy,
        no_media_s=settings.sip.no_media_s,
    )
    lag = None
    if settings.sip.behind_lag_ms > 0:
        on_s = settings.sip.behind_lag_ms / 1000
        lag = LagTracker(on_s=on_s, off_s=on_s / 4)
    worker = SipWorker(engine, router, lag=lag)
    try:
        await worker.start()
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_names.wait(), SPOKEN_NAMES_START_S)
    except BaseException:
        await _cancel(tasks)
        raise
    return worker, tasks


async def start_notify(
    app: App, settings: Settings, lamps: LampSender, *, hub: EventHub | None = None
) -> list[asyncio.Task[None]]:
    """Start the notifier (lamps through ``lamps``, email when ``[smtp] host`` is set, the
    portal's live updates through ``hub``)."""
    from sipvm.domain.mwi import reachable_without_proxy
    from sipvm.notify.mwi import MwiNotifier
    from sipvm.notify.notifier import Notifier

    tasks: list[asyncio.Task[None]] = []
    mwi = None
    if settings.mwi.enabled:
        mwi = MwiNotifier(
            lamps,
            app.message_repo,
            coalesce_s=settings.mwi.coalesce_s,
            reachable=(lambda phone: True) if settings.sip.proxy else reachable_without_proxy,
        )
        tasks.append(asyncio.create_task(mwi.run()))
        if settings.mwi.refresh_s > 0:
            tasks.append(asyncio.create_task(_refresh_lamps(mwi, settings.mwi.refresh_s)))
    mailer = None
    if settings.smtp.host:
        from sipvm.notify.email import EmailTemplates, SmtpSender
        from sipvm.notify.mailer import Mailer

        mailer = Mailer(
            settings=settings.smtp,
            repo=app.notify_repo,
            messages=app.message_repo,
            files=app.files,
            directory=app.directory,
            templates=EmailTemplates.load(settings.data / "templates"),
            transport=SmtpSender(settings.smtp),
            clock=utc_now,
        )
        tasks.append(asyncio.create_task(mailer.run()))
    notifier = Notifier(
        directory=app.directory,
        repo=app.notify_repo,
        mwi=mwi,
        email=mailer is not None,
        clock=utc_now,
        on_queued=mailer.wake if mailer is not None else lambda: None,
        on_audit=hub.publish if hub is not None else lambda events: None,
    )
    await notifier.start()
    tasks.append(asyncio.create_task(notifier.run()))
    log.info(
        "notifications: lamps %s, email %s",
        "on" if mwi is not None else "off",
        f"via {settings.smtp.host}:{settings.smtp.port}" if mailer is not None else "off",
    )
    return tasks


async def _refresh_lamps(mwi: MwiNotifier, every_s: float) -> None:
    while True:
        await asyncio.sleep(every_s)
        mwi.refresh_all()


async def prepare(app: App, settings: Settings) -> None:
    """Apply the directory, recover interrupted recordings, purge expired deletions."""
    if settings.directory is not None:
        applied = await app.directory.apply_file(settings.directory)
        log.info(
            "directory %s: revision %d%s",
            settings.directory,
            applied.rev,
            "" if applied.changed else " (unchanged)",
        )
    elif app.directory.rev == 0:
        path = embedded_directory()
        await app.directory.apply_file(path)
        log.info("no directory applied yet: using the embedded example %s", path.name)
    await recover(app)
    await app.deposits.purge()


async def recover(app: App) -> None:
    """Clear unfinished scratch recordings; adopt or quarantine interrupted messages."""
    leftovers = app.files.clear_scratch()
    if leftovers:
        log.info("removed %d unfinished greeting or comment recordings", leftovers)
    report = await app.deposits.recover()
    if report.adopted or report.quarantined:
        log.warning(
            "recovery: %d recordings adopted, %d quarantined",
            len(report.adopted),
            len(report.quarantined),
        )


async def _housekeeping(app: App, *, purge_messages: bool = True) -> None:
    while True:
        await asyncio.sleep(HOUSEKEEPING_S)
        try:
            if purge_messages:
                await app.deposits.purge()
            await app.sessions.purge_idle()
        except Exception:  # keep serving calls; the next round tries again
            log.exception("housekeeping failed")


async def _stop_web(hub: EventHub | None, web: HttpServer | None) -> None:
    """Stop the portal (if it runs): open pages' event streams end at once, other requests
    get the grace time."""
    if hub is not None:
        hub.close()
    if web is not None:
        await web.stop()


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
