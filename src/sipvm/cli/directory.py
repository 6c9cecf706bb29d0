"""``sipvm directory apply|export`` (CONTRACT.md): the directory file in and out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sipvm.app import App
from sipvm.cli.common import with_app
from sipvm.provisioning.directory_file import dump_directory


def add_directory_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Register ``directory apply`` and ``directory export`` on ``sub``."""
    directory = sub.add_parser("directory", help="apply or export the directory file")
    dsub = directory.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("apply", parents=[common], help="validate a directory file and apply it")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_apply)
    p = dsub.add_parser("export", parents=[common], help="write the directory in force as TOML")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    p.set_defaults(handler=_export)


async def _apply(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        applied = await app.directory.apply_file(args.file)
        exts = len(app.directory.current.extensions)
        if applied.changed:
            print(f"applied {args.file}: {exts} extensions (revision {applied.rev})")
        else:
            print(f"{args.file} matches the directory in force (revision {applied.rev}); no change")
        return 0

    return await with_app(args, body)


async def _export(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        text = dump_directory(app.directory.current)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0

    return await with_app(args, body)
