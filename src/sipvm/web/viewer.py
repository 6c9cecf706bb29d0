"""Who is asking: the signed-in member a web request or event stream is for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Viewer:
    """A member signed in by a browser session or an API token."""

    ext: str
    name: str
    admin: bool
    csrf: str | None
    """The session's CSRF token (None when signed in by an API token: no cookie, no CSRF)."""
    via: Literal["session", "token"]
