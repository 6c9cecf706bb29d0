"""The member JSON API (CONTRACT.md "HTTP API"): inboxes, messages, their audio, greetings and
live events, for the signed-in member (session cookie or bearer token).

Each route hands the viewer's extension to a service, which checks the right; the answers are
the CLI's ``--json`` shapes (``sipvm.views``) and errors the services' own words. Files are
only ever ones the services name (message audio, greetings) or ones this module names itself
in the data directory's scratch area (uploads, downloads): nothing a request says becomes a
path.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from sipvm.app import App
from sipvm.audio.greeting import MAX_UPLOAD_BYTES
from sipvm.domain.messages import ActionResult, MenuPlace, Outcome
from sipvm.errors import ConflictError, InvalidInputError, NotFoundError, TooLargeError
from sipvm.services.messages import MAX_NOTE
from sipvm.views import action_text, greeting_json, inbox_json, message_json
from sipvm.web.auth import changing, signed_in, still_signed_in
from sipvm.web.context import services, web_context
from sipvm.web.events import event_stream
from sipvm.web.viewer import Viewer

router = APIRouter(prefix="/api/v1", tags=["member"])

Services = Annotated[App, Depends(services)]
SignedIn = Annotated[Viewer, Depends(signed_in)]
Changing = Annotated[Viewer, Depends(changing)]

#: Messages one listing gives unless asked for fewer (or more, up to ``MAX_PAGE``).
DEFAULT_PAGE = 100
MAX_PAGE = 1000
#: How much of an upload is read per chunk.
CHUNK = 64 * 1024

_MEDIA_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}
_FIRST_BYTE = re.compile(r"\s*bytes\s*=\s*0\s*-")


# -- what the API answers (for the OpenAPI description; the values are sipvm.views') ----------


class InboxOut(BaseModel):
    """An inbox the member may reach, as ``sipvm inboxes --json`` shows it."""

    ext: str
    kind: str = Field(description="user, common_area, call_queue, auto_receptionist, ...")
    name: str
    rights: list[str] = Field(description="the member's rights: play, download, delete, share")
    new: int
    old: int
    urgent_new: int
    urgent_old: int
    own: bool


class MessageOut(BaseModel):
    """A message, as ``sipvm messages --json`` shows it (times in UTC)."""

    id: int
    inbox: str
    caller: str
    caller_name: str
    called: str
    reason: str
    received_at: str
    duration_s: float
    urgent: bool
    played: bool
    played_by: str | None
    played_at: str | None
    source_id: int | None = Field(description="a shared copy: the message it was copied from")
    shared_by: str | None = Field(description="a shared copy: the member who shared it")
    note: str | None = Field(description="a shared copy: the note its sharer wrote, if any")


class ActionOut(BaseModel):
    """What an action did, and the message as it is now (None once purged)."""

    text: str
    changed: bool
    message: MessageOut | None


class GreetingOut(BaseModel):
    """A greeting in force, as ``sipvm greeting list --json`` shows it."""

    inbox: str
    kind: str
    duration_s: float
    uploaded_at: str


class ShareIn(BaseModel):
    """``POST /api/v1/messages/{id}/share``."""

    to: str = Field(description="the extension whose inbox gets a copy")
    note: str = Field(
        "",
        description="shown to the recipients with the copy, and kept in the audit trail "
        f"(one line, at most {MAX_NOTE} characters)",
    )


class ShareOut(BaseModel):
    """The copy the share made."""

    text: str
    message: MessageOut


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "not valid: the words say what"},
    401: {"description": "not signed in"},
    403: {"description": "the member lacks the right (the service's words)"},
    404: {"description": "no such inbox or message (or it was deleted)"},
}


# -- inboxes and messages -----------------------------------------------------------------


@router.get("/inboxes", response_model=list[InboxOut], responses=_ERRORS)
async def list_inboxes(app: Services, viewer: SignedIn) -> list[dict[str, Any]]:
    """Every inbox the member may play, own first, with shared new/old counts and the member's
    rights (admins: also every call queue, auto receptionist and shared line group)."""
    return [inbox_json(i) for i in await app.messages.inboxes(viewer.ext)]


@router.get("/inboxes/{ext}/messages", response_model=list[MessageOut], responses=_ERRORS)
async def list_messages(
    ext: str,
    app: Services,
    viewer: SignedIn,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
    offset: Annotated[int, Query(ge=0)] = 0,
    after: Annotated[str | None, Query(description="the next page's place, from Link")] = None,
) -> list[dict[str, Any]]:
    """The inbox's messages in menu order (new first, oldest first), for a member with the
    play right. A full page answers with ``Link: <...>; rel="next"``: the next page starts
    after this page's last message, as fast deep in a long inbox as at its start, and a
    message played or deleted meanwhile moves no other across the page boundary. (``offset``
    pages too, slower the deeper it goes.)"""
    place = parse_place(after) if after is not None else None
    found = await app.messages.messages(
        ext, as_member=viewer.ext, limit=limit, offset=offset, after=place
    )
    if len(found) == limit:
        following = request.url.remove_query_params(["offset", "after"]).include_query_params(
            after=place_token(MenuPlace.of(found[-1]))
        )
        response.headers["Link"] = f'<{following}>; rel="next"'
    return [message_json(m) for m in found]


_PLACE = re.compile(r"([01])-([0-9]{1,20})-([0-9]{1,20})")


def place_token(place: MenuPlace) -> str:
    """``after=`` of the page that follows ``place``: played, microseconds since the epoch of
    its reception, id."""
    micros = round(place.received_at.timestamp() * 1_000_000)
    return f"{int(place.played)}-{micros}-{place.id}"


def parse_place(token: str) -> MenuPlace:
    """The place an ``after=`` token names; InvalidInputError for anything this API did not
    give out."""
    found = _PLACE.fullmatch(token)
    if found is None:
        raise InvalidInputError(
            "after: not a place this API gave out; follow the Link header of the previous page"
        )
    played, micros, message_id = found.groups()
    received = datetime.fromtimestamp(0, UTC) + timedelta(microseconds=int(micros))
    return MenuPlace(played == "1", received, int(message_id))


@router.get(
    "/messages/{message_id}/audio",
    response_class=FileResponse,
    responses={**_ERRORS, 200: {"content": {"audio/wav": {}}}, 206: {"description": "a range"}},
)
async def message_audio(
    message_id: int, request: Request, app: Services, viewer: SignedIn
) -> FileResponse:
    """The message's audio (WAV; play right), with Range support. Playing marks the message
    played for every member, as on the phone; a request for a later part of the file (a
    seek) does not count as another play."""
    if _FIRST_BYTE.match(request.headers.get("range", "bytes=0-")):
        found = await app.messages.listen(message_id, as_member=viewer.ext)
        # None: deleted meanwhile; ask again for the words that say by whom.
        _, path = found or await app.messages.audio(message_id, as_member=viewer.ext)
    else:
        _, path = await app.messages.audio(message_id, as_member=viewer.ext)
    return FileResponse(path, media_type="audio/wav")


@router.get(
    "/messages/{message_id}/download",
    response_class=FileResponse,
    responses={**_ERRORS, 200: {"content": {"audio/mpeg": {}, "audio/wav": {}}}},
)
async def download_message(
    message_id: int,
    app: Services,
    viewer: SignedIn,
    format: Literal["mp3", "wav"] = "mp3",
) -> FileResponse:
    """The message as an MP3 or WAV attachment (download right); audited as a download."""
    dst = app.files.scratch_file(f".{format}")
    try:
        await app.messages.export(message_id, as_member=viewer.ext, fmt=format, dst=dst)
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    return FileResponse(
        dst,
        media_type=_MEDIA_TYPES[format],
        filename=f"message-{message_id}.{format}",
        background=BackgroundTask(dst.unlink, missing_ok=True),
    )


@router.delete("/messages/{message_id}", response_model=ActionOut, responses=_ERRORS)
async def delete_message(message_id: int, app: Services, viewer: Changing) -> dict[str, Any]:
    """Delete for everyone with access (delete right). 409 when another member deleted it
    first (the words say who and when)."""
    result = await app.messages.delete(message_id, as_member=viewer.ext)
    return _action("delete", message_id, result, already_is_conflict=True)


@router.post("/messages/{message_id}/restore", response_model=ActionOut, responses=_ERRORS)
async def restore_message(message_id: int, app: Services, viewer: Changing) -> dict[str, Any]:
    """Undelete a deleted message for everyone (admins only, within the restore window)."""
    result = await app.messages.restore(message_id, as_member=viewer.ext)
    return _action("restore", message_id, result, already_is_conflict=True)


@router.post("/messages/{message_id}/played", response_model=ActionOut, responses=_ERRORS)
async def mark_played(message_id: int, app: Services, viewer: Changing) -> dict[str, Any]:
    """Mark played for every member (play right). Already played: nothing changes."""
    result = await app.messages.mark_played(message_id, as_member=viewer.ext)
    return _action("mark-played", message_id, result)


@router.delete("/messages/{message_id}/played", response_model=ActionOut, responses=_ERRORS)
async def mark_new(message_id: int, app: Services, viewer: Changing) -> dict[str, Any]:
    """Mark new (unplayed) for every member (play right). Already new: nothing changes."""
    result = await app.messages.mark_new(message_id, as_member=viewer.ext)
    return _action("mark-new", message_id, result)


@router.post("/messages/{message_id}/share", response_model=ShareOut, responses=_ERRORS)
async def share_message(
    message_id: int, body: ShareIn, app: Services, viewer: Changing
) -> dict[str, Any]:
    """Copy the message into inbox ``to`` with its own played state (share right)."""
    copy = await app.messages.share(message_id, as_member=viewer.ext, to=body.to, note=body.note)
    return {
        "text": f"message {message_id} shared to inbox {body.to} as message {copy.id}",
        "message": message_json(copy),
    }


def _action(
    action: str, message_id: int, result: ActionResult, *, already_is_conflict: bool = False
) -> dict[str, Any]:
    if result.outcome is Outcome.GONE or result.message is None:
        raise NotFoundError(f"message {message_id} was deleted meanwhile")
    done = result.outcome is Outcome.DONE
    text = action_text(action, message_id, result, done=done)
    if not done and already_is_conflict:
        raise ConflictError(text)
    return {"text": text, "changed": done, "message": message_json(result.message)}


# -- greetings --------------------------------------------------------------------------------


@router.get("/inboxes/{ext}/greetings", response_model=list[GreetingOut], responses=_ERRORS)
async def list_greetings(ext: str, app: Services, viewer: SignedIn) -> list[dict[str, Any]]:
    """The inbox's greetings in force, for who records them (the owner of a user's or common
    area's inbox; an admin for a queue, auto receptionist or group)."""
    return [greeting_json(g) for g in await app.greetings.list(ext, as_member=viewer.ext)]


