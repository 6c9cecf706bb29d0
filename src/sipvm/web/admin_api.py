"""The admins' JSON API (CONTRACT.md "HTTP API", Admins): member lists, owner policies, roles
and the admin flag, hours, deleted messages, audit trails, every inbox.

Every route hands the signed-in member to a service, which refuses anyone but an admin (403,
the service's words); nothing here checks a right. Edits of the directory are new directory
revisions: ``GET`` answers carry the revision as ``ETag`` (``"rev-7"``), and a change sent
with ``If-Match`` is refused with 409 when another revision was applied meanwhile (without it
the change applies to the revision in force). Invalid values are refused whole with 400 naming
each field (``members[1].member: 1099 is not in the directory``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from sipvm.app import App
from sipvm.domain.model import Role, sorted_rights
from sipvm.errors import InvalidFieldsError
from sipvm.provisioning.directory_file import dump_directory
from sipvm.services.access import AccessList
from sipvm.services.admin import DeletedMessage
from sipvm.storage.messages import AuditEntry
from sipvm.views import hours_json, message_json, utc_text
from sipvm.web.auth import changing, signed_in
from sipvm.web.context import services
from sipvm.web.viewer import Viewer

router = APIRouter(prefix="/api/v1", tags=["admin"])

Reader = Annotated[Viewer, Depends(signed_in)]
Changer = Annotated[Viewer, Depends(changing)]
Services = Annotated[App, Depends(services)]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "a value is not valid (the error names the field); nothing changed"},
    403: {"description": "the signed-in member is not an admin"},
    404: {"description": "no such inbox"},
    409: {"description": "the directory changed since the If-Match revision; nothing changed"},
}


class MemberEntry(BaseModel):
    """One entry of an access member list, as in the directory file."""

    model_config = ConfigDict(extra="forbid")
    member: str
    rights: list[str]


class PolicyBody(BaseModel):
    """An inbox's owner policy settings and whether new members are emailed."""

    policy: dict[str, bool] = {}
    """The settings of this kind (users: voicemail, download_own, delete_own, share_own,
    email_on_grant; common areas: voicemail, delete_own, share_own; others: none)."""
    email_on_grant: bool | None = None


class HoursBody(BaseModel):
    """An hours override."""

    override: str
    """``open``, ``closed`` or ``auto`` (back to the schedule)."""


class AdminBody(BaseModel):
    """A user's admin flag."""

    admin: bool


# -- every inbox ---------------------------------------------------------------------------


@router.get("/admin/inboxes", responses=_REFUSALS)
async def every_inbox(viewer: Reader, app: Services) -> list[dict[str, Any]]:
    """Every inbox of every kind, by extension, with its shared new/old counts."""
    found = await app.admin.inboxes(by=viewer.ext)
    return [
        {
            "ext": o.inbox.ext,
            "kind": o.inbox.kind.value,
            "name": o.inbox.name,
            "site": o.inbox.site,
            "new": o.new,
            "old": o.old,
        }
        for o in found
    ]


