"""What the admins' pages show, built from the services' answers (the services refuse
non-admins; nothing here checks a right), and the member rows of the member-list form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData

from sipvm.app import App
from sipvm.domain.greetings import Greeting
from sipvm.domain.messages import Message
from sipvm.domain.model import Directory, Extension, Kind, Role, ext_sort_key, sorted_rights
from sipvm.domain.routing import Override, action_name
from sipvm.web.render import KIND_LABELS, length_text, local_time, member_name, site_zone
from sipvm.web.viewer import Viewer

RIGHTS: Final = ("play", "download", "delete", "share")

SAVED: Final = {
    "members": "Access member list saved: the new directory revision is in force.",
    "member-removed": "Member removed: the new directory revision is in force.",
    "policy": "Owner policy saved: the new directory revision is in force.",
    "hours": "Hours saved: calls follow them now.",
    "greeting": "Greeting uploaded: callers hear it now.",
    "greeting-removed": "Greeting removed: callers hear the built-in one again.",
    "restored": "Message restored for everyone.",
    "not-deleted": "That message is not deleted (someone restored it already); nothing changed.",
    "admin": "Admin flag saved: the new directory revision is in force.",
    "role": "Role members saved: the new directory revision is in force.",
}
"""What the page says after a save (the redirect names the key, never the text)."""

POLICY_LABELS: Final = {
    "voicemail": ("Voicemail on", "Callers may leave messages in this inbox."),
    "download_own": ("Owner downloads", "The owner may download its messages."),
    "delete_own": ("Owner deletes", "The owner may delete its messages."),
    "share_own": ("Owner shares", "The owner may share its messages even without download."),
    "email_on_grant": ("Email on grant", "Email a member who is given access to this inbox."),
}

GREETING_TEXT: Final = {
    "business": ("Business hours", "Said in business hours (a route 'message' plays it)."),
    "closed": ("Closed", "Said outside business hours."),
    "holiday": ("Holiday", "Said on a holiday (without it: the closed greeting)."),
    "menu-main": ("Main menu", "The main menu's prompt (without it: its options read out)."),
    "unavailable": ("Unavailable", "Before a caller leaves a message in this inbox."),
    "busy": ("Busy", "Before a message when the call came in busy."),
    "temporary": ("Temporary", "While there is one, it replaces unavailable and busy."),
    "name": ("Name", "The inbox's name as menus and the system greeting say it."),
}

ACTION_LABELS: Final = {
    "deposit": "left a message",
    "recover": "recovered after a restart",
    "share-in": "shared it here",
    "share": "shared it",
    "play": "played it",
    "listen": "listened again",
    "mark-new": "marked it new",
    "delete": "deleted it",
    "restore": "restored it",
    "download": "downloaded it",
    "email": "emailed about it",
    "purge": "purged it",
}


@dataclass
class MemberRow:
    """One row of the member-list form (``key`` names its fields: ``member-KEY``,
    ``right-KEY``, ``remove-KEY``; the add row's key is ``new``)."""

    key: str
    member: str
    name: str = ""
    rights: frozenset[str] = frozenset()
    remove: bool = False


def member_rows_of(form: FormData) -> list[MemberRow]:
    """The rows of a posted member-list form, in the page's order (the add row last)."""
    keys = {k.removeprefix("member-") for k in form if k.startswith("member-")}
    ordered = sorted((k for k in keys if k.isdigit()), key=int)
    if "new" in keys:
        ordered.append("new")
    rows = []
    for key in ordered:
        member = form.get(f"member-{key}")
        rights = frozenset(v for v in form.getlist(f"right-{key}") if isinstance(v, str))
        rows.append(
            MemberRow(
                key=key,
                member=member.strip() if isinstance(member, str) else "",
                rights=rights,
                remove=form.get(f"remove-{key}") == "on",
            )
        )
    return rows


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class PolicyRow:
    key: str
    label: str
    help: str
    on: bool


@dataclass(frozen=True)
class HoursView:
    period: str
    holiday: str
    override: str
    until: str
    route: str


@dataclass(frozen=True)
class GreetingSlot:
    kind: str
    label: str
    help: str
    in_force: bool
    length: str = ""
    uploaded: str = ""
    audio_url: str = ""


@dataclass(frozen=True)
class MessageLine:
    id: int
    caller: str
    received: str
    length: str
    status: str
    urgent: bool
    deleted: str = ""
    until: str = ""


@dataclass(frozen=True)
class InboxAdminView:
    """Everything the admin page of one inbox shows."""

    inbox: Extension
    kind_label: str
    timezone: str
    rev: int
    owner: str | None
    rows: list[MemberRow]
    candidates: list[Option]
    rights: tuple[str, ...]
    policy: list[PolicyRow]
    roles: list[str]
    hours: HoursView | None
    greetings: list[GreetingSlot]
    messages: list[MessageLine]
    page: int
    more: bool
    deleted: list[MessageLine] = field(default_factory=list)


async def inbox_view(
    app: App,
    viewer: Viewer,
    ext: str,
    *,
    page: int,
    page_size: int,
    rows: list[MemberRow] | None = None,
    policy: Mapping[str, bool] | None = None,
) -> InboxAdminView:
    """The admin page of ``ext``; ``rows`` and ``policy``: what was typed, when shown again
    with its problems."""
    access = await app.access.access_list(ext, by=viewer.ext)  # refuses non-admins first
    directory = app.directory.current
    inbox = access.inbox
    zone = site_zone(directory, inbox)
    now = datetime.now(UTC)
    if rows is None:
        rows = [
            MemberRow(str(i), m.member, m.name, frozenset(r.value for r in m.rights))
            for i, m in enumerate(access.members)
        ]
        rows.append(MemberRow("new", ""))
    for row in rows:
        found = directory.get(row.member)
        row.name = found.name if found is not None else ""
    listed = {r.member for r in rows}
    candidates = [
        Option(e.ext, f"{e.name} ({e.ext})")
        for e in sorted(directory.extensions.values(), key=lambda e: ext_sort_key(e.ext))
        if e.kind.has_owner and e.ext != access.owner and e.ext not in listed
    ]
    settings = policy if policy is not None else access.policy
    messages = await app.admin.messages(
        ext, by=viewer.ext, limit=page_size + 1, offset=(page - 1) * page_size
    )
    deleted = await app.admin.deleted(ext, by=viewer.ext)
    return InboxAdminView(
        inbox=inbox,
        kind_label=KIND_LABELS.get(inbox.kind, inbox.kind.value),
        timezone=str(zone),
        rev=access.rev,
        owner=access.owner,
        rows=rows,
        candidates=candidates,
        rights=RIGHTS,
        policy=[
            PolicyRow(key, *POLICY_LABELS.get(key, (key, "")), on=bool(settings.get(key)))
            for key in access.policy
        ],
        roles=[_role_text(r) for r in access.roles],
        hours=await _hours(app, viewer, inbox, zone) if inbox.kind.has_routing else None,
        greetings=await _greetings(app, viewer, inbox, zone, now),
        messages=[_line(m, directory, zone, now) for m in messages[:page_size]],
        page=page,
        more=len(messages) > page_size,
        deleted=[
            _line(d.message, directory, zone, now, until=local_time(d.restorable_until, zone))
            for d in deleted
        ],
    )


def _role_text(role: Role) -> str:
    rights = ", ".join(r.value for r in sorted_rights(role.rights))
    return f"{role.name}: {', '.join(role.members) or 'nobody'} ({rights})"


async def _hours(app: App, viewer: Viewer, inbox: Extension, zone: ZoneInfo) -> HoursView:
    now = await app.admin.hours(inbox.ext, by=viewer.ext)
    route = action_name(now.route)
    target = getattr(now.route, "inbox", None) or getattr(now.route, "to", None)
    return HoursView(
        period=now.period.value,
        holiday=now.holiday.name if now.holiday else "",
        override=now.override.value,
        until=local_time(now.until, zone) if now.until and now.override is Override.AUTO else "",
        route=f"{route} {target}" if target else route,
    )


async def _greetings(
    app: App, viewer: Viewer, inbox: Extension, zone: ZoneInfo, now: datetime
) -> list[GreetingSlot]:
    if not inbox.kind.has_routing:
        return []  # the owner records those of a user's or common area's inbox
    kinds = app.greetings.kinds_for(inbox.ext, as_member=viewer.ext)
    in_force = {g.kind: g for g in await app.greetings.list(inbox.ext, as_member=viewer.ext)}
    return [_slot(inbox.ext, kind, in_force.get(kind), zone, now) for kind in kinds]


def _slot(
    ext: str, kind: str, greeting: Greeting | None, zone: ZoneInfo, now: datetime
) -> GreetingSlot:
    name = kind.removeprefix("menu-")
    label, help_text = GREETING_TEXT.get(kind, (f"Menu {name}", f"The {name} menu's prompt."))
    if greeting is None:
        return GreetingSlot(kind, label, help_text, in_force=False)
    return GreetingSlot(
        kind,
        label,
        help_text,
        in_force=True,
        length=length_text(greeting.duration_s),
        uploaded=local_time(greeting.uploaded_at, zone, now=now),
        audio_url=f"/api/v1/inboxes/{quote(ext, safe='')}/greetings/{quote(kind, safe='')}",
    )


def _line(
    m: Message, directory: Directory, zone: ZoneInfo, now: datetime, until: str = ""
) -> MessageLine:
    caller = m.caller_name or m.caller or "unknown caller"
    if m.caller_name and m.caller:
        caller = f"{m.caller_name} ({m.caller})"
    status = f"played by {member_name(directory, m.played_by)}" if m.played else "new"
    deleted = ""
    if m.deleted_at is not None:
        deleted = f"{local_time(m.deleted_at, zone, now=now)} by "
        deleted += member_name(directory, m.deleted_by)
    return MessageLine(
        id=m.id,
        caller=caller,
        received=local_time(m.received_at, zone, now=now),
        length=length_text(m.duration_s),
        status=status,
        urgent=m.urgent,
        deleted=deleted,
        until=until,
    )


# -- a message ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrailLine:
    at: str
    who: str
    what: str
    detail: str


@dataclass(frozen=True)
class MessageAdminView:
    message_id: int
    inbox: str
    inbox_name: str
    message: MessageLine | None
    trail: list[TrailLine]
    timezone: str


async def message_view(app: App, viewer: Viewer, message_id: int) -> MessageAdminView:
    """A message (if still stored) and its audit trail, times in its inbox's site's zone."""
    trail = await app.admin.audit_trail(message_id, by=viewer.ext)  # refuses non-admins first
    message = await app.admin.message(message_id, by=viewer.ext)
    directory = app.directory.current
    ext = trail[0].inbox
    inbox = directory.get(ext)
    zone = site_zone(directory, inbox) if inbox is not None else ZoneInfo("UTC")
    now = datetime.now(UTC)
    return MessageAdminView(
        message_id=message_id,
        inbox=ext,
        inbox_name=inbox.name if inbox is not None else ext,
        message=_line(message, directory, zone, now) if message is not None else None,
        trail=[
            TrailLine(
                at=local_time(e.at, zone, now=now),
                who=_actor(directory, e.actor),
                what=ACTION_LABELS.get(e.action, e.action),
                detail=e.detail,
            )
            for e in trail
        ],
        timezone=str(zone),
    )


def _actor(directory: Directory, actor: str) -> str:
    if actor in ("caller", "system"):
        return "the caller" if actor == "caller" else "sipvm"
    return member_name(directory, actor)


# -- admins and roles -----------------------------------------------------------------------


@dataclass(frozen=True)
class UserLine:
    ext: str
    name: str
    site: str
    admin: bool
    is_viewer: bool


@dataclass(frozen=True)
class RoleLine:
    name: str
    members: str
    reaches: str
    rights: str


@dataclass(frozen=True)
class PeopleView:
    rev: int
    users: list[UserLine]
    roles: list[RoleLine]


async def people_view(app: App, viewer: Viewer, *, typed: Mapping[str, str]) -> PeopleView:
    """Users and their admin flag; roles with their members (or what was typed for one)."""
    rev, directory = await app.access.directory(by=viewer.ext)
    users = sorted(
        (e for e in directory.extensions.values() if e.kind is Kind.USER),
        key=lambda e: ext_sort_key(e.ext),
    )
    return PeopleView(
        rev=rev,
        users=[UserLine(u.ext, u.name, u.site, u.admin, u.ext == viewer.ext) for u in users],
        roles=[
            RoleLine(
                name=r.name,
                members=typed.get(r.name, ", ".join(r.members)),
                reaches=_reach(r),
                rights=", ".join(x.value for x in sorted_rights(r.rights)),
            )
            for r in directory.roles
        ],
    )


def _reach(role: Role) -> str:
    kinds = ", ".join(KIND_LABELS[k].lower() + "s" for k in Kind if k in role.kinds)
    sites = ", ".join(sorted(role.sites)) if role.sites is not None else "every site"
    return f"{kinds} at {sites}"
