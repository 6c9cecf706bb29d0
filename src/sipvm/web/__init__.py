"""The HTTP adapter: the portal's pages and the JSON API of CONTRACT.md ("HTTP API").

``create_web_app`` builds the FastAPI application over the services of an ``App``; the routes
call those services (which check every right) and never check a right themselves. Each part is
a module with an ``APIRouter`` named ``router``, included below:

- ``auth``: sign in and out (session cookie + CSRF token), API bearer tokens;
- ``api``: the member API (inboxes, messages, audio, greetings, live events);
- the portal's pages and the admin API and pages;
- ``provisioning``: the desk phones' configuration files at ``/provisioning/<name>``.

``sipvm.web.http_server`` runs it on uvicorn inside ``sipvm serve``.
"""

from __future__ import annotations

from fastapi import FastAPI

from sipvm.app import App
from sipvm.config import Settings
from sipvm.web.context import WebContext
from sipvm.web.errors import install_error_handlers
from sipvm.web.events import EventHub
from sipvm.web.security import SecurityHeaders

API_PREFIX = "/api/v1"


def create_web_app(app: App, settings: Settings, hub: EventHub) -> FastAPI:
    """The portal and API over ``app``'s services; ``hub`` feeds the live event streams."""
    from sipvm.provisioning.phones import phone_files
    from sipvm.web import admin_api, admin_pages, api, auth, pages, provisioning

    web = FastAPI(
        title="sipvm",
        summary="Shared voicemail inboxes: the members' and admins' HTTP API",
        version="1",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    files = phone_files(settings) if settings.provisioning.enabled else None
    web.state.sipvm = WebContext(app=app, settings=settings, hub=hub, phone_files=files)
    install_error_handlers(web)
    web.add_middleware(SecurityHeaders)
    web.include_router(auth.router)
    web.include_router(api.router)
    web.include_router(admin_api.router)
    web.include_router(pages.router)
    web.include_router(admin_pages.router)
    web.include_router(provisioning.router)
    return web