@router.get("/admin/inboxes/{ext}/messages", responses=_REFUSALS)
async def inbox_messages(
    ext: str,
    viewer: Reader,
    app: Services,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The messages of any inbox (as ``sipvm messages --json``); playing one still takes the
    play right."""
    found = await app.admin.messages(ext, by=viewer.ext, limit=limit, offset=offset)
    return [message_json(m) for m in found]


@router.get("/directory", response_class=PlainTextResponse, responses=_REFUSALS)
async def export_directory(viewer: Reader, app: Services, response: Response) -> str:
    """The directory in force as a directory file (as ``sipvm directory export``)."""
    rev, directory = await app.access.directory(by=viewer.ext)
    response.headers["ETag"] = _etag(rev)
    return dump_directory(directory)


# -- access member lists and policies -------------------------------------------------------


@router.get("/inboxes/{ext}/members", response_model=list[MemberEntry], responses=_REFUSALS)
async def members(ext: str, viewer: Reader, app: Services, response: Response) -> Any:
    """The access member list (the owner is never listed); ``ETag``: the revision."""
    found = await app.access.access_list(ext, by=viewer.ext)
    return _members(found, response)


@router.put("/inboxes/{ext}/members", response_model=list[MemberEntry], responses=_REFUSALS)
async def set_members(
    ext: str,
    body: Annotated[list[MemberEntry], Body()],
    request: Request,
    viewer: Changer,
    app: Services,
    response: Response,
) -> Any:
    """Replace the access member list: one new directory revision, or nothing."""
    entries = [entry.model_dump() for entry in body]
    found = await app.access.set_members(ext, entries, by=viewer.ext, rev=_if_match(request))
    return _members(found, response)


@router.delete(
    "/inboxes/{ext}/members/{member}", response_model=list[MemberEntry], responses=_REFUSALS
)
async def remove_member(
    ext: str, member: str, request: Request, viewer: Changer, app: Services, response: Response
) -> Any:
    """Take a member off the list (the owner: 403, it cannot be removed)."""
    found = await app.access.remove_member(ext, member, by=viewer.ext, rev=_if_match(request))
    return _members(found, response)


@router.get("/inboxes/{ext}/policy", response_model=PolicyBody, responses=_REFUSALS)
async def policy(ext: str, viewer: Reader, app: Services, response: Response) -> Any:
    """The owner policy settings of the inbox's kind and ``email_on_grant``."""
    return _policy(await app.access.access_list(ext, by=viewer.ext), response)


@router.put("/inboxes/{ext}/policy", response_model=PolicyBody, responses=_REFUSALS)
async def set_policy(
    ext: str,
    body: PolicyBody,
    request: Request,
    viewer: Changer,
    app: Services,
    response: Response,
) -> Any:
    """Change some settings (the others keep their value): one new directory revision."""
    settings: dict[str, Any] = dict(body.policy)
    if body.email_on_grant is not None:
        settings["email_on_grant"] = body.email_on_grant
    found = await app.access.set_policy(ext, settings, by=viewer.ext, rev=_if_match(request))
    return _policy(found, response)


# -- roles and the admin flag --------------------------------------------------------------


@router.get("/roles", responses=_REFUSALS)
async def roles(viewer: Reader, app: Services, response: Response) -> list[dict[str, Any]]:
    """The roles of the directory in force."""
    rev, found = await app.access.roles(by=viewer.ext)
    response.headers["ETag"] = _etag(rev)
    return [_role(r) for r in found]


@router.put("/roles/{name}/members", responses=_REFUSALS)
async def set_role_members(
    name: str,
    body: Annotated[list[str], Body()],
    request: Request,
    viewer: Changer,
    app: Services,
) -> dict[str, Any]:
    """Replace the members of a role (a list of extensions)."""
    role = await app.access.set_role_members(name, body, by=viewer.ext, rev=_if_match(request))
    return _role(role)


@router.put("/users/{ext}/admin", response_model=AdminBody, responses=_REFUSALS)
async def set_admin(
    ext: str, body: AdminBody, request: Request, viewer: Changer, app: Services
) -> Any:
    """Make a user an admin or not (nobody takes away its own flag)."""
    user = await app.access.set_admin(ext, body.admin, by=viewer.ext, rev=_if_match(request))
    return AdminBody(admin=user.admin)


# -- hours, deleted messages, audit trails -------------------------------------------------


@router.get("/inboxes/{ext}/hours", responses=_REFUSALS)
async def hours(ext: str, viewer: Reader, app: Services) -> dict[str, Any]:
    """The period in force, its route, the override and until when (as ``sipvm hours show
    --json``)."""
    return hours_json(await app.admin.hours(ext, by=viewer.ext))


@router.put("/inboxes/{ext}/hours", responses=_REFUSALS)
async def set_hours(ext: str, body: HoursBody, viewer: Changer, app: Services) -> dict[str, Any]:
    """Force open or closed, or back to the schedule (``auto``)."""
    return hours_json(await app.admin.set_hours(ext, body.override, by=viewer.ext))


@router.get("/inboxes/{ext}/deleted", responses=_REFUSALS)
async def deleted(ext: str, viewer: Reader, app: Services) -> list[dict[str, Any]]:
    """Deleted messages still restorable (30 days), latest deleted first; restore one with
    ``POST /api/v1/messages/{id}/restore``."""
    return [_deleted(d) for d in await app.admin.deleted(ext, by=viewer.ext)]


@router.get("/messages/{message_id}/audit", responses=_REFUSALS)
async def audit(message_id: int, viewer: Reader, app: Services) -> list[dict[str, Any]]:
    """Who did what to a message and when, oldest first."""
    return [_audit(e) for e in await app.admin.audit_trail(message_id, by=viewer.ext)]


# -- shapes --------------------------------------------------------------------------------


def _etag(rev: int) -> str:
    return f'"rev-{rev}"'


def _if_match(request: Request) -> int | None:
    """The directory revision an edit was made on (``If-Match: "rev-7"``), if given."""
    given = request.headers.get("if-match")
    if given is None or given.strip() == "*":
        return None
    text = given.strip().removeprefix("W/").strip('"').removeprefix("rev-")
    if not text.isdigit():
        raise InvalidFieldsError(
            {"If-Match": 'must be the ETag of a GET answer, e.g. "rev-7"; or leave it out'}
        )
    return int(text)


def _members(found: AccessList, response: Response) -> list[MemberEntry]:
    response.headers["ETag"] = _etag(found.rev)
    return [MemberEntry(member=m.member, rights=[r.value for r in m.rights]) for m in found.members]


def _policy(found: AccessList, response: Response) -> PolicyBody:
    response.headers["ETag"] = _etag(found.rev)
    return PolicyBody(policy=dict(found.policy), email_on_grant=found.email_on_grant)


def _role(r: Role) -> dict[str, Any]:
    return {
        "name": r.name,
        "members": list(r.members),
        "kinds": sorted(k.value for k in r.kinds),
        "sites": sorted(r.sites) if r.sites is not None else None,
        "rights": [x.value for x in sorted_rights(r.rights)],
    }


def _deleted(d: DeletedMessage) -> dict[str, Any]:
    m = d.message
    return {
        **message_json(m),
        "deleted_at": utc_text(m.deleted_at) if m.deleted_at else None,
        "deleted_by": m.deleted_by,
        "restorable_until": utc_text(d.restorable_until),
    }


def _audit(e: AuditEntry) -> dict[str, Any]:
    return {
        "at": utc_text(e.at),
        "actor": e.actor,
        "action": e.action,
        "message_id": e.message_id,
        "inbox": e.inbox,
        "detail": e.detail,
    }
