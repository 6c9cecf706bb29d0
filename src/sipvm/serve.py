"""``sipvm serve``: start everything in order, run until SIGTERM/SIGINT, stop in order."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sipvm.notify.mwi import LampSender, MwiNotifier
    from sipvm.sip.worker import SipWorker

from sipvm.app import App, embedded_directory, utc_now
from sipvm.config import Settings, load_settings
from sipvm.domain.peers import TrustedPeers
from sipvm.domain.sip_uri import uri_host_port
from sipvm.logs import name_worker

log = logging.getLogger(__name__)

#: How often the server purges expired deletions.
HOUSEKEEPING_S = 3600.0


def add_serve_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``serve`` and its flags (they override the settings file)."""
    p = sub.add_parser("serve", help="run the voicemail server until SIGTERM")
    p.add_argument("--config", type=Path, help="settings file (TOML)")
    p.add_argument("--data", type=Path, help="data directory (default ./data)")
    p.add_argument("--directory", type=Path, help="directory file to apply at start")
    p.add_argument("--bind", help="address for SIP and RTP (default 0.0.0.0)")
    p.add_argument("--sip-port", type=int, help="SIP port (default 5060)")
    p.add_argument("--workers", type=int, help="media worker processes (default 1)")
    p.add_argument("--http-port", type=int, help="HTTP API port (default 0: off)")
    p.add_argument(
        "--trusted-peer", action="append", metavar="ADDR", help="trusted PBX/proxy address"
    )
    p.add_argument("--rtp-port", type=int, help="first RTP port (default 40000)")
    # Set by the pool's supervisor on the workers it starts (sipvm.pool).
    p.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--front", help=argparse.SUPPRESS)
    p.set_defaults(handler=run_serve)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The settings file with the command-line flags laid over it."""
    s = load_settings(args.config)
    sip = s.sip
    if args.bind:
        sip = replace(sip, bind=args.bind)
    if args.sip_port is not None:
        sip = replace(sip, port=args.sip_port)
    if args.trusted_peer:
        sip = replace(sip, trusted_peers=tuple(args.trusted_peer))
    if args.rtp_port is not None:
        sip = replace(sip, rtp_port=args.rtp_port)
    http = replace(s.http, port=args.http_port) if args.http_port is not None else s.http
    TrustedPeers.parse(sip.trusted_peers)  # a bad entry stops the start before the store opens
    return replace(
        s,
        data=args.data or s.data,
        directory=args.directory or s.directory,
        workers=args.workers or s.workers,
        sip=sip,
        http=http,
    )


async def run_serve(args: argparse.Namespace) -> int:
    """Run the server until asked to stop; returns the exit code."""
    settings = settings_from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    index = args.worker_index
    if settings.workers > 1 and not index:
        from sipvm.pool import front_config, run_pool

        front_config(settings)  # refuse a bad setup before touching the store
        app = await App.open(settings.data)
        try:
            await start(app, settings)
        finally:
            await app.close()
        return await run_pool(settings, args.config, stop)
    if index:
        name_worker(index)  # its log lines carry the worker's name
    app = await App.open(settings.data, worker=f"w{index}" if index else "")
    try:
        app.logins.policy = replace(app.logins.policy, per_peer=settings.sip.peer_login_failures)
        if index:
            await recover(app)
        else:
            await start(app, settings)
        worker = await start_sip(app, settings, front=args.front)
        log.info(
            "sipvm ready: data %s, %d extensions, SIP on %s:%d",
            settings.data,
            len(app.directory.current.extensions),
            settings.sip.bind,
            settings.sip.port,
        )
        background = [
            asyncio.create_task(_housekeeping(app)),
            asyncio.create_task(app.directory.follow()),
        ]
        if index <= 1:  # in a pool, worker 1 notifies for everyone
            background += await start_notify(app, settings, worker)
        await stop.wait()
        log.info("stopping: new calls get 503; %d calls in progress", worker.calls)
        # Notifications stop first: the next start resends every lamp and queues any email
        # for messages left meanwhile (the notifier's cursors are stored).
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await worker.stop(grace_s=settings.sip.drain_s)
    finally:
        await app.close()
    log.info("stopped")
    return 0


async def start_sip(app: App, settings: Settings, *, front: str | None = None) -> SipWorker:
    """Load the prompts (a missing sound stops the start) and start the SIP worker."""
    # Imported here so that the other commands never load pjsua2.
    from sipvm.flows.router import CallRouter, RouterSettings
    from sipvm.prompts import (
        DEFAULT_SOUNDS_DIR,
        default_extra_dir,
        default_manifest,
        load_prompts,
    )
    from sipvm.sip.engine import EngineConfig
    from sipvm.sip.worker import SipWorker

    prompts = load_prompts(
        default_manifest(),
        DEFAULT_SOUNDS_DIR,
        default_extra_dir(),
        language=app.directory.current.defaults.language,
        overrides_dir=settings.data / "prompts",
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
        greetings=app.greetings,
        sink=app.deposits,
        clock=utc_now,
        menu=app.menu_services(prompts, utc_now),
        routing=app.routing,
    )
    engine = EngineConfig(
        bind=settings.sip.bind,
        port=settings.sip.port,
        rtp_port=settings.sip.rtp_port,
        proxy=settings.sip.proxy,
        no_media_s=settings.sip.no_media_s,
    )
    worker = SipWorker(engine, router)
    await worker.start()
    return worker


async def start_notify(app: App, settings: Settings, lamps: LampSender) -> list[asyncio.Task[None]]:
    """Start the notifier (lamps through ``lamps``, email when ``[smtp] host`` is set)."""
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


async def start(app: App, settings: Settings) -> None:
    """Recover interrupted recordings, apply the directory, purge expired deletions."""
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


async def _housekeeping(app: App) -> None:
    while True:
        await asyncio.sleep(HOUSEKEEPING_S)
        try:
            await app.deposits.purge()
        except Exception:  # keep serving calls; the next round tries again
            log.exception("housekeeping failed")
