"""``sipvm token create|revoke|list``: API bearer tokens of members (``Authorization: Bearer``).

A token is printed once, when it is created; the store keeps only its hash. Revoking is for
good: by member (every working token of the extension) or by the token's id.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sipvm.app import App
from sipvm.cli.common import with_app
from sipvm.cli.output import print_json, print_table
from sipvm.storage.web_auth import ApiToken
from sipvm.views import utc_text


def add_token_parser(
    sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser
) -> None:
    """Register ``token create``, ``token revoke`` and ``token list`` on ``sub``."""
    token = sub.add_parser("token", help="API bearer tokens of members")
    tsub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = tsub.add_parser(
        "create", parents=[common], help="create a token for a member (printed once)"
    )
    p.add_argument("--member", required=True, metavar="EXT")
    p.set_defaults(handler=_create)

    p = tsub.add_parser("revoke", parents=[common], help="revoke a member's tokens, or one")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--member", metavar="EXT", help="every working token of this member")
    which.add_argument("--id", type=int, dest="token_id", metavar="N", help="the token N")
    p.set_defaults(handler=_revoke)

    p = tsub.add_parser("list", parents=[common, listing], help="tokens (never their secrets)")
    p.add_argument("--member", metavar="EXT", help="only this member's")
    p.set_defaults(handler=_list)


async def _create(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        token_id, token = await app.sessions.create_token(args.member)
        print(token)
        print(
            f"sipvm: token {token_id} for extension {args.member}; it is shown only now "
            f"(revoke it with `sipvm token revoke --id {token_id}`)",
            file=sys.stderr,
        )
        return 0

    return await with_app(args, body)


async def _revoke(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        ids = await app.sessions.revoke_tokens(ext=args.member, token_id=args.token_id)
        print(f"revoked token{'s' if len(ids) > 1 else ''} {', '.join(str(i) for i in ids)}")
        return 0

    return await with_app(args, body)


async def _list(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        found = await app.sessions.tokens(args.member)
        if args.json:
            print_json([_token_json(t) for t in found])
        else:
            print_table(
                ["ID", "MEMBER", "CREATED (UTC)", "REVOKED (UTC)"],
                [
                    [
                        t.id,
                        t.ext,
                        f"{t.created_at:%Y-%m-%d %H:%M:%S}",
                        f"{t.revoked_at:%Y-%m-%d %H:%M:%S}" if t.revoked_at else "",
                    ]
                    for t in found
                ],
            )
        return 0

    return await with_app(args, body)


def _token_json(t: ApiToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "member": t.ext,
        "created_at": utc_text(t.created_at),
        "revoked_at": utc_text(t.revoked_at) if t.revoked_at else None,
    }
