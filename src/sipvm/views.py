"""The JSON shapes of inboxes, messages and greetings, and the words for what an action did:
one place for the CLI's ``--json`` and the HTTP API, so both always say the same."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sipvm.domain.greetings import Greeting
from sipvm.domain.messages import ActionResult, InboxSummary, Message
from sipvm.domain.routing import action_name
from sipvm.services.routing import Now


def utc_text(moment: datetime) -> str:
    """A moment as ISO 8601 UTC with a ``Z`` (how every JSON time is written)."""
    return moment.isoformat().replace("+00:00", "Z")


def inbox_json(i: InboxSummary) -> dict[str, Any]:
    """An inbox a member may reach, with its shared counts and the member's rights."""
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


def message_json(m: Message) -> dict[str, Any]:
    """A message with its shared played state (a shared copy: who shared it, and their note)."""
    return {
        "id": m.id,
        "inbox": m.inbox,
        "caller": m.caller,
        "caller_name": m.caller_name,
        "called": m.called,
        "reason": m.reason,
        "received_at": utc_text(m.received_at),
        "duration_s": m.duration_s,
        "urgent": m.urgent,
        "played": m.played,
        "played_by": m.played_by,
        "played_at": utc_text(m.played_at) if m.played_at else None,
        "source_id": m.source_id,
        "shared_by": m.shared_by,
        "note": m.note,
    }


def greeting_json(g: Greeting) -> dict[str, Any]:
    """A greeting in force."""
    return {
        "inbox": g.inbox,
        "kind": g.kind,
        "duration_s": g.duration_s,
        "uploaded_at": utc_text(g.uploaded_at),
    }


def hours_json(now: Now) -> dict[str, Any]:
    """Where a queue's, AR's or group's schedule stands: period, override, route, until when."""
    return {
        "ext": now.ext,
        "period": now.period.value,
        "holiday": now.holiday.name if now.holiday else None,
        "override": now.override.value,
        "route": {"action": action_name(now.route), **vars(now.route)},
        "until": utc_text(now.until) if now.until else None,
        "timezone": now.zone,
    }


ACTION_WORDS: Final = {
    "delete": ("deleted", "was already deleted"),
    "restore": ("restored", "is not deleted"),
    "mark-played": ("marked played", "was already played"),
    "mark-new": ("marked new", "is already new"),
}
"""For each action on a message: what it did, and what already held when it did nothing."""


def action_text(action: str, message_id: int, result: ActionResult, *, done: bool) -> str:
    """``message 7 deleted``, or ``message 7 was already deleted (deleted by 1002 at ...)``."""
    did, already = ACTION_WORDS[action]
    if done:
        return f"message {message_id} {did}"
    return f"message {message_id} {already}{by_whom(result)}"


def by_whom(result: ActionResult) -> str:
    """Who got there first, when an action found its state already in place."""
    m = result.message
    if m is None:
        return ""
    if m.deleted and m.deleted_by:
        return f" (deleted by {m.deleted_by} at {m.deleted_at:%Y-%m-%d %H:%M:%S} UTC)"
    if m.played and m.played_by:
        return f" (played by {m.played_by} at {m.played_at:%Y-%m-%d %H:%M:%S} UTC)"
    return ""
