"""What every route works with: the app's services, the settings and the event hub."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from fastapi import Request

from sipvm.app import App
from sipvm.config import Settings
from sipvm.provisioning.phones import PhoneFiles
from sipvm.web.events import EventHub


@dataclass(frozen=True)
class WebContext:
    """Kept on the FastAPI app's state by ``create_web_app``."""

    app: App
    settings: Settings
    hub: EventHub
    phone_files: PhoneFiles | None = None
    """Renders the desk phones' files (None: ``[provisioning] enabled = false``)."""


def web_context(request: Request) -> WebContext:
    """The context of the app serving ``request`` (a FastAPI dependency)."""
    return cast(WebContext, request.app.state.sipvm)


def services(request: Request) -> App:
    """The services (a FastAPI dependency)."""
    return web_context(request).app
