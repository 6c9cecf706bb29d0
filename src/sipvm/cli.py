"""The ``sipvm`` command (CONTRACT.md): argument parsing, output, exit codes.

Each command opens the store in ``--data``, runs one use case and prints the result: a table for
people, or with ``--json`` one JSON value and nothing else. Errors are one clear line each on
stderr, with the exit code of the error's class (0 ok, 2 invalid, 3 not permitted, 4 not found).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from sipvm.app import App
from sipvm.errors import SipvmError
from sipvm.logs import setup_logging
from sipvm.provisioning.directory_file import dump_directory
from sipvm.services.messages import InboxSummary
from sipvm.storage.messages import ActionResult, Message, Outcome

log = logging.getLogger("sipvm")

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sipvm`` console script; returns the exit code."""
    # Voicemail is private: every file sipvm creates (store, recordings, greetings, exports,
    # the pool's generated configs) is readable by its owner only.
    os.umask(0o077)
    parser = build_parser()
    args = parser.parse_args(argv)
    # One line per record, control characters escaped: log text carries callers' data.
    setup_logging(logging.INFO if args.command == "serve" else logging.WARNING, sys.stderr)
    handler: Handler = args.handler
    try:
        code: int = asyncio.run(handler(args))
    except SipvmError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"sipvm: {line.strip()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: not an error of ours.
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    return code


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one subparser per command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data", type=Path, default=Path("./data"), help="data directory (default ./data)"
    )
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("--json", action="store_true", help="print JSON only")

    parser = argparse.ArgumentParser(prog="sipvm", description="SIP voicemail with shared inboxes")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from sipvm.serve import add_serve_parser  # serve pulls in the server parts only when used

    add_serve_parser(sub, common)

    directory = sub.add_parser("directory", help="apply or export the directory file")
    dsub = directory.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("apply", parents=[common], help="validate a directory file and apply it")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_directory_apply)
    p = dsub.add_parser("export", parents=[common], help="write the directory in force as TOML")
    p.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    p.set_defaults(handler=_directory_export)

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

    from sipvm.cli_email import add_email_parser
    from sipvm.cli_greeting import add_greeting_parser
    from sipvm.cli_hours import add_hours_parser

    add_greeting_parser(sub, common, listing)
    add_hours_parser(sub, common, listing)
    add_email_parser(sub, common, listing)
    return parser


# -- handlers -------------------------------------------------------------------------------


async def _with_app(args: argparse.Namespace, body: Callable[[App], Awaitable[int]]) -> int:
    app = await App.open(args.data)
    try:
        return await body(app)
    finally:
        await app.close()


async def _directory_apply(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        applied = await app.directory.apply_file(args.file)
        exts = len(app.directory.current.extensions)
        if applied.changed:
            print(f"applied {args.file}: {exts} extensions (revision {applied.rev})")
        else:
            print(f"{args.file} matches the directory in force (revision {applied.rev}); no change")
        return 0

    return await _with_app(args, body)


async def _directory_export(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        text = dump_directory(app.directory.current)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0

    return await _with_app(args, body)


async def _inboxes(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        found = await app.messages.inboxes(args.member)
        if args.json:
            _print_json([_inbox_json(i) for i in found])
        else:
            _print_table(
                ["EXT", "KIND", "NAME", "RIGHTS", "NEW", "OLD"],
                [
                    [i.ext, i.kind.value, i.name, ",".join(r.value for r in i.rights), i.new, i.old]
                    for i in found
                ],
            )
        return 0

    return await _with_app(args, body)


async def _messages(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        found = await app.messages.messages(args.inbox, as_member=args.as_member, limit=args.limit)
        if args.json:
            _print_json([_message_json(m) for m in found])
        else:
            _print_table(
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

    return await _with_app(args, body)


async def _message_export(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        out = await app.messages.export(
            args.id, as_member=args.as_member, fmt=args.format, dst=args.output
        )
        print(f"wrote message {args.id} to {out}")
        return 0

    return await _with_app(args, body)


_ACTION_WORDS = {
    "delete": ("deleted", "was already deleted"),
    "restore": ("restored", "is not deleted"),
    "mark-played": ("marked played", "was already played"),
    "mark-new": ("marked new", "is already new"),
}


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
        done, already = _ACTION_WORDS[args.action]
        if result.outcome is Outcome.DONE:
            print(f"message {args.id} {done}")
        else:
            # The state asked for already holds: not an error, but say who got there first.
            print(f"message {args.id} {already}{_by_whom(result)}; nothing changed")
        return 0

    return await _with_app(args, body)


async def _message_share(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        copy = await app.messages.share(args.id, as_member=args.as_member, to=args.to)
        print(f"message {args.id} shared to inbox {args.to} as message {copy.id}")
        return 0

    return await _with_app(args, body)


# -- output ---------------------------------------------------------------------------------


def _by_whom(result: ActionResult) -> str:
    m = result.message
    if m is None:
        return ""
    if m.deleted and m.deleted_by:
        return f" (deleted by {m.deleted_by} at {m.deleted_at:%Y-%m-%d %H:%M:%S} UTC)"
    if m.played and m.played_by:
        return f" (played by {m.played_by} at {m.played_at:%Y-%m-%d %H:%M:%S} UTC)"
    return ""


def _inbox_json(i: InboxSummary) -> dict[str, Any]:
    return {
        "ext": i.ext,
        "kind": i.kind.value,
        "name": i.name,
        "rights": [r.value for r in i.rights],
        "new": i.new,
        "old": i.old,
        "urgent_new": i.urgent_new,
        "urgent_old": i.urgent_old,
        "own": i.own,
    }


def _message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "inbox": m.inbox,
        "caller": m.caller,
        "caller_name": m.caller_name,
        "called": m.called,
        "reason": m.reason,
        "received_at": m.received_at.isoformat().replace("+00:00", "Z"),
        "duration_s": m.duration_s,
        "urgent": m.urgent,
        "played": m.played,
        "played_by": m.played_by,
        "played_at": m.played_at.isoformat().replace("+00:00", "Z") if m.played_at else None,
        "source_id": m.source_id,
        "shared_by": m.shared_by,
    }


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [header, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    raise SystemExit(main())
