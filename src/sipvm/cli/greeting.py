"""``sipvm greeting upload|list|remove`` (CONTRACT.md), registered by ``sipvm.cli.build_parser``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sipvm.app import App
from sipvm.audio.greeting import MAX_GREETING_S, MAX_UPLOAD_BYTES, UPLOAD_FORMATS
from sipvm.cli.common import with_app
from sipvm.cli.output import print_json, print_table
from sipvm.services.greetings import KINDS
from sipvm.views import greeting_json


def add_greeting_parser(
    sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser
) -> None:
    """Register ``greeting upload``, ``greeting list`` and ``greeting remove`` on ``sub``."""
    greeting = sub.add_parser("greeting", help="upload, list or remove an inbox's greetings")
    gsub = greeting.add_subparsers(dest="action", required=True, metavar="ACTION")

    p = gsub.add_parser(
        "upload",
        parents=[common],
        help=f"convert an audio file ({UPLOAD_FORMATS}) into a greeting",
        description=(
            f"Convert FILE ({UPLOAD_FORMATS}; at most {MAX_UPLOAD_BYTES // 2**20} MB) to an "
            "8 kHz mono greeting: loudness evened out, silence at both ends trimmed, at most "
            f"{MAX_GREETING_S:.0f} s once trimmed. The previous greeting of that kind stays "
            "in force until the new one is stored."
        ),
    )
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.add_argument("--kind", required=True, metavar="|".join(KINDS) + "|menu-NAME")
    p.add_argument("file", type=Path, metavar="FILE")
    p.set_defaults(handler=_upload)

    p = gsub.add_parser("list", parents=[common, listing], help="the greetings of an inbox")
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.set_defaults(handler=_list)

    p = gsub.add_parser(
        "remove", parents=[common], help="remove a greeting (the system greeting plays again)"
    )
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.add_argument("--kind", required=True, metavar="|".join(KINDS) + "|menu-NAME")
    p.set_defaults(handler=_remove)


async def _upload(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        g = await app.greetings.upload(args.inbox, args.kind, args.file)
        print(f"inbox {g.inbox}: {g.kind} greeting stored ({g.duration_s:.1f} s)")
        return 0

    return await with_app(args, body)


async def _list(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        found = await app.greetings.list(args.inbox)
        if args.json:
            print_json([greeting_json(g) for g in found])
        else:
            print_table(
                ["KIND", "SECONDS", "UPLOADED (UTC)", "BY"],
                [
                    [
                        g.kind,
                        f"{g.duration_s:.1f}",
                        g.uploaded_at.strftime("%Y-%m-%d %H:%M:%S"),
                        g.uploaded_by,
                    ]
                    for g in found
                ],
            )
        return 0

    return await with_app(args, body)


async def _remove(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        await app.greetings.remove(args.inbox, args.kind)
        print(f"inbox {args.inbox}: {args.kind} greeting removed")
        return 0

    return await with_app(args, body)
