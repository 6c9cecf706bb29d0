"""``sipvm serve`` (CONTRACT.md): its flags laid over the settings file, and the run until
SIGTERM/SIGINT. What runs is composed by ``sipvm.server``."""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

from sipvm.config import Settings, load_settings
from sipvm.domain.peers import TrustedPeers
from sipvm.server import Role, serve


def add_serve_parser(sub: Any) -> None:
    """Register ``serve`` and its flags (they override the settings file)."""
    p = sub.add_parser("serve", help="run the voicemail server until SIGTERM")
    p.add_argument("--config", type=Path, help="settings file (TOML)")
    p.add_argument("--data", type=Path, help="data directory (default ./data)")
    p.add_argument("--directory", type=Path, help="directory file to apply at start")
    p.add_argument("--bind", help="address for SIP and RTP (default 0.0.0.0)")
    p.add_argument("--sip-port", type=int, help="SIP port (default 5060)")
    p.add_argument("--workers", type=int, help="media worker processes (default 1)")
    p.add_argument(
        "--http-port", type=int, help="port of the web portal and HTTP API (default 0: off)"
    )
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
    """Run the server until SIGTERM or SIGINT; returns the exit code."""
    settings = settings_from_args(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    role = Role(worker=args.worker_index, front=args.front)
    return await serve(settings, stop, role=role, config=args.config)
