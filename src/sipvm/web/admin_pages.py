"""The admins' pages: every inbox; per inbox its access member list, owner policy, roles, hours,
greetings, messages and deleted messages; a message's audit trail; admins and roles.

Plain HTML forms (they work without script) post with the session's CSRF token (the hidden
``csrf`` field) to the routes here, which call the same services as the admin API: the services
refuse anyone but an admin, nothing here checks a right. A save that works redirects back to
the page (303) saying what was saved. One that does not shows the page again with what was
typed and each problem next to its field (400), or with the directory as it now is and why
(409) when someone else changed it since the page was loaded (each form carries the revision
it was made on).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from sipvm.app import App
from sipvm.audio.greeting import MAX_UPLOAD_BYTES
from sipvm.domain.messages import Outcome
from sipvm.errors import (
    ConflictError,
    InvalidFieldsError,
    InvalidInputError,
    NotSignedInError,
    TooLargeError,
)
from sipvm.web.admin_views import (
    SAVED,
    MemberRow,
    inbox_view,
    member_rows_of,
    message_view,
    people_view,
)
from sipvm.web.auth import changing, signed_in
from sipvm.web.context import services
from sipvm.web.render import STATIC, render
from sipvm.web.viewer import Viewer

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 50
"""Messages listed on one page of an inbox's admin page."""

Changer = Annotated[Viewer, Depends(changing)]


async def _viewer_or_none(request: Request) -> Viewer | None:
    try:
        return await signed_in(request)
    except NotSignedInError:
        return None


def _to_sign_in(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(target, safe='')}", status_code=303)


def _back(path: str, saved: str, anchor: str = "") -> RedirectResponse:
    return RedirectResponse(f"{path}?saved={saved}{'#' + anchor if anchor else ''}", 303)


def _inbox_path(ext: str) -> str:
    return f"/admin/inboxes/{quote(ext, safe='')}"


# -- every inbox ----------------------------------------------------------------------------


@router.get("/admin")
async def admin_home(request: Request) -> Response:
    """Every inbox of every kind, with its counts."""
    viewer = await _viewer_or_none(request)
    if viewer is None:
        return _to_sign_in(request)
    found = await services(request).admin.inboxes(by=viewer.ext)
    return render(request, "admin_inboxes.html", viewer, nav="admin", inboxes=found)


# -- one inbox ------------------------------------------------------------------------------


@router.get("/admin/inboxes/{ext}")
async def inbox_page(
    request: Request,
    ext: str,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    saved: str = "",
) -> Response:
    """Everything an admin sets or sees about one inbox."""
    viewer = await _viewer_or_none(request)
    if viewer is None:
        return _to_sign_in(request)
    return await _render_inbox(request, viewer, ext, page=page, notice=SAVED.get(saved, ""))


async def _render_inbox(
    request: Request,
    viewer: Viewer,
    ext: str,
    *,
    page: int = 1,
    notice: str = "",
    problem: str = "",
    errors: Mapping[str, str] | None = None,
    rows: list[MemberRow] | None = None,
    policy: Mapping[str, bool] | None = None,
    status: int = 200,
) -> Response:
    view = await inbox_view(
        services(request),
        viewer,
        ext,
        page=page,
        page_size=PAGE_SIZE,
        rows=rows,
        policy=policy,
    )
    return render(
        request,
        "admin_inbox.html",
        viewer,
        nav="admin",
        status=status,
        notice=notice,
        problem=problem,
        errors=dict(errors or {}),
        **vars(view),
    )


@router.post("/admin/inboxes/{ext}/members")
async def save_members(request: Request, ext: str, viewer: Changer) -> Response:
    """The member list as ticked on the page: one new directory revision, or nothing."""
    form = await request.form()
    rows = member_rows_of(form)
    kept = [r for r in rows if not r.remove and (r.key != "new" or r.member)]
    entries = [{"member": r.member, "rights": sorted(r.rights)} for r in kept]
    try:
        await services(request).access.set_members(ext, entries, by=viewer.ext, rev=_rev(form))
    except InvalidFieldsError as exc:
        errors = _member_errors(exc.fields, [r.key for r in kept])
        return await _render_inbox(
            request, viewer, ext, errors=errors, rows=rows, status=400, problem=_summary(exc)
        )
    except ConflictError as exc:
        return await _render_inbox(request, viewer, ext, problem=str(exc), status=409)
    return _back(_inbox_path(ext), "members", "members")


