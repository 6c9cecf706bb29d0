"""``sipvm hours show|set``: where a queue's, auto receptionist's or group's schedule stands,
and overrides (force open / force closed / back to the schedule)."""

from __future__ import annotations

import argparse
from typing import Any
from zoneinfo import ZoneInfo

from sipvm.app import App
from sipvm.cli.common import with_app
from sipvm.cli.output import print_json
from sipvm.domain.routing import Override, action_name
from sipvm.services.routing import Now
from sipvm.views import hours_json


def add_hours_parser(
    sub: Any, common: argparse.ArgumentParser, listing: argparse.ArgumentParser
) -> None:
    """Register ``hours show`` and ``hours set`` on ``sub``."""
    hours = sub.add_parser("hours", help="business hours in force, and overrides")
    hsub = hours.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = hsub.add_parser(
        "show", parents=[common, listing], help="the period, route and override of an entry"
    )
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.set_defaults(handler=_show)
    p = hsub.add_parser(
        "set",
        parents=[common],
        help="force open or closed, or back to the schedule (auto)",
        description=(
            "open: business-hours routing until set back; closed: closed-hours routing; "
            "auto: follow the hours and holidays of the directory file again."
        ),
    )
    p.add_argument("--inbox", required=True, metavar="EXT")
    p.add_argument("mode", choices=[m.value for m in Override])
    p.set_defaults(handler=_set)


async def _show(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        now = await app.routing.now(args.inbox, until=True)
        if args.json:
            print_json(hours_json(now))
        else:
            print(_describe(now))
        return 0

    return await with_app(args, body)


async def _set(args: argparse.Namespace) -> int:
    async def body(app: App) -> int:
        now = await app.routing.set_override(args.inbox, Override(args.mode))
        print(_describe(now))
        return 0

    return await with_app(args, body)


def _describe(now: Now) -> str:
    why = {
        Override.OPEN: " (forced open)",
        Override.CLOSED: " (forced closed)",
        Override.AUTO: f" ({now.holiday.name})" if now.holiday else "",
    }[now.override]
    until = ""
    if now.until is not None:
        local = now.until.astimezone(ZoneInfo(now.zone))
        until = f" until {local.strftime('%a %Y-%m-%d %H:%M')} ({now.zone})"
    return f"{now.ext}: {now.period.value}{why}{until}; route: {_route_text(now)}"


def _route_text(now: Now) -> str:
    route = now.route
    fields = ", ".join(f"{k}={v}" for k, v in vars(route).items())
    return action_name(route) + (f" ({fields})" if fields else "")
