"""Which inbox an INVITE is for, and why the call reached voicemail.

Precedence, first that names a user wins:

1. RFC 4458: a ``target`` parameter on the Request-URI; its ``cause`` gives the reason.
2. History-Info (RFC 7044), entries ordered by ``index``. The last entry is the hop that reached
   voicemail; the target is the entry that hop left:

   - the last entry has a ``target`` URI parameter (RFC 4458 inside History-Info): that user;
   - the last entry itself carries an escaped ``Reason`` (it failed, so the hop to voicemail
     was not recorded): that entry;
   - the last entry has a ``cause`` URI parameter (RFC 4458 / RFC 7044 ``cause-param``, which
     sits on the *new* target and says why the previous one was left): the entry it came from,
     named by its ``mp``/``rc``/``np`` parameter, else the entry before it; reason from cause;
   - the last entry names its parent with ``mp``/``rc``/``np`` (RFC 7044): that parent, with
     the reason of the newest ``Reason`` in the parent's branch (a queue's members were busy);
   - otherwise the newest entry carrying an escaped ``Reason`` header, else the second-to-last
     entry with an unknown reason.

3. Diversion (RFC 5806): the topmost value is the most recent diversion.
4. The Request-URI user, then the To user.

The original called number is the first History-Info entry (by index), or the bottom Diversion
value, else the target itself. Users are returned as given (``+1555...``, ``*97``); whether one
is an inbox is for :func:`resolve_inbox` and the caller to decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sipvm.domain.model import Directory, Extension
from sipvm.domain.sip_message import (
    MalformedSipError,
    NameAddr,
    SipRequest,
    parse_name_addr,
    parse_uri,
    split_values,
)


class Reason(StrEnum):
    """Why a call reached voicemail; it chooses the greeting (busy vs unavailable)."""

    BUSY = "busy"
    NO_ANSWER = "no-answer"
    UNAVAILABLE = "unavailable"
    UNCONDITIONAL = "unconditional"
    UNKNOWN = "unknown"


#: Where a target was read from, in precedence order.
Source = Literal["rfc4458", "history-info", "diversion", "request-uri", "to"]


@dataclass(frozen=True)
class Target:
    """The user an INVITE is for, why it came to voicemail, and where that was read from."""

    ext: str
    """The target user as it appears on the wire (not yet checked against the directory)."""
    reason: Reason
    """Why the call came to voicemail; UNKNOWN when the headers do not say."""
    source: Source
    """The header or parameter that named the target."""
    original_called: str
    """The number first dialled, when the headers tell it; else the target itself."""


#: SIP status codes in an RFC 4458 ``cause`` or a ``Reason: SIP;cause=`` (RFC 4458 §3 table).
_CAUSES: Mapping[int, Reason] = {
    302: Reason.UNCONDITIONAL,  # unconditional forwarding
    404: Reason.UNAVAILABLE,  # unknown / not available
    408: Reason.NO_ANSWER,  # no reply
    410: Reason.UNAVAILABLE,
    480: Reason.UNAVAILABLE,  # temporarily unavailable (deflection, immediate response)
    486: Reason.BUSY,  # user busy
    487: Reason.NO_ANSWER,  # deflection during alerting: it rang, nobody took it
    502: Reason.UNAVAILABLE,
    503: Reason.UNAVAILABLE,  # not reachable
    600: Reason.BUSY,  # busy everywhere
}

#: RFC 5806 Diversion ``reason`` values.
_DIVERSION_REASONS: Mapping[str, Reason] = {
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

#: History-Info parameters that name the index of the entry an entry was derived from.
_PARENT_PARAMS = ("mp", "rc", "np")


def reason_for_cause(cause: str | int | None) -> Reason:
    """The reason a SIP status code in a ``cause`` stands for (UNKNOWN when not a known code)."""
    if isinstance(cause, str):
        cause = int(cause) if cause.strip().isdecimal() else None
    return _CAUSES.get(cause, Reason.UNKNOWN) if cause is not None else Reason.UNKNOWN


def reason_for_diversion(value: str | None) -> Reason:
    """The reason an RFC 5806 Diversion ``reason`` value stands for."""
    return _DIVERSION_REASONS.get((value or "").strip().lower(), Reason.UNKNOWN)


def mailbox_target(request: SipRequest) -> Target | None:
    """The user the request is for (see the module text for the precedence), or None."""
    history = _history_entries(request)
    diversions = _diversions(request)
    original = (history[0].user if history else "") or (
        diversions[-1].uri.user if diversions else ""
    )
    ruri = request.request_uri
    user = _target_param_user(ruri.params.get("target"))
    if user:
        return Target(user, reason_for_cause(ruri.params.get("cause")), "rfc4458", original or user)
    found = _from_history_info(history)
    if found is not None:
        user, reason = found
        return Target(user, reason, "history-info", history[0].user or user)
    if diversions and diversions[0].uri.user:
        top = diversions[0]
        reason = reason_for_diversion(top.params.get("reason"))
        return Target(top.uri.user, reason, "diversion", diversions[-1].uri.user or top.uri.user)
    if ruri.user:
        return Target(ruri.user, Reason.UNKNOWN, "request-uri", ruri.user)
    to_user = request.to.uri.user
    return Target(to_user, Reason.UNKNOWN, "to", to_user) if to_user else None


def resolve_inbox(target: Target, directory: Directory) -> Extension | None:
    """The extension whose number is exactly the target user, or None."""
    return directory.get(target.ext)


@dataclass(frozen=True)
class _HistoryEntry:
    index: tuple[int, ...]
    addr: NameAddr

    @property
    def user(self) -> str:
        return self.addr.uri.user

    @property
    def cause_param(self) -> str | None:
        return self.addr.uri.params.get("cause")

    @property
    def reason_cause(self) -> str | None:
        """The SIP cause of an escaped ``?Reason=SIP;cause=486;text=...`` URI header."""
        return _sip_cause(self.addr.uri.headers.get("reason", ""))

    @property
    def parent(self) -> tuple[int, ...] | None:
        for name in _PARENT_PARAMS:
            index = _index(self.addr.params.get(name))
            if index is not None:
                return index
        return None

    def within(self, branch: tuple[int, ...]) -> bool:
        return self.index[: len(branch)] == branch


def _history_entries(request: SipRequest) -> list[_HistoryEntry]:
    """The parseable History-Info entries, ordered by index.

    Entries are appended in order anyway (RFC 7044 §10.3); sorting repairs proxies that
    prepend. When an index is missing or garbled, header order is the only order we have.
    """
    addrs: list[NameAddr] = []
    for value in request.header_values("history-info"):
        try:
            addrs.append(parse_name_addr(value))
        except MalformedSipError:
            continue  # one garbled entry must not hide the others
    entries: list[_HistoryEntry] = []
    for addr in addrs:
        index = _index(addr.params.get("index"))
        if index is None:
            return [_HistoryEntry((position,), addr) for position, addr in enumerate(addrs, 1)]
        entries.append(_HistoryEntry(index, addr))
    return sorted(entries, key=lambda entry: entry.index)


def _from_history_info(entries: list[_HistoryEntry]) -> tuple[str, Reason] | None:
    """(user, reason) per the History-Info rules in the module text, or None."""
    if not entries:
        return None
    last = entries[-1]
    user = _target_param_user(last.addr.uri.params.get("target"))
    if user:
        return user, reason_for_cause(last.cause_param)
    if last.reason_cause is not None:
        return _named(last.user, reason_for_cause(last.reason_cause))
    parent = _entry_at(entries, last.parent)
    if last.cause_param is not None:
        came_from = parent or (entries[-2] if len(entries) > 1 else None)
        if came_from is not None:
            return _named(came_from.user, reason_for_cause(last.cause_param))
    if parent is not None:
        branch = [e for e in entries[:-1] if e.within(parent.index) and e.reason_cause]
        reason = reason_for_cause(branch[-1].reason_cause) if branch else Reason.UNKNOWN
        return _named(parent.user, reason)
    for entry in reversed(entries):
        if entry.reason_cause is not None:
            return _named(entry.user, reason_for_cause(entry.reason_cause))
    return _named(entries[-2].user, Reason.UNKNOWN) if len(entries) > 1 else None


def _named(user: str, reason: Reason) -> tuple[str, Reason] | None:
    # An entry without a user (``sip:pbx.example.com``) names no inbox: let the next source try.
    return (user, reason) if user else None


def _entry_at(entries: list[_HistoryEntry], index: tuple[int, ...] | None) -> _HistoryEntry | None:
    return next((entry for entry in entries if entry.index == index), None)


def _index(text: str | None) -> tuple[int, ...] | None:
    """``"1.1.2"`` → ``(1, 1, 2)``; None when absent or not dotted digits."""
    parts = (text or "").strip().split(".")
    if not all(part.isascii() and part.isdecimal() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def _sip_cause(reason_header: str) -> str | None:
    """The cause of the first ``SIP`` protocol value of a Reason header (RFC 3326).

    Q.850 values carry ISDN cause codes, not SIP status codes, so they are not read as one.
    """
    for value in split_values(reason_header):
        protocol, _, params = value.partition(";")
        if protocol.strip().upper() != "SIP":
            continue
        for param in params.split(";"):
            name, _, cause = param.partition("=")
            if name.strip().lower() == "cause" and cause.strip():
                return cause.strip()
    return None


def _diversions(request: SipRequest) -> list[NameAddr]:
    """Diversion values, most recent (topmost) first; garbled values are skipped."""
    values: list[NameAddr] = []
    for value in request.header_values("diversion"):
        try:
            values.append(parse_name_addr(value))
        except MalformedSipError:
            continue
    return values


def _target_param_user(value: str | None) -> str:
    """The user of an RFC 4458 ``target`` value (already unescaped: ``sip:2001@pbx``).

    A value without a scheme (``target=2001``) is taken as the user itself: some PBXs write it
    that way, and the user is all that matters here.
    """
    if not value:
        return ""
    if ":" not in value:
        return value.partition("@")[0].strip()
    try:
        return parse_uri(value).user
    except MalformedSipError:
        return ""