@router.get(
    "/inboxes/{ext}/greetings/{kind}",
    response_class=FileResponse,
    responses={**_ERRORS, 200: {"content": {"audio/wav": {}}}},
)
async def greeting_audio(ext: str, kind: str, app: Services, viewer: SignedIn) -> FileResponse:
    """The greeting in force, to listen to (WAV)."""
    return FileResponse(
        await app.greetings.file_for(ext, kind, as_member=viewer.ext), media_type="audio/wav"
    )


@router.put(
    "/inboxes/{ext}/greetings/{kind}",
    response_model=GreetingOut,
    responses={**_ERRORS, 413: {"description": f"larger than {MAX_UPLOAD_BYTES} bytes"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
            "description": "an audio file in any common format (WAV, MP3, OGG, M4A, ...)",
        }
    },
)
async def upload_greeting(
    ext: str, kind: str, request: Request, app: Services, viewer: Changing
) -> dict[str, Any]:
    """Make the request's body (an audio file) the inbox's ``kind`` greeting: converted,
    levelled and trimmed; the greeting in force stays until the new one is stored. Refused
    with 413 before it is read when it is declared larger than the limit."""
    app.greetings.kinds_for(ext, as_member=viewer.ext)  # refuse a stranger before reading
    src = await receive_upload(request, app)
    try:
        greeting = await app.greetings.upload(
            ext, kind, src, as_member=viewer.ext, shown_as=upload_name(request)
        )
    finally:
        src.unlink(missing_ok=True)
    return greeting_json(greeting)


