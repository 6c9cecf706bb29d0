"""The members' pages: sign in, the inbox list, an inbox's messages, the owner's greetings.

The pages are rendered on the server from the same services as the JSON API (which check every
right: a page only leaves out the actions the member's rights on the inbox do not include).
``static/portal.js`` then does the changes through the API and keeps open pages current from
the event stream, fetching an inbox's rows again (``/inboxes/EXT/rows``) when they changed.
A page asked for without a session sends the browser to the sign-in page and back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from sipvm.app import App
from sipvm.domain.greetings import Greeting
from sipvm.domain.messages import InboxSummary, Message
from sipvm.domain.model import Directory, Right
from sipvm.errors import LockedError, NotFoundError, NotSignedInError
from sipvm.web.auth import signed_in, start_session
from sipvm.web.context import services
from sipvm.web.errors import status_of
from sipvm.web.render import (
    KIND_LABELS,
    STATIC,
    length_text,
    local_time,
    member_name,
    render,
    site_zone,
)
from sipvm.web.viewer import Viewer

PAGE_SIZE: Final = 50
"""Messages on one page of an inbox (in the phone menu's order: new ones first, each part
oldest first; further pages follow)."""

STATIC_FILES: Final = {
    "portal.js": "text/javascript",
    "portal.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
"""The only files served under ``/static/``: the name is looked up here, never joined to a
path."""

GREETING_TEXT: Final = {
    "unavailable": (
        "Unavailable greeting",
        "Played when you do not answer.",
        "the system greeting",
    ),
    "busy": (
        "Busy greeting",
        "Played when you are on another call.",
        "your unavailable greeting, or the system one",
    ),
    "temporary": (
        "Temporary greeting",
        "While there is one, callers hear it instead of the others (away, on holiday).",
        "your other greetings",
    ),
    "name": (
        "Your name",
        "Your name in your own voice, used in the system greeting.",
        "your extension read out",
    ),
}
"""Label, what it is for, and what callers hear without it, for each greeting an owner
records."""

router = APIRouter(include_in_schema=False)


async def _viewer(request: Request) -> Viewer | None:
    try:
        return await signed_in(request)
    except NotSignedInError:
        return None


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


# -- sign in --------------------------------------------------------------------------------


@router.get("/")
async def home(request: Request) -> Response:
    """The inbox list when signed in, else the sign-in page."""
    viewer = await _viewer(request)
    return RedirectResponse("/inboxes" if viewer else "/signin", status_code=303)


def _local_path(target: str) -> str:
    """``target`` when it is a path on this site, else the inbox list: signing in never sends
    the browser to another site (``//host``, ``/\\host``, ``https:...`` are refused)."""
    if _LOCAL_PATH.fullmatch(target) and not target.startswith("//"):
        return target
    return "/inboxes"


_LOCAL_PATH: Final = re.compile(r"/[A-Za-z0-9/_.~%?=&+-]*")

Next = Annotated[str, Query(alias="next", description="where to go once signed in")]


@router.get("/signin")
async def sign_in_page(request: Request, next_path: Next = "/inboxes", ext: str = "") -> Response:
    """Extension and PIN; ``portal.js`` posts them to ``/api/v1/session``."""
    return render(request, "signin.html", None, next=_local_path(next_path), ext=ext, error="")


@router.post("/signin")
async def sign_in_form(
    request: Request,
    ext: Annotated[str, Form()] = "",
    pin: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/inboxes",
) -> Response:
    """The sign-in form posted without the script: the same check as ``/api/v1/session``; a
    refusal shows the sign-in page again with its words."""
    target = _local_path(next_path)
    answer = RedirectResponse(target, status_code=303)
    try:
        await start_session(request, answer, ext.strip(), pin.strip())
    except (NotSignedInError, LockedError) as exc:
        status = status_of(exc)
        return render(
            request, "signin.html", None, status=status, next=target, ext=ext, error=str(exc)
        )
    return answer


# -- inboxes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxRow:
    """An inbox as the pages show it."""

    ext: str
    name: str
    kind_label: str
    rights: tuple[str, ...]
    new: int
    old: int
    own: bool
    timezone: str = ""

    @classmethod
    def of(cls, summary: InboxSummary, timezone: str = "") -> InboxRow:
        return cls(
            ext=summary.ext,
            name=summary.name,
            kind_label=KIND_LABELS.get(summary.kind, summary.kind.value),
            rights=tuple(r.value for r in summary.rights),
            new=summary.new,
            old=summary.old,
            own=summary.own,
            timezone=timezone,
        )


@router.get("/inboxes")
async def inboxes_page(request: Request) -> Response:
    """Every inbox the member may reach: its own first, counts, the rights held on each."""
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    found = await services(request).messages.inboxes(viewer.ext)
    rows = [InboxRow.of(i) for i in found]
    return render(request, "inboxes.html", viewer, nav="inboxes", inboxes=rows)


@dataclass(frozen=True)
class MessageRow:
    """A message as an inbox page shows it (times in the inbox's site's zone)."""

    id: int
    caller: str
    caller_name: str
    received: str
    received_iso: str
    length: str
    urgent: bool
    played: bool
    played_by: str
    shared_by: str
    """``Bob Jones (1002)`` on a shared copy, else empty."""
    note: str
    """The sharer's note on a shared copy, else empty (autoescaped like every value)."""


@dataclass(frozen=True)
class Allowed:
    """Which actions the page offers (the API refuses the others anyway)."""

    download: bool
    delete: bool
    share: bool


@dataclass(frozen=True)
class InboxView:
    inbox: InboxRow
    messages: list[MessageRow]
    can: Allowed
    page: int
    pages: int


async def _inbox_view(app: App, viewer: Viewer, ext: str, page: int) -> InboxView:
    # The service checks the play right (and that the inbox exists) before anything is shown.
    messages = await app.messages.messages(
        ext, as_member=viewer.ext, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    summary = next((i for i in await app.messages.inboxes(viewer.ext) if i.ext == ext), None)
    if summary is None:  # the directory changed between the two reads
        raise NotFoundError(f"inbox {ext} is not among your inboxes any more; reload the list")
    directory = app.directory.current
    extension = app.messages.inbox(ext)
    zone = site_zone(directory, extension)
    now = datetime.now(UTC)
    total = summary.new + summary.old
    return InboxView(
        inbox=InboxRow.of(summary, timezone=str(zone)),
        messages=[_message_row(m, directory, zone, now) for m in messages],
        can=Allowed(
            download=Right.DOWNLOAD in summary.rights,
            delete=Right.DELETE in summary.rights,
            share=Right.SHARE in summary.rights,
        ),
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
    )


def _message_row(m: Message, directory: Directory, zone: ZoneInfo, now: datetime) -> MessageRow:
    return MessageRow(
        id=m.id,
        caller=m.caller,
        caller_name=m.caller_name,
        received=local_time(m.received_at, zone, now=now),
        received_iso=m.received_at.astimezone(UTC).isoformat(),
        length=length_text(m.duration_s),
        urgent=m.urgent,
        played=m.played,
        played_by=member_name(directory, m.played_by) if m.played else "",
        shared_by=member_name(directory, m.shared_by) if m.shared_by else "",
        note=m.note or "",
    )


Page = Annotated[int, Query(ge=1, le=1_000_000, description="page of 50 messages")]


@router.get("/inboxes/{ext}")
async def inbox_page(request: Request, ext: str, page: Page = 1) -> Response:
    """An inbox's messages with the actions the member's rights allow."""
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    view = await _inbox_view(services(request), viewer, ext, page)
    return render(request, "inbox.html", viewer, nav="inboxes", **vars(view))


@router.get("/inboxes/{ext}/rows")
async def inbox_rows(request: Request, ext: str, page: Page = 1) -> Response:
    """The message rows alone (``portal.js`` merges them into an open page)."""
    viewer = await signed_in(request)
    view = await _inbox_view(services(request), viewer, ext, page)
    return render(request, "inbox_rows.html", viewer, **vars(view))


# -- greetings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GreetingRow:
    kind: str
    label: str
    help: str
    fallback: str
    in_force: bool
    length: str = ""
    uploaded: str = ""
    audio_url: str = ""
    removable: bool = True


@router.get("/greetings")
async def greetings_page(request: Request) -> Response:
    """The member's own greetings: what is in force, listen, upload a new one, remove."""
    viewer = await _viewer(request)
    if viewer is None:
        return _to_sign_in(request)
    app = services(request)
    ext = viewer.ext
    kinds = app.greetings.kinds_for(ext, as_member=ext)
    in_force = {g.kind: g for g in await app.greetings.list(ext, as_member=ext)}
    directory = app.directory.current
    zone = site_zone(directory, app.messages.inbox(ext))
    now = datetime.now(UTC)
    rows = [_greeting_row(kind, ext, in_force.get(kind), zone, now) for kind in kinds]
    inbox = next(i for i in await app.messages.inboxes(ext) if i.ext == ext)
    return render(
        request,
        "greetings.html",
        viewer,
        nav="greetings",
        inbox=InboxRow.of(inbox, timezone=str(zone)),
        greetings=rows,
    )


def _greeting_row(
    kind: str, ext: str, greeting: Greeting | None, zone: ZoneInfo, now: datetime
) -> GreetingRow:
    label, help_text, fallback = GREETING_TEXT.get(kind, (kind, "", "the system greeting"))
    if greeting is None:
        return GreetingRow(kind, label, help_text, fallback, in_force=False)
    return GreetingRow(
        kind,
        label,
        help_text,
        fallback,
        in_force=True,
        length=length_text(greeting.duration_s),
        uploaded=local_time(greeting.uploaded_at, zone, now=now),
        audio_url=f"/api/v1/inboxes/{quote(ext)}/greetings/{quote(kind)}",
    )


# -- the script and the style sheet ---------------------------------------------------------


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    """``portal.js``, ``portal.css``, the icon (nothing else: the name is a key, not a path)."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFoundError(f"there is no file /static/{name}")
    return FileResponse(STATIC / name, media_type=media_type)
