"""Who is asking: browser sessions (cookie + CSRF token) and API bearer tokens.

- ``POST /api/v1/session`` checks extension and PIN on the ``web`` channel of the login
  service (the phone's lockout counters and security log lines) and sets the session cookie:
  HttpOnly, SameSite=Strict, Secure when the request came over https. The cookie holds a random
  token; the store keeps only its hash.
- ``signed_in`` (a FastAPI dependency) gives the ``Viewer`` of a request: by
  ``Authorization: Bearer TOKEN`` when the header is there, else by the session cookie.
- ``changing`` is ``signed_in`` for requests that change something: a cookie session must also
  send its CSRF token, in the ``X-CSRF-Token`` header or a ``csrf`` form field. A bearer
  token needs none (a browser never sends it on its own).

No route checks a right: the services do.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from sipvm.audio.greeting import MAX_UPLOAD_BYTES
from sipvm.domain.credentials import csrf_for, csrf_matches
from sipvm.errors import NotPermittedError, NotSignedInError
from sipvm.services.sessions import SignedIn
from sipvm.web.context import services
from sipvm.web.viewer import Viewer

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "Viewer",
    "changing",
    "end_session",
    "router",
    "signed_in",
    "start_session",
    "still_signed_in",
]

COOKIE = "sipvm_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
#: The largest form whose ``csrf`` field is looked for: a greeting upload and its fields.
MAX_FORM_BYTES = MAX_UPLOAD_BYTES + 64 * 1024

NOT_SIGNED_IN = "you are not signed in; sign in with your extension and PIN"
SESSION_ENDED = (
    "your session has ended (signed out, or unused for too long); "
    "sign in again with your extension and PIN"
)
BAD_TOKEN = (
    "the API token is not valid or was revoked; create one with `sipvm token create --member EXT`"
)
BAD_AUTHORIZATION = "the Authorization header must read: Bearer TOKEN"
NO_CSRF = (
    "this change carries no valid CSRF token (X-CSRF-Token header); reload the page and try again"
)


def client_address(request: Request) -> str:
    """The address the request came from (what the lockout and the security log count)."""
    return request.client.host if request.client is not None else "unknown"


def _viewer(found: SignedIn, csrf: str | None) -> Viewer:
    who = found.who
    return Viewer(
        ext=who.ext,
        name=who.name,
        admin=who.admin,
        csrf=csrf,
        via="session" if csrf is not None else "token",
    )


async def signed_in(request: Request) -> Viewer:
    """The member a request is from; NotSignedInError (401) when none."""
    app = services(request)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotSignedInError(BAD_AUTHORIZATION)
        found = await app.sessions.bearer(token.strip())
        if found is None:
            raise NotSignedInError(BAD_TOKEN)
        return _viewer(found, None)
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        raise NotSignedInError(NOT_SIGNED_IN)
    found = await app.sessions.session(cookie)
    if found is None:
        raise NotSignedInError(SESSION_ENDED)
    return _viewer(found, csrf_for(cookie))


async def still_signed_in(request: Request) -> bool:
    """Whether the request's session or token still signs its member in (an open event stream
    asks now and then; this does not count as using the session)."""
    sessions = services(request).sessions
    authorization = request.headers.get("authorization")
    if authorization is not None:
        return await sessions.bearer(authorization.strip().partition(" ")[2].strip()) is not None
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return False
    return await sessions.session(cookie, touch=False) is not None


async def changing(request: Request, viewer: Annotated[Viewer, Depends(signed_in)]) -> Viewer:
    """``signed_in`` for a change: a cookie session must also show its CSRF token (403).

    The token may come as a ``csrf`` field of a form (a page without script) when the form
    declares its length and is no larger than an upload may be: nothing bigger is read before
    the token is checked."""
    if viewer.via == "session":
        given = request.headers.get(CSRF_HEADER)
        if given is None and _small_form(request):
            form = await request.form()
            field = form.get(CSRF_FIELD)
            given = field if isinstance(field, str) else None
        if not csrf_matches(request.cookies.get(COOKIE, ""), given):
            raise NotPermittedError(NO_CSRF)
    return viewer


def _small_form(request: Request) -> bool:
    declared = request.headers.get("content-length", "")
    return (
        request.headers.get("content-type", "").startswith(_FORMS)
        and declared.isdigit()
        and int(declared) <= MAX_FORM_BYTES
    )


async def start_session(request: Request, response: Response, ext: str, pin: str) -> Viewer:
    """Check ``ext`` and ``pin`` and put a new session's cookie on ``response`` (for the API
    and the portal's sign-in form alike). NotSignedInError or LockedError when refused."""
    app = services(request)
    token, who = await app.sessions.sign_in(ext, pin, peer=client_address(request))
    previous = request.cookies.get(COOKIE)
    if previous:  # signing in again ends the session the browser had
        await app.sessions.sign_out(previous)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return _viewer(SignedIn(who, "session"), csrf_for(token))


async def end_session(request: Request, response: Response) -> None:
    """Forget the request's session (if any) and clear its cookie."""
    token = request.cookies.get(COOKIE)
    if token:
        await services(request).sessions.sign_out(token)
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


class SignInBody(BaseModel):
    """``POST /api/v1/session``."""

    ext: str
    pin: str


class SessionBody(BaseModel):
    """Who signed in, and the CSRF token every change must carry."""

    ext: str
    name: str
    admin: bool
    csrf: str | None


router = APIRouter(prefix="/api/v1", tags=["session"])


@router.post(
    "/session",
    response_model=SessionBody,
    responses={401: {"description": "wrong extension or PIN"}, 429: {"description": "locked"}},
)
async def sign_in(body: SignInBody, request: Request, response: Response) -> SessionBody:
    """Sign in with extension and PIN: sets the session cookie and returns the CSRF token.

    Wrong PINs count against the same lockout as the phone's."""
    viewer = await start_session(request, response, body.ext, body.pin)
    return SessionBody(ext=viewer.ext, name=viewer.name, admin=viewer.admin, csrf=viewer.csrf)


@router.get("/session", response_model=SessionBody)
async def who_am_i(viewer: Annotated[Viewer, Depends(signed_in)]) -> SessionBody:
    """Who is signed in (and the session's CSRF token)."""
    return SessionBody(ext=viewer.ext, name=viewer.name, admin=viewer.admin, csrf=viewer.csrf)


@router.delete("/session")
async def sign_out(
    request: Request, response: Response, viewer: Annotated[Viewer, Depends(changing)]
) -> dict[str, bool]:
    """Sign out: the session ends now, in the store too."""
    await end_session(request, response)
    return {"signed_out": True}
