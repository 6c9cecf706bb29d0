"""The pjsua2 subclasses of the engine: a call, a player and the account, whose callbacks
become our events.

Each callback does one thing: it turns what happened into one of our events, or hands the
engine plain values, through :class:`EngineHooks`. Callbacks run in the pjsip thread, except a
player's ``onEof2`` (a pjmedia thread), which only posts its event to the pjsip thread's job
queue. They carry our own call key, never a pjsua2 Call object: ids recycle.
"""

from __future__ import annotations

from typing import Any, Protocol

import pjsua2 as pj

from sipvm.sip.dialogs import DialogId, dialog_of_answer, sent_message
from sipvm.sip.events import (
    CallConfirmed,
    CallEnded,
    CallEvent,
    DtmfDigit,
    MediaActive,
    PlaybackEnded,
    TransferProgress,
)
from sipvm.sip.message_summary import log_answer


class EngineHooks(Protocol):
    """What the callbacks tell the engine (``PjEngine``); in the pjsip thread unless said."""

    def emit(self, event: CallEvent) -> None:
        """Hand ``event`` to asyncio."""
        ...

    def emit_later(self, event: CallEvent) -> None:
        """From any thread: have the pjsip thread hand ``event`` to asyncio, in turn."""
        ...

    def incoming(self, account: Any, prm: Any) -> None:
        """A new INVITE reached ``account`` (``onIncomingCall``'s parameter)."""
        ...

    def call_gone(self, key: int) -> None:
        """Call ``key`` is DISCONNECTED: drop it."""
        ...

    def request_answered(self) -> None:
        """A request sent outside calls (a NOTIFY) got its final answer or timed out."""
        ...


class PjCall(pj.Call):  # type: ignore[misc]
    """A pjsua2 call whose callbacks become events; lives only in the pjsip thread."""

    def __init__(
        self, hooks: EngineHooks, account: Any, call_id: int, key: int, source: str
    ) -> None:
        super().__init__(account, call_id)
        self.hooks = hooks
        self.key = key
        self.source = source
        self.audio: Any = None
        self.audio_index = -1
        self.player: Any = None
        self.recorder: Any = None
        self.media_reported = False
        self.answered_at: float | None = None
        """``time.monotonic()`` of the 200 OK; None until answered."""
        self.confirmed = False
        self.rtp_seen = False
        self.ending = False
        self.dialog: DialogId | None = None
        """How pjsip finds this call's dialog (taken from our 200 OK)."""

    def onCallState(self, prm: Any) -> None:
        ci = self.getInfo()
        if ci.state == pj.PJSIP_INV_STATE_CONNECTING and self.dialog is None:
            self.dialog = dialog_of_answer(str(ci.callIdString), sent_message(prm.e))
        elif ci.state == pj.PJSIP_INV_STATE_CONFIRMED and not self.confirmed:
            self.confirmed = True
            self.hooks.emit(CallConfirmed(self.key))
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # Drop media first (closes a recording's WAV), then the call itself (trap 3, 6).
            self.player = None
            self.recorder = None
            self.audio = None
            self.hooks.call_gone(self.key)
            self.hooks.emit(CallEnded(self.key, int(ci.lastStatusCode)))

    def onCallMediaState(self, prm: Any) -> None:
        ci = self.getInfo()
        for mi in ci.media:  # ci held in a local: iterating a temporary reads freed memory
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.audio = self.getAudioMedia(mi.index)
                self.audio_index = int(mi.index)
                if not self.media_reported:
                    self.media_reported = True
                    self.hooks.emit(MediaActive(self.key))
                return

    def onDtmfDigit(self, prm: Any) -> None:
        self.hooks.emit(DtmfDigit(self.key, str(prm.digit)))

    def onCallTransferStatus(self, prm: Any) -> None:
        self.hooks.emit(TransferProgress(self.key, int(prm.statusCode), bool(prm.finalNotify)))
        prm.cont = not prm.finalNotify


class PjPlayer(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A player that reports its end; ``onEof2`` runs on a pjmedia thread, so it only posts."""

    def __init__(self, hooks: EngineHooks, key: int, token: int) -> None:
        super().__init__()
        self.hooks = hooks
        self.key = key
        self.token = token

    def onEof2(self) -> None:
        # Capture plain values only: the player must not be referenced from another thread.
        self.hooks.emit_later(PlaybackEnded(self.key, self.token))


class PjAccount(pj.Account):  # type: ignore[misc]
    """The worker's one account: it takes every INVITE and sends the NOTIFYs."""

    def __init__(self, hooks: EngineHooks) -> None:
        super().__init__()
        self.hooks = hooks

    def onIncomingCall(self, prm: Any) -> None:
        self.hooks.incoming(self, prm)

    def onSendRequest(self, prm: Any) -> None:
        # The final answer to a NOTIFY we sent (or its timeout): only worth a log line.
        self.hooks.request_answered()
        log_answer(prm)
