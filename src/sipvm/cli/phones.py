"""``sipvm phones export|list``: the configuration files of the provisioned desk phones.

``export DIR`` writes every phone's files (the names its vendor asks for) from the directory in
force, the same bytes the HTTP server serves at ``/provisioning/<name>``; files of phones no
longer in the directory are left as they are (the command says which names it wrote).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path
from typing import Any

from sipvm.app import App
from sipvm.cli.common import with_app
from sipvm.cli.output import print_json, print_table
from sipvm.config import Settings, load_settings
from sipvm.domain.phones import file_names, phone_keys
from sipvm.fsutil import replace_file
from sipvm.provisioning.phones import phone_files


def add_phones_parser(
    sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser
) -> None:
    """Register ``phones export`` and ``phones list`` on ``sub``."""
    phones = sub.add_parser("phones", help="configuration files of provisioned desk phones")
    psub = phones.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = psub.add_parser("export", parents=[common], help="write every phone's files into DIR")
    p.add_argument("out", type=Path, metavar="DIR")
    p.add_argument(
        "--config", type=Path, help="settings file ([provisioning], [sip] pilot) as for serve"
    )
    p.set_defaults(handler=_export)
    p = psub.add_parser("list", parents=[common, listing], help="provisioned phones and keys")
    p.add_argument("--config", type=Path, help="settings file as for serve")
    p.set_defaults(handler=_list)


def _settings(args: argparse.Namespace) -> Settings:
    """The settings file's (``[provisioning]``, ``[sip] pilot``) over the store in ``--data``."""
    return replace(load_settings(args.config), data=args.data)


async def _export(args: argparse.Namespace) -> int:
    renderer = phone_files(_settings(args))

    async def body(app: App) -> int:
        files = renderer.render_all(app.directory.current)
        args.out.mkdir(parents=True, exist_ok=True)
        for f in files:
            replace_file(args.out / f.name, f.content)
            print(f"{args.out / f.name}  {f.phone.model.value}, {f.phone.phone.uri}")
        print(f"{len(files)} files for {len({f.phone.mac for f in files})} phones")
        return 0

    return await with_app(args, body)


async def _list(args: argparse.Namespace) -> int:
    renderer = phone_files(_settings(args))

    async def body(app: App) -> int:
        directory = app.directory.current
        rows: list[dict[str, Any]] = []
        for phone in renderer.phones(directory):
            keys = phone_keys(directory, phone.owner.ext, renderer.voicemail_number)
            rows.append(
                {
                    "mac": phone.mac,
                    "model": phone.model.value,
                    "owner": phone.owner.ext,
                    "uri": phone.phone.uri,
                    "label": phone.phone.label,
                    "files": list(file_names(phone)),
                    "keys": [{"ext": k.ext, "name": k.name, "dial": k.dial} for k in keys],
                }
            )
        if args.json:
            print_json(rows)
        else:
            print_table(
                ["MAC", "MODEL", "OWNER", "FILE", "KEYS"],
                [
                    [r["mac"], r["model"], r["owner"], r["files"][0], _keys_text(r["keys"])]
                    for r in rows
                ],
            )
        return 0

    return await with_app(args, body)


def _keys_text(keys: list[dict[str, Any]]) -> str:
    return ", ".join(k["dial"] for k in keys) or "-"
