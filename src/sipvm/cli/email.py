"""``sipvm email queue|retry``: the notification emails waiting to go out, and a retry of the
ones that were given up."""

from __future__ import annotations

import argparse
from typing import Any

from sipvm.app import App, utc_now
from sipvm.cli.common import with_app
from sipvm.cli.output import print_json, print_table
from sipvm.storage.notify import QueuedEmail


def add_email_parser(
    sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser
) -> None:
    """Register ``email queue`` and ``email retry`` on ``sub``."""
    email = sub.add_parser("email", help="notification emails waiting or given up")
    esub = email.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = esub.add_parser(
        "queue", parents=[common, listing], help="emails not sent yet, with their last error"
    )
    p.set_defaults(handler=_queue)
    p = esub.add_parser(
        "retry", parents=[common], help="send the given-up emails again (the server does it)"
    )
    p.set_defaults(handler=_retry)


async def _queue(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        outbox = await app.notify_repo.outbox()
        emails = outbox.pending + outbox.failed
        if args.json:
            print_json([_email_json(e) for e in emails])
        else:
            print_table(
                ["ID", "STATUS", "KIND", "TO", "MESSAGE", "ATTEMPTS", "NEXT TRY (UTC)", "ERROR"],
                [
                    [
                        e.id,
                        e.status,
                        e.kind,
                        e.recipient,
                        e.message_id or "",
                        e.attempts,
                        e.next_at.strftime("%Y-%m-%d %H:%M:%S") if e.status == "pending" else "",
                        e.last_error,
                    ]
                    for e in emails
                ],
            )
        return 0

    return await with_app(args, body)


async def _retry(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        count = await app.notify_repo.retry_failed(utc_now())
        print(f"{count} given-up emails queued again; the running server sends them")
        return 0

    return await with_app(args, body)


def _email_json(e: QueuedEmail) -> dict[str, Any]:
    return {
        "id": e.id,
        "status": e.status,
        "kind": e.kind,
        "recipient": e.recipient,
        "address": e.address,
        "message_id": e.message_id,
        "inbox": e.inbox,
        "created_at": e.created_at.isoformat(),
        "attempts": e.attempts,
        "next_at": e.next_at.isoformat(),
        "last_error": e.last_error,
    }
