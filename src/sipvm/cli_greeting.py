"""`sipvm greeting upload|list|remove` (CONTRACT.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sipvm.app import App
from sipvm.services.greetings import KINDS


def add_greeting_parser(
    sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser
) -> None:
    """Register the greeting commands."""
    greeting = sub.add_parser("greeting", help="upload, list or remove greetings")
    gsub = greeting.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = gsub.add_parser(
        "upload",
        parents=[common],
        help="convert an audio file (WAV, MP3, OGG, M4A, FLAC) into a greeting",
    )
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_upload)
    p = gsub.add_parser("list", parents=[common, listing], help="greetings of an inbox")
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.set_defaults(handler=_list)
    p = gsub.add_parser("remove", parents=[common], help="remove a greeting")
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.set_defaults(handler=_remove)


async def _upload(args: argparse.Namespace) -> int:
    app = await App.open(args.data)
    try:
        g = await app.greetings.upload(args.inbox, args.kind, args.file)
    finally:
        await app.close()
    print(f"inbox {g.inbox}: {g.kind} greeting stored ({g.duration_s:.1f} s)")
    return 0


async def _list(args: argparse.Namespace) -> int:
    app = await App.open(args.data)
    try:
        found = await app.greetings.list(args.inbox)
    finally:
        await app.close()
    rows = [
        {
            "inbox": g.inbox,
            "kind": g.kind,
            "duration_s": g.duration_s,
            "uploaded_at": g.uploaded_at.isoformat().replace("+00:00", "Z"),
        }
        for g in found
    ]
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        for r in rows:
            print(f"{r['kind']:<12} {r['duration_s']:6.1f} s  {r['uploaded_at']}")
    return 0


async def _remove(args: argparse.Namespace) -> int:
    app = await App.open(args.data)
    try:
        await app.greetings.remove(args.inbox, args.kind)
    finally:
        await app.close()
    print(f"inbox {args.inbox}: {args.kind} greeting removed")
    return 0
