"""Rendering the portal's pages: the Jinja2 templates, and what every page is given.

Every page extends ``base.html``, whose header shows who is signed in, the portal's sections
(the admin's only to admins) and sign-out, and carries the session's CSRF token for the
script's changes. Templates are autoescaped; the pages have no inline script or style (the
Content-Security-Policy allows neither).
"""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from sipvm.domain.model import Directory, Extension, Kind
from sipvm.web.viewer import Viewer

TEMPLATES: Final = Path(str(resources.files("sipvm.web") / "templates"))
STATIC: Final = Path(str(resources.files("sipvm.web") / "static"))

templates: Final = Jinja2Templates(directory=TEMPLATES)

KIND_LABELS: Final = {
    Kind.USER: "User",
    Kind.COMMON_AREA: "Common area",
    Kind.CALL_QUEUE: "Call queue",
    Kind.AUTO_RECEPTIONIST: "Auto receptionist",
    Kind.SHARED_LINE_GROUP: "Shared line group",
}
"""How each kind of inbox is named to people."""


def render(
    request: Request,
    name: str,
    viewer: Viewer | None,
    *,
    nav: str = "",
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """The page ``name`` for ``viewer`` (None on the sign-in page); ``nav`` names the header
    link to mark as the current section (``inboxes``, ``greetings``, ``admin``)."""
    has_own_inbox = False
    if viewer is not None:
        directory: Directory = request.app.state.sipvm.app.directory.current
        own = directory.get(viewer.ext)
        has_own_inbox = own is not None and own.kind.has_owner
    return templates.TemplateResponse(
        request,
        name,
        {"viewer": viewer, "nav": nav, "has_own_inbox": has_own_inbox, **context},
        status_code=status,
    )


def site_zone(directory: Directory, inbox: Extension) -> ZoneInfo:
    """The time zone of the inbox's site (UTC when the site names none that is known)."""
    site = directory.sites.get(inbox.site)
    try:
        return ZoneInfo(site.timezone) if site is not None else ZoneInfo("UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(moment: datetime, zone: ZoneInfo, *, now: datetime | None = None) -> str:
    """``Tue 3 Mar 2026, 14:05`` in ``zone`` (the year left out when it is ``now``'s)."""
    local = moment.astimezone(zone)
    text = f"{local:%a} {local.day} {local:%b}"
    if now is None or now.astimezone(zone).year != local.year:
        text += f" {local.year}"
    return f"{text}, {local:%H:%M}"


def length_text(seconds: float) -> str:
    """``0:07``, ``2:35``: minutes and seconds (rounded to the second)."""
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def member_name(directory: Directory, ext: str | None) -> str:
    """``Carol White (1003)`` for an extension in the directory, else the extension itself."""
    if not ext:
        return "someone"
    found = directory.get(ext)
    return f"{found.name} ({ext})" if found is not None else ext