def upload_name(request: Request) -> str:
    """How an error names an uploaded body: the client's ``X-Filename`` (URL-encoded, quoted
    and shortened; never used as a path), else "the uploaded file" — never the scratch file."""
    given = unquote(request.headers.get("x-filename", ""))
    given = "".join(ch for ch in given if ch.isprintable())[:100]
    return repr(given) if given else "the uploaded file"


@router.delete("/inboxes/{ext}/greetings/{kind}", response_model=GreetingOut, responses=_ERRORS)
async def remove_greeting(ext: str, kind: str, app: Services, viewer: Changing) -> dict[str, Any]:
    """Remove a greeting: callers hear the system greeting (or the next in line) again."""
    return greeting_json(await app.greetings.remove(ext, kind, as_member=viewer.ext))


async def receive_upload(request: Request, app: App, *, limit: int = MAX_UPLOAD_BYTES) -> Path:
    """The request's body in a scratch file this server names (the caller deletes it).

    TooLargeError before anything is read when ``Content-Length`` is over ``limit``, and as
    soon as more than ``limit`` bytes have come otherwise; InvalidInputError when empty."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLargeError(_too_large(limit))
    dst = app.files.scratch_file(".upload")
    received = 0
    try:
        with dst.open("wb") as out:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise TooLargeError(_too_large(limit))
                if chunk:
                    await asyncio.to_thread(out.write, chunk)
        if received == 0:
            raise InvalidInputError("the upload is empty; send an audio file as the body")
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    return dst


def _too_large(limit: int) -> str:
    return (
        f"the file is larger than {limit // (1024 * 1024)} MB; "
        "upload a shorter recording or a compressed format (MP3, OGG)"
    )


# -- live events ------------------------------------------------------------------------------


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, 401: _ERRORS[401]},
)
async def events(request: Request, viewer: SignedIn) -> StreamingResponse:
    """Server-sent events: one ``{"id", "inbox", "message", "action"}`` per change to an inbox
    the member sees (``play``, ``mark-new``, ``delete``, ``restore``, ``deposit``,
    ``share-in``, ``download``, ...), within a second or so of the change, from any channel;
    ``{"action": "directory", "rev": N}`` when the directory changed."""
    hub = web_context(request).hub

    async def check() -> bool:
        return await still_signed_in(request)

    async def body() -> AsyncIterator[str]:
        async for text in event_stream(hub, viewer, still_signed_in=check):
            yield text

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