@router.post("/admin/inboxes/{ext}/policy")
async def save_policy(request: Request, ext: str, viewer: Changer) -> Response:
    """The owner policy as ticked (an unticked box is off)."""
    form = await request.form()
    app = services(request)
    keys = (await app.access.access_list(ext, by=viewer.ext)).policy.keys()
    settings = {key: form.get(f"policy-{key}") == "on" for key in keys}
    try:
        await app.access.set_policy(ext, settings, by=viewer.ext, rev=_rev(form))
    except InvalidFieldsError as exc:
        return await _render_inbox(
            request,
            viewer,
            ext,
            errors=exc.fields,
            policy=settings,
            status=400,
            problem=_summary(exc),
        )
    except ConflictError as exc:
        return await _render_inbox(request, viewer, ext, problem=str(exc), status=409)
    return _back(_inbox_path(ext), "policy", "policy")


@router.post("/admin/inboxes/{ext}/hours")
async def save_hours(request: Request, ext: str, viewer: Changer) -> Response:
    """Force open or closed, or back to the schedule."""
    form = await request.form()
    try:
        await services(request).admin.set_hours(ext, form.get("override"), by=viewer.ext)
    except InvalidFieldsError as exc:
        return await _render_inbox(
            request, viewer, ext, errors=exc.fields, status=400, problem=_summary(exc)
        )
    return _back(_inbox_path(ext), "hours", "hours")


async def _small_enough(request: Request) -> None:
    """Refuse an upload declared larger than the limit before anything of it is read (this
    runs before the CSRF check, which reads the form)."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise InvalidInputError("the upload must say its length (Content-Length); try again")
    if int(declared) > MAX_UPLOAD_BYTES + 64 * 1024:  # the form's own fields and boundaries
        raise TooLargeError(
            f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; "
            "upload a shorter recording or a compressed format (MP3, OGG)"
        )


@router.post("/admin/inboxes/{ext}/greetings/{kind}", dependencies=[Depends(_small_enough)])
async def upload_greeting(request: Request, ext: str, kind: str, viewer: Changer) -> Response:
    """A new greeting of a queue, AR or group from the form's file."""
    app = services(request)
    app.greetings.kinds_for(ext, as_member=viewer.ext)  # refuse a stranger before reading more
    upload = (await request.form()).get("file")
    try:
        src = await _spooled(app, upload)
    except InvalidInputError as exc:
        errors = {f"greeting-{kind}": str(exc)}
        return await _render_inbox(request, viewer, ext, errors=errors, status=400)
    assert isinstance(upload, UploadFile)
    try:
        await app.greetings.upload(
            ext, kind, src, as_member=viewer.ext, shown_as=repr(upload.filename or "the file")
        )
    except InvalidInputError as exc:
        errors = {f"greeting-{kind}": str(exc)}
        return await _render_inbox(request, viewer, ext, errors=errors, status=400)
    finally:
        src.unlink(missing_ok=True)
    return _back(_inbox_path(ext), "greeting", f"greeting-{kind}")


@router.post("/admin/inboxes/{ext}/greetings/{kind}/remove")
async def remove_greeting(request: Request, ext: str, kind: str, viewer: Changer) -> Response:
    """Remove a greeting: callers hear the built-in one again."""
    await services(request).greetings.remove(ext, kind, as_member=viewer.ext)
    return _back(_inbox_path(ext), "greeting-removed", f"greeting-{kind}")


@router.post("/admin/messages/{message_id}/restore")
async def restore(request: Request, message_id: int, viewer: Changer) -> Response:
    """Undelete a message for everyone, then back to its inbox's page."""
    result = await services(request).messages.restore(message_id, as_member=viewer.ext)
    saved = "restored" if result.outcome is Outcome.DONE else "not-deleted"
    inbox = result.message.inbox if result.message is not None else ""
    return _back(_inbox_path(inbox), saved, "deleted") if inbox else _back("/admin", saved)


# -- a message ------------------------------------------------------------------------------


@router.get("/admin/messages/{message_id}")
async def message_page(request: Request, message_id: int) -> Response:
    """A message (deleted or not) and its audit trail."""
    viewer = await _viewer_or_none(request)
    if viewer is None:
        return _to_sign_in(request)
    view = await message_view(services(request), viewer, message_id)
    return render(request, "admin_message.html", viewer, nav="admin", **vars(view))


