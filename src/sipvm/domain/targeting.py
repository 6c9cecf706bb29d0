"""Which inbox an INVITE is for, and why the call reached voicemail.

Precedence, first that names a user wins:
1. RFC 4458: a ``target`` parameter on the Request-URI (``cause`` gives the reason).
2. History-Info (RFC 7044): entries sorted by ``index``; the target is the newest entry that
   carries a cause (a ``cause`` URI parameter, RFC 4458, or an escaped ``Reason`` header);
   without any cause, the entry before the last one (the last is voicemail itself).
3. Diversion (RFC 5806): the topmost value is the most recent diversion.
4. The Request-URI user, then the To user.
The original called number is the first History-Info entry or the bottom Diversion value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sipvm.domain.model import Directory, Extension
from sipvm.domain.sip_message import MalformedSipError, SipRequest, parse_name_addr, parse_uri


class Reason(StrEnum):
    """Why a call reached voicemail; it chooses the greeting (busy vs unavailable)."""

    BUSY = "busy"
    NO_ANSWER = "no-answer"
    UNAVAILABLE = "unavailable"
    UNCONDITIONAL = "unconditional"
    UNKNOWN = "unknown"


Source = Literal["rfc4458", "history-info", "diversion", "request-uri", "to"]


@dataclass(frozen=True)
class Target:
    """The inbox user an INVITE is for."""

    ext: str
    reason: Reason
    source: Source
    original_called: str


#: SIP response codes in a ``cause`` (RFC 4458 §3, RFC 7044 ``Reason``).
_CAUSES = {
    486: Reason.BUSY,
    600: Reason.BUSY,
    408: Reason.NO_ANSWER,
    487: Reason.NO_ANSWER,
    480: Reason.UNAVAILABLE,
    404: Reason.UNAVAILABLE,
    410: Reason.UNAVAILABLE,
    502: Reason.UNAVAILABLE,
    503: Reason.UNAVAILABLE,
    302: Reason.UNCONDITIONAL,
}
#: RFC 5806 Diversion ``reason`` values.
_DIVERSION = {
    "user-busy": Reason.BUSY,
    "no-answer": Reason.NO_ANSWER,
    "unconditional": Reason.UNCONDITIONAL,
    "unavailable": Reason.UNAVAILABLE,
    "unknown": Reason.UNAVAILABLE,
    "deflection": Reason.UNAVAILABLE,
    "follow-me": Reason.UNAVAILABLE,
    "time-of-day": Reason.UNAVAILABLE,
    "do-not-disturb": Reason.UNAVAILABLE,
    "out-of-service": Reason.UNAVAILABLE,
    "away": Reason.UNAVAILABLE,
}
_CAUSE_IN_REASON = re.compile(r"cause\s*=\s*(\d{3})", re.IGNORECASE)


def reason_for_cause(cause: str | int | None) -> Reason:
    """The reason a SIP status code in a ``cause`` stands for."""
    try:
        return _CAUSES.get(int(cause), Reason.UNKNOWN) if cause is not None else Reason.UNKNOWN
    except ValueError:
        return Reason.UNKNOWN


def mailbox_target(request: SipRequest) -> Target | None:
    """The inbox user the request is for (see the module text for the precedence)."""
    ruri = request.request_uri
    if "target" in ruri.params:
        try:
            user = parse_uri(ruri.params["target"]).user
        except MalformedSipError:
            user = ""
        if user:
            original = _history_original(request) or user
            reason = reason_for_cause(ruri.params.get("cause"))
            return Target(user, reason, "rfc4458", original)
    found = _from_history_info(request)
    if found is not None:
        return found
    found = _from_diversion(request)
    if found is not None:
        return found
    if ruri.user:
        return Target(ruri.user, Reason.UNKNOWN, "request-uri", ruri.user)
    try:
        to_user = request.to.uri.user
    except MalformedSipError:
        return None
    return Target(to_user, Reason.UNKNOWN, "to", to_user) if to_user else None


def resolve_inbox(target: Target, directory: Directory) -> Extension | None:
    """The extension whose number the target names, if any."""
    return directory.get(target.ext)


def _history_entries(
    request: SipRequest,
) -> list[tuple[tuple[int, ...], str, str | None, bool]]:
    """(index, user, cause, cause_is_rfc4458) of each History-Info entry, by index.

    An RFC 4458 ``cause`` URI parameter sits on the *new* target (``voicemail;cause=486``:
    the previous entry was busy); an escaped ``Reason`` header (RFC 7044) sits on the entry
    that failed.
    """
    entries = []
    for position, value in enumerate(request.header_values("history-info")):
        try:
            addr = parse_name_addr(value)
        except MalformedSipError:
            continue
        index_text = addr.params.get("index", str(position + 1))
        try:
            index = tuple(int(p) for p in index_text.split("."))
        except ValueError:
            index = (position + 1,)
        cause = addr.uri.params.get("cause")
        rfc4458 = cause is not None
        if cause is None:
            reason_header = next(
                (v for k, v in addr.uri.headers.items() if k.lower() == "reason"), None
            )
            if reason_header:
                m = _CAUSE_IN_REASON.search(reason_header)
                cause = m.group(1) if m else None
        entries.append((index, addr.uri.user, cause, rfc4458))
    entries.sort(key=lambda e: e[0])
    return entries


def _history_original(request: SipRequest) -> str | None:
    entries = _history_entries(request)
    return entries[0][1] if entries else None


def _from_history_info(request: SipRequest) -> Target | None:
    entries = _history_entries(request)
    if len(entries) < 2:
        return None
    for i in range(len(entries) - 1, -1, -1):
        _, user, cause, rfc4458 = entries[i]
        if cause is None:
            continue
        reason = reason_for_cause(cause)
        target_user = entries[i - 1][1] if rfc4458 and i > 0 else user
        if target_user:
            return Target(target_user, reason, "history-info", entries[0][1] or target_user)
    user = entries[-2][1]
    if not user:
        return None
    return Target(user, Reason.UNKNOWN, "history-info", entries[0][1] or user)


def _from_diversion(request: SipRequest) -> Target | None:
    parsed = []
    for value in request.header_values("diversion"):
        try:
            parsed.append(parse_name_addr(value))
        except MalformedSipError:
            continue
    if not parsed or not parsed[0].uri.user:
        return None
    top = parsed[0]
    reason = _DIVERSION.get(top.params.get("reason", "").lower(), Reason.UNKNOWN)
    return Target(top.uri.user, reason, "diversion", parsed[-1].uri.user or top.uri.user)
