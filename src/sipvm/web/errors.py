"""Errors on the web: each ``SipvmError`` becomes a status and the service's own words.

Under ``/api/`` the body is ``{"error": "..."}`` (CONTRACT.md); elsewhere a small HTML page
with the same words. Errors FastAPI or Starlette raise themselves (an unknown path, a missing
field, a wrong method) are answered the same way.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from sipvm.errors import (
    ConflictError,
    InvalidFieldsError,
    InvalidInputError,
    LockedError,
    NotFoundError,
    NotPermittedError,
    NotSignedInError,
    SipvmError,
    TooLargeError,
)

log = logging.getLogger(__name__)

#: Most specific first: the first class an error is an instance of gives its status.
STATUS: tuple[tuple[type[SipvmError], int], ...] = (
    (TooLargeError, 413),
    (InvalidInputError, 400),
    (NotSignedInError, 401),
    (LockedError, 429),
    (NotPermittedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
)

_REASONS: Mapping[int, str] = {
    400: "Not valid",
    401: "Not signed in",
    403: "Not permitted",
    404: "Not found",
    405: "Not allowed",
    409: "Already done",
    413: "Too large",
    429: "Locked",
    500: "Server error",
}


def status_of(exc: SipvmError) -> int:
    """The HTTP status of ``exc`` (500 for an error with no place in the table)."""
    for cls, status in STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def error_response(
    request: Request, status: int, text: str, fields: dict[str, str] | None = None
) -> Response:
    """``{"error": text}`` for the API (with ``"fields"``: each named field's problem, when the
    error names fields), a small HTML page otherwise."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 and _is_api(request) else None
    if _is_api(request):
        body: dict[str, object] = {"error": text}
        if fields:
            body["fields"] = fields
        return JSONResponse(body, status_code=status, headers=headers)
    title = _REASONS.get(status, "Error")
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} — sipvm</title></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="error">{html.escape(text)}</p>'
        '<p><a href="/">Back to the portal</a></p></body></html>'
    )
    return HTMLResponse(page, status_code=status)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def install_error_handlers(web: FastAPI) -> None:
    """Answer every error raised by a route (or by the framework) in the forms above."""

    async def sipvm_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SipvmError)
        status = status_of(exc)
        if status == 500:
            log.error("%s %s failed: %s", request.method, request.url.path, exc)
        fields = exc.fields if isinstance(exc, InvalidFieldsError) else None
        return error_response(request, status, str(exc), fields)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        text = exc.detail if isinstance(exc.detail, str) else _REASONS.get(exc.status_code, "")
        if exc.status_code == 404 and text == "Not Found":
            text = f"there is no page {request.url.path}"
        elif exc.status_code == 405:
            text = f"{request.method} is not allowed on {request.url.path}"
        response = error_response(request, exc.status_code, text)
        for name, value in (exc.headers or {}).items():
            response.headers.setdefault(name, value)
        return response

    async def invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(request, 400, _validation_text(exc))

    web.add_exception_handler(SipvmError, sipvm_error)
    web.add_exception_handler(HTTPException, http_error)
    web.add_exception_handler(RequestValidationError, invalid_request)


def _validation_text(exc: RequestValidationError) -> str:
    """One sentence per problem FastAPI found in the request, e.g. ``body.ext: Field
    required``."""
    parts = []
    for problem in exc.errors():
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {problem.get('msg', 'not valid')}")
    return "the request is not valid: " + "; ".join(parts)
