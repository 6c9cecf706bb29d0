"""What the pjsip thread tells asyncio: one frozen event per thing that happened to a call.

Events name calls by the engine's own key (a counter), never by pjsua2 call id, which is
recycled among only four values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IncomingInvite:
    """A new INVITE, not answered yet."""

    key: int
    raw: str
    """The whole request as received (request line, headers, body)."""
    source: str
    """``ip:port`` of the sender."""


@dataclass(frozen=True)
class MediaActive:
    """The call's audio is flowing: prompts can be played and the caller recorded."""

    key: int


@dataclass(frozen=True)
class CallConfirmed:
    """The caller's ACK arrived: the call is established and its dialog can start.

    Audio can flow before this (``MediaActive`` comes with our SDP answer), but a caller that
    never ACKs is not there: scanners and broken peers answer nothing.
    """

    key: int


@dataclass(frozen=True)
class DtmfDigit:
    """The caller pressed a key (RFC 4733 or SIP INFO)."""

    key: int
    digit: str


@dataclass(frozen=True)
class PlaybackEnded:
    """The player started with ``token`` reached its end."""

    key: int
    token: int


@dataclass(frozen=True)
class TransferProgress:
    """A NOTIFY about a REFER we sent: the sipfrag status, and whether it is the last."""

    key: int
    status: int
    final: bool


@dataclass(frozen=True)
class CallEnded:
    """The call is over (either side hung up, or it was rejected)."""

    key: int
    status: int


CallEvent = (
    IncomingInvite
    | MediaActive
    | CallConfirmed
    | DtmfDigit
    | PlaybackEnded
    | TransferProgress
    | CallEnded
)
