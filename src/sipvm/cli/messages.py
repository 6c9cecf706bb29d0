"""``sipvm inboxes``, ``sipvm messages`` and ``sipvm message ...`` (CONTRACT.md): what a member
may reach, the messages of an inbox, and the actions on one message (each one rights-checked by
the message service)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sipvm.app import App
from sipvm.cli.common import with_app
from sipvm.cli.output import print_json, print_table
from sipvm.domain.messages import ActionResult, Outcome
from sipvm.views import action_text, inbox_json, message_json


def add_messages_parsers(
    sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser
) -> None:
    """Register ``inboxes``, ``messages`` and ``message ACTION`` on ``sub``."""
    p = sub.add_parser(
        "inboxes", parents=[common, listing], help="inboxes a member may reach, with counts"
    )
    p.add_argument("--member", required=True, metavar="EXT")
    p.set_defaults(handler=_inboxes)

    p = sub.add_parser("messages", parents=[common, listing], help="messages of an inbox")
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.add_argument("--as", dest="as_member", metavar="EXT", help="apply this member's rights")
    p.add_argument("--limit", type=int, metavar="N", help="at most N messages")
    p.set_defaults(handler=_messages)

    message = sub.add_parser("message", help="act on one message")
    msub = message.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = msub.add_parser("export", parents=[common], help="write the audio (download right)")
    p.add_argument("id", type=int)
    p.add_argument("--as", dest="as_member", required=True, metavar="EXT")
    p.add_argument("--format", choices=["mp3", "wav"], default="mp3")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.set_defaults(handler=_message_export)
    for action, text in (
        ("delete", "delete for everyone with access (delete right)"),
        ("restore", "undelete a deleted message (admins)"),
        ("mark-played", "mark played for everyone (play right)"),
        ("mark-new", "mark unplayed for everyone (play right)"),
    ):
        p = msub.add_parser(action, parents=[common], help=text)
        p.add_argument("id", type=int)
        p.add_argument("--as", dest="as_member", required=True, metavar="EXT")
        p.set_defaults(handler=_message_action)
    p = msub.add_parser("share", parents=[common], help="copy to another inbox (share right)")
    p.add_argument("id", type=int)
    p.add_argument("--as", dest="as_member", required=True, metavar="EXT")
    p.add_argument("--to", required=True, metavar="EXT")
    p.set_defaults(handler=_message_share)


async def _inboxes(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        found = await app.messages.inboxes(args.member)
        if args.json:
            print_json([inbox_json(i) for i in found])
        else:
            print_table(
                ["EXT", "KIND", "NAME", "RIGHTS", "NEW", "OLD"],
                [
                    [i.ext, i.kind.value, i.name, ",".join(r.value for r in i.rights), i.new, i.old]
                    for i in found
                ],
            )
        return 0

    return await with_app(args, body)


async def _messages(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        found = await app.messages.messages(args.inbox, as_member=args.as_member, limit=args.limit)
        if args.json:
            print_json([message_json(m) for m in found])
        else:
            print_table(
                ["ID", "RECEIVED (UTC)", "CALLER", "NAME", "SECONDS", "URGENT", "PLAYED BY"],
                [
                    [
                        m.id,
                        m.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                        m.caller,
                        m.caller_name,
                        f"{m.duration_s:.1f}",
                        "yes" if m.urgent else "",
                        (m.played_by or "?") if m.played else "",
                    ]
                    for m in found
                ],
            )
        return 0

    return await with_app(args, body)


async def _message_export(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        out = await app.messages.export(
            args.id, as_member=args.as_member, fmt=args.format, dst=args.output
        )
        print(f"wrote message {args.id} to {out}")
        return 0

    return await with_app(args, body)


async def _message_action(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        service = app.messages
        run = {
            "delete": service.delete,
            "restore": service.restore,
            "mark-played": service.mark_played,
            "mark-new": service.mark_new,
        }[args.action]
        result: ActionResult = await run(args.id, as_member=args.as_member)
        if result.outcome is Outcome.DONE:
            print(action_text(args.action, args.id, result, done=True))
        else:
            # The state asked for already holds: not an error, but say who got there first.
            print(action_text(args.action, args.id, result, done=False) + "; nothing changed")
        return 0

    return await with_app(args, body)


async def _message_share(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        copy = await app.messages.share(args.id, as_member=args.as_member, to=args.to)
        print(f"message {args.id} shared to inbox {args.to} as message {copy.id}")
        return 0

    return await with_app(args, body)