# -- admins and roles -----------------------------------------------------------------------


@router.get("/admin/people")
async def people_page(request: Request, saved: str = "") -> Response:
    """Users with their admin flag; roles with their members."""
    viewer = await _viewer_or_none(request)
    if viewer is None:
        return _to_sign_in(request)
    return await _render_people(request, viewer, notice=SAVED.get(saved, ""))


async def _render_people(
    request: Request,
    viewer: Viewer,
    *,
    notice: str = "",
    problem: str = "",
    errors: Mapping[str, str] | None = None,
    typed: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    view = await people_view(services(request), viewer, typed=typed or {})
    return render(
        request,
        "admin_people.html",
        viewer,
        nav="admin",
        status=status,
        notice=notice,
        problem=problem,
        errors=dict(errors or {}),
        **vars(view),
    )


@router.post("/admin/users/{ext}/admin")
async def save_admin(request: Request, ext: str, viewer: Changer) -> Response:
    """Make a user an admin, or not."""
    form = await request.form()
    admin = form.get("admin") == "true"
    try:
        await services(request).access.set_admin(ext, admin, by=viewer.ext, rev=_rev(form))
    except (InvalidFieldsError, ConflictError) as exc:
        status = 409 if isinstance(exc, ConflictError) else 400
        return await _render_people(request, viewer, problem=str(exc), status=status)
    return RedirectResponse(f"/admin/people?saved=admin#user-{quote(ext, safe='')}", 303)


@router.post("/admin/roles")
async def save_role(request: Request, viewer: Changer) -> Response:
    """A role's members, typed as extensions separated by commas or spaces."""
    form = await request.form()
    role = form.get("role")
    name = role if isinstance(role, str) else ""
    typed = form.get("members")
    text = typed if isinstance(typed, str) else ""
    members = [m for m in text.replace(",", " ").split() if m]
    try:
        await services(request).access.set_role_members(
            name, members, by=viewer.ext, rev=_rev(form)
        )
    except InvalidFieldsError as exc:
        errors = {f"role-{name}": "; ".join(_role_problems(exc.fields))}
        return await _render_people(
            request, viewer, errors=errors, typed={name: text}, status=400, problem=_summary(exc)
        )
    except ConflictError as exc:
        return await _render_people(request, viewer, problem=str(exc), status=409)
    return RedirectResponse("/admin/people?saved=role", 303)


@router.get("/admin/admin.css")
async def style_sheet() -> Response:
    """The admin pages' style sheet (their additions to ``portal.css``)."""
    return FileResponse(STATIC / "admin.css", media_type="text/css")


# -- forms ----------------------------------------------------------------------------------


def _rev(form: FormData) -> int | None:
    """The directory revision the page showed (its forms carry it), if given."""
    value = form.get("rev")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _summary(exc: InvalidFieldsError) -> str:
    count = len(exc.fields)
    return f"Nothing was saved: {count} problem{'s' if count != 1 else ''}, shown below."


def _member_errors(fields: Mapping[str, str], keys: list[str]) -> dict[str, str]:
    """``members[2].rights`` → ``right-<row key>``: each problem next to its row's field."""
    errors: dict[str, str] = {}
    for field, text in fields.items():
        name = field
        if field.startswith("members[") and "]" in field:
            index, _, rest = field.removeprefix("members[").partition("]")
            if index.isdigit() and int(index) < len(keys):
                key = keys[int(index)]
                name = f"right-{key}" if rest == ".rights" else f"member-{key}"
        errors[name] = text if name not in errors else f"{errors[name]}; {text}"
    return errors


def _role_problems(fields: Mapping[str, str]) -> list[str]:
    return list(fields.values())  # each names the extension it is about


async def _spooled(app: App, upload: Any) -> Path:
    """The form's file in a scratch file this server names (the caller deletes it)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise InvalidInputError("choose an audio file to upload")
    dst = app.files.scratch_file(".upload")
    received = 0
    try:
        with dst.open("wb") as out:
            while chunk := await upload.read(1024 * 1024):
                received += len(chunk)
                if received > MAX_UPLOAD_BYTES:
                    raise TooLargeError(
                        f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
                    )
                out.write(chunk)
        if received == 0:
            raise InvalidInputError("the file is empty; choose an audio file")
    except BaseException:
        dst.unlink(missing_ok=True)
        raise
    return dst
