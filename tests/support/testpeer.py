"""A scripted pjsua2 SIP peer for end-to-end tests, run as its own process.

    python -m tests.support.testpeer --script script.json

In ``"mode": "call"`` it places one call (with extra INVITE headers), runs the script's steps
once the call is answered and its media is up, records what it hears, and prints a JSON
report on stdout. In ``"mode": "answer"`` it listens, answers incoming calls (running the same
steps on each), and reports unsolicited MWI NOTIFYs too. ``SCRIPT_EXAMPLE`` below shows every
key; the report is described in :meth:`ScriptedPeer.report`.

Process shape (see shared/PJSUA2_NOTES.md): one Endpoint; the main thread owns pjsua2
(``threadCnt = 0``, ``mainThreadOnly``) and runs the script as plain sequential code that
pumps ``libHandleEvents(10)`` until each step's condition holds. Callbacks only write plain
data into per-call logs. Calls are dropped in ``onCallState(DISCONNECTED)``; players'
``onEof2`` (a media thread) only sets an Event. pjlib logs to fd 1, so fd 1 is pointed at
stderr while pjsua2 runs and the report goes to the saved stdout.

Exit status: 0 when the script ran (whatever SIP answered; a timeout is reported, not an
error), 2 for an invalid script, 1 for any other error (message on stderr; the report, with
``"error"`` set, still goes to stdout).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import functools
import gc
import itertools
import json
import os
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pjsua2 as pj

from sipvm.audio.wav import read_wav_info
from sipvm.errors import InvalidInputError, SipvmError

PUMP_MS: Final = 10
"""How long one ``libHandleEvents`` waits; also the audio level sampling period."""
AUDIO_SPAN_GAP_S: Final = 0.1
"""Loud samples closer than this belong to one span of audio."""
DTMF_METHODS: Final = {
    "rfc4733": pj.PJSUA_DTMF_METHOD_RFC2833,
    "info": pj.PJSUA_DTMF_METHOD_SIP_INFO,
}


# -- the script -----------------------------------------------------------------------------

SCRIPT_EXAMPLE: Final = {
    "mode": "call",
    "bind": "127.0.0.1",
    "port": 0,
    "rtp_port": 0,
    "to": "sip:2001@127.0.0.1:5070",
    "from_user": "1001",
    "from_name": "Alice Example",
    "headers": [
        ["Diversion", "<sip:2001@127.0.0.2>;reason=no-answer"],
        ["P-Asserted-Identity", "<sip:1001@127.0.0.2>"],
    ],
    "steps": [
        {"wait_for_audio": 10},
        {"wait_for_silence": 15, "min_silence": 0.5},
        {"play": "message.wav"},
        {"dtmf": "1#", "method": "rfc4733", "duration_ms": 160, "gap_ms": 100},
        {"dtmf": "2", "method": "info"},
        {"wait": 1.5},
        {"hangup": True},
    ],
    "record": "heard.wav",
    "timeout": 60,
    "follow_refer": False,
    "transfer_hold": 2,
    "codecs": ["PCMA", "PCMU"],
    "silence_level": 10,
    "log_level": 1,
    "user_agent": "sipvm-testpeer",
    "answer_code": 200,
    "ring_seconds": 0,
    "calls": 1,
    "mwi": 0,
}
"""Every key a script may hold (``answer_code`` .. ``mwi`` matter in answer mode only).

Relative paths (``play``, ``record``) are taken from the script file's directory."""

_STEP_KINDS: Final = ("wait", "play", "dtmf", "wait_for_audio", "wait_for_silence", "hangup")
_STEP_OPTIONS: Final = {
    "dtmf": {"method", "duration_ms", "gap_ms"},
    "wait_for_silence": {"min_silence"},
}
_DTMF_KEYS: Final = frozenset("0123456789*#ABCD")


@dataclass(frozen=True)
class Step:
    """One validated step; ``raw`` is the step as written (echoed in the report)."""

    kind: str
    raw: dict[str, Any]
    seconds: float = 0.0
    path: Path | None = None
    play_seconds: float | None = None
    digits: str = ""
    method: str = "rfc4733"
    duration_ms: int = 160
    gap_ms: int = 100
    min_silence: float = 0.5


@dataclass(frozen=True)
class PeerScript:
    """A validated script (see :data:`SCRIPT_EXAMPLE` for the keys and their defaults)."""

    mode: str = "call"
    bind: str = "127.0.0.1"
    port: int = 0
    rtp_port: int = 0
    to: str = ""
    from_user: str = "testpeer"
    from_name: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    steps: tuple[Step, ...] = ()
    record: Path | None = None
    timeout: float = 60.0
    follow_refer: bool = False
    transfer_hold: float = 2.0
    codecs: tuple[str, ...] = ("PCMA", "PCMU")
    silence_level: int = 10
    log_level: int = 1
    user_agent: str = "sipvm-testpeer"
    answer_code: int = 200
    ring_seconds: float = 0.0
    calls: int = 1
    mwi: int = 0


def _typed(data: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = data.get(key, default)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise InvalidInputError(f"{key!r} has the wrong type ({type(value).__name__}: {value!r})")
    return value


def _number(data: dict[str, Any], key: str, default: float, low: float = 0) -> float:
    value = float(_typed(data, key, (int, float), default))
    if value < low:
        raise InvalidInputError(f"{key!r} must be at least {low}, not {value}")
    return value


def _step(raw: Any, base: Path, wav_seconds: Callable[[Path], float]) -> Step:
    if not isinstance(raw, dict):
        raise InvalidInputError(f"a step must be an object, not {raw!r}")
    kinds = [k for k in _STEP_KINDS if k in raw]
    if len(kinds) != 1:
        raise InvalidInputError(f"a step needs exactly one of {', '.join(_STEP_KINDS)}: {raw!r}")
    kind = kinds[0]
    extra = set(raw) - {kind} - _STEP_OPTIONS.get(kind, set())
    if extra:
        raise InvalidInputError(f"unknown keys {sorted(extra)} in step {raw!r}")
    if kind == "hangup":
        if raw[kind] is not True:
            raise InvalidInputError('a hangup step is {"hangup": true}')
        return Step(kind, raw)
    if kind == "play":
        path = base / _typed(raw, kind, str, "")
        return Step(kind, raw, path=path, play_seconds=wav_seconds(path))
    if kind == "dtmf":
        digits = _typed(raw, kind, str, "").upper()
        if not digits or set(digits) - _DTMF_KEYS:
            raise InvalidInputError(f"dtmf needs keys from 0-9 * # A-D, not {raw[kind]!r}")
        method = _typed(raw, "method", str, "rfc4733")
        if method not in DTMF_METHODS:
            raise InvalidInputError(f"dtmf method is 'rfc4733' or 'info', not {method!r}")
        return Step(
            kind,
            raw,
            digits=digits,
            method=method,
            duration_ms=int(_number(raw, "duration_ms", 160, 40)),
            gap_ms=int(_number(raw, "gap_ms", 100, 40)),
        )
    return Step(
        kind, raw, seconds=_number(raw, kind, 0), min_silence=_number(raw, "min_silence", 0.5)
    )


def load_script(path: Path, *, wav_seconds: Callable[[Path], float]) -> PeerScript:
    """Read and validate a JSON script; ``wav_seconds(path)`` measures files to play.

    Raises:
        InvalidInputError: the file is not JSON, a key is unknown, or a value is wrong.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInputError(str(exc)) from None
    if not isinstance(data, dict):
        raise InvalidInputError("the script is a JSON object")
    unknown = set(data) - set(SCRIPT_EXAMPLE)
    if unknown:
        raise InvalidInputError(f"unknown keys {sorted(unknown)}")
    base = path.parent
    d = PeerScript()
    mode = _typed(data, "mode", str, d.mode)
    if mode not in ("call", "answer"):
        raise InvalidInputError(f"mode is 'call' or 'answer', not {mode!r}")
    to = _typed(data, "to", str, d.to)
    # "<sip:...;params>" keeps URI parameters out of the To header's own parameters.
    if mode == "call" and not to.strip("<").startswith(("sip:", "sips:")):
        raise InvalidInputError(f"call mode needs 'to', a SIP URI, not {to!r}")
    headers_raw = _typed(data, "headers", (list, dict), [])
    pairs = list(headers_raw.items()) if isinstance(headers_raw, dict) else headers_raw
    headers: list[tuple[str, str]] = []
    for pair in pairs:
        if not (
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and all(isinstance(x, str) for x in pair)
        ):
            raise InvalidInputError(f"a header is [name, value], not {pair!r}")
        headers.append((pair[0], pair[1]))
    steps_raw = _typed(data, "steps", list, [])
    record = _typed(data, "record", (str, type(None)), None)
    codecs = tuple(str(c).upper() for c in _typed(data, "codecs", list, list(d.codecs)))
    if not codecs or set(codecs) - {"PCMA", "PCMU"}:
        raise InvalidInputError(f"codecs are PCMA and/or PCMU, not {codecs!r}")
    answer_code = int(_number(data, "answer_code", d.answer_code, 180))
    if answer_code > 699 or 200 < answer_code < 300:
        raise InvalidInputError(f"answer_code is 200 or 300..699, not {answer_code}")
    return PeerScript(
        mode=mode,
        bind=_typed(data, "bind", str, d.bind),
        port=int(_number(data, "port", d.port)),
        rtp_port=int(_number(data, "rtp_port", d.rtp_port)),
        to=to,
        from_user=_typed(data, "from_user", str, d.from_user),
        from_name=_typed(data, "from_name", str, d.from_name),
        headers=tuple(headers),
        steps=tuple(_step(raw, base, wav_seconds) for raw in steps_raw),
        record=None if record is None else base / record,
        timeout=_number(data, "timeout", d.timeout, 1),
        follow_refer=_typed(data, "follow_refer", bool, d.follow_refer),
        transfer_hold=_number(data, "transfer_hold", d.transfer_hold),
        codecs=codecs,
        silence_level=int(_number(data, "silence_level", d.silence_level)),
        log_level=int(_number(data, "log_level", d.log_level)),
        user_agent=_typed(data, "user_agent", str, d.user_agent),
        answer_code=answer_code,
        ring_seconds=_number(data, "ring_seconds", d.ring_seconds),
        calls=int(_number(data, "calls", d.calls)),
        mwi=int(_number(data, "mwi", d.mwi)),
    )


# -- the peer -------------------------------------------------------------------------------


class PeerTimeoutError(SipvmError):
    """The script's overall timeout passed."""


@dataclass
class CallLog:
    """Everything observed on one call, as plain data (never pjsua2 objects)."""

    key: int
    direction: str
    remote_uri: str = ""
    request: str | None = None
    source: str | None = None
    status: int | None = None
    reason: str = ""
    provisional: list[int] = field(default_factory=list)
    response: str | None = None
    answered: float | None = None
    ended: float | None = None
    end_status: int | None = None
    end_reason: str = ""
    local_hangup: bool = False
    timed_out: bool = False
    record: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    spans: list[list[float]] = field(default_factory=list)
    last_loud: float | None = None
    loud_now: bool = False
    dtmf: list[dict[str, Any]] = field(default_factory=list)
    refer: list[dict[str, Any]] = field(default_factory=list)
    stepped: bool = False

    def to_json(self, t0: float) -> dict[str, Any]:
        """The call's part of the report; times after answer are offsets from the answer."""
        base = self.answered if self.answered is not None else t0

        def rel(t: float | None, since: float) -> float | None:
            return None if t is None else round(t - since, 3)

        return {
            "direction": self.direction,
            "remote_uri": self.remote_uri,
            "status": self.status,
            "reason": self.reason,
            "provisional": self.provisional,
            "response": self.response,
            "request": self.request,
            "source": self.source,
            "answered_at": rel(self.answered, t0),
            "ended_at": rel(self.ended, t0),
            "disconnect": {
                "status": self.end_status,
                "reason": self.end_reason,
                "by": "local" if self.local_hangup else "remote",
                "timeout": self.timed_out,
            },
            "steps": [
                {**s, "started": rel(s["started"], base), "ended": rel(s["ended"], base)}
                for s in self.steps
            ],
            "audio": [[round(a - base, 3), round(b - base, 3)] for a, b in self.spans],
            "dtmf": [{**d, "at": rel(d["at"], base)} for d in self.dtmf],
            "refer": [{**r, "at": rel(r["at"], base)} for r in self.refer],
            "record": self.record,
        }


class _Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A WAV player whose end is an Event (``onEof2`` runs on a media thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.done = threading.Event()

    def onEof2(self) -> None:
        self.done.set()


class _PeerCall(pj.Call):  # type: ignore[misc]
    """A call whose callbacks fill its :class:`CallLog`; lives only in the main thread."""

    def __init__(self, peer: ScriptedPeer, account: Any, call_id: int, log: CallLog) -> None:
        super().__init__(account, call_id)
        self.peer = peer
        self.log = log
        self.audio: Any = None
        self.recorder: Any = None
        self.player: _Player | None = None

    def _note_response(self, event: Any) -> None:
        """Keep the text of the final response to our INVITE (Retry-After and the like)."""
        if self.log.response is not None or event.type != pj.PJSIP_EVENT_TSX_STATE:
            return
        tsx_state = event.body.tsxState  # each SWIG temporary held in a local (trap 5)
        tsx = tsx_state.tsx
        if (
            tsx.method == "INVITE"
            and int(tsx.statusCode) >= 200
            and tsx_state.type == pj.PJSIP_EVENT_RX_MSG
        ):
            src = tsx_state.src
            self.log.response = str(src.rdata.wholeMsg) or None

    def onCallState(self, prm: Any) -> None:
        # The event that ended a failed INVITE comes with this state change only: the call
        # is dropped below, so no onCallTsxState follows.
        self._note_response(prm.e)
        ci = self.getInfo()
        log, state, now = self.log, ci.state, time.monotonic()
        log.remote_uri = log.remote_uri or str(ci.remoteUri)
        if state == pj.PJSIP_INV_STATE_EARLY and log.direction != "incoming":
            code = int(ci.lastStatusCode)
            if not log.provisional or log.provisional[-1] != code:
                log.provisional.append(code)
        elif state == pj.PJSIP_INV_STATE_CONFIRMED and log.answered is None:
            log.answered = now
            if log.status is None:
                log.status, log.reason = int(ci.lastStatusCode), str(ci.lastReason)
        elif state == pj.PJSIP_INV_STATE_DISCONNECTED:
            log.ended, log.end_status, log.end_reason = (
                now,
                int(ci.lastStatusCode),
                str(ci.lastReason),
            )
            if log.status is None:
                log.status, log.reason = log.end_status, log.end_reason
            # Media is gone already: no stopTransmit, just drop (closes the WAV); then the
            # call itself, here, so a recycled call id never meets this object (traps 3, 6).
            self.player = self.recorder = self.audio = None
            self.peer.forget(log.key)

    def onCallMediaState(self, prm: Any) -> None:
        ci = self.getInfo()
        for mi in ci.media:  # ci held in a local (trap 5)
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.audio = self.getAudioMedia(mi.index)
                return

    def onCallTsxState(self, prm: Any) -> None:
        self._note_response(prm.e)

    def onDtmfDigit(self, prm: Any) -> None:
        method = "info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc4733"
        self.log.dtmf.append({"digit": str(prm.digit), "method": method, "at": time.monotonic()})

    def onCallTransferRequest(self, prm: Any) -> None:
        self.peer.on_refer(self.log, prm)


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, peer: ScriptedPeer) -> None:
        super().__init__()
        self.peer = peer

    def onIncomingCall(self, prm: Any) -> None:
        self.peer.on_incoming(self, prm)

    def onMwiInfo(self, prm: Any) -> None:
        self.peer.on_mwi(str(prm.rdata.wholeMsg))


def _free_rtp_port(host: str) -> int:
    """An even UDP port whose successor is free too (RTP and RTCP)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1]) & ~1
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 1):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((host, p))
            except OSError:
                continue
            return port
    raise SipvmError(f"no free RTP port pair on {host}")


class ScriptedPeer:
    """Runs one :class:`PeerScript` in this process; pjsua2 is used from this thread only."""

    def __init__(self, script: PeerScript) -> None:
        self.script = script
        self.t0 = time.monotonic()
        self.deadline = self.t0 + script.timeout
        self.local = ""
        self.timed_out = False
        self.logs: list[CallLog] = []
        self.mwi: list[dict[str, Any]] = []
        self._keys = itertools.count(1)
        self._calls: dict[int, _PeerCall] = {}
        self._to_answer: dict[int, float] = {}
        self._to_ring: set[int] = set()
        self._ep: Any = None
        self._account: Any = None
        self._sink: Any = None
        self._records = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Create the Endpoint, the UDP transport and the account; return "host:port"."""
        s = self.script
        ctypes.CDLL(pj._pjsua2.__file__).pj_log_set_level(0)  # the banner
        ep = self._ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        # Not following REFER: with one call slot pjsua still answers 202 but cannot place
        # the new call, so nothing goes to the target (the transferer gets NOTIFY 500).
        cfg.uaConfig.maxCalls = 4 if s.follow_refer else 1
        cfg.uaConfig.userAgent = s.user_agent
        cfg.uaConfig.natTypeInSdp = 0
        cfg.logConfig.level = s.log_level
        cfg.logConfig.consoleLevel = s.log_level
        cfg.logConfig.msgLogging = 1 if s.log_level >= 4 else 0
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.noVad = True
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        t_cfg = pj.TransportConfig()
        t_cfg.port = s.port
        t_cfg.boundAddress = s.bind
        transport = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, t_cfg)
        ep.libStart()
        for codec in ep.codecEnum2():
            name = str(codec.codecId).split("/")[0].upper()
            keep = name in s.codecs
            ep.codecSetPriority(codec.codecId, 250 - s.codecs.index(name) if keep else 0)
        info = ep.transportGetInfo(transport)
        self.local = str(info.localName)
        acc_cfg = pj.AccountConfig()
        name = f'"{s.from_name}" ' if s.from_name else ""
        acc_cfg.idUri = f"{name}<sip:{s.from_user}@{self.local}>"
        media = acc_cfg.mediaConfig.transportConfig
        media.boundAddress = media.publicAddress = s.bind
        media.port = s.rtp_port or _free_rtp_port(s.bind)
        media.portRange = 20
        self._account = _Account(self)
        self._account.create(acc_cfg, True)
        self._sink = ep.audDevManager().getPlaybackDevMedia()
        return self.local

    def close(self) -> None:
        """Hang up, release every pjsua2 object, then destroy the library (trap 4)."""
        ep = self._ep
        if ep is None:
            return
        for call in self._calls.values():
            call.log.local_hangup = True
        with contextlib.suppress(pj.Error):
            ep.hangupAllCalls()
        end = time.monotonic() + 2
        while self._calls and time.monotonic() < end:
            ep.libHandleEvents(PUMP_MS)
        for call in self._calls.values():
            call.player = call.recorder = call.audio = None
        self._calls.clear()
        self._sink = None
        if self._account is not None:
            self._account.shutdown()
            self._account = None
        gc.collect()
        ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        self._ep = None

    # -- callbacks' entry points (main thread, inside libHandleEvents) -----------------------

    def forget(self, key: int) -> None:
        """Drop a disconnected call."""
        self._calls.pop(key, None)
        self._to_answer.pop(key, None)
        self._to_ring.discard(key)

    def on_incoming(self, account: Any, prm: Any) -> None:
        """Keep the new call (unkept, it dies: trap 1); it is answered from the loop (trap 8)."""
        rdata = prm.rdata
        log = CallLog(next(self._keys), "incoming")
        log.request, log.source = str(rdata.wholeMsg), str(rdata.srcAddress)
        self.logs.append(log)
        self._calls[log.key] = _PeerCall(self, account, prm.callId, log)
        self._to_answer[log.key] = time.monotonic() + self.script.ring_seconds
        if self.script.ring_seconds > 0:
            self._to_ring.add(log.key)

    def on_refer(self, log: CallLog, prm: Any) -> None:
        """Accept a REFER (202); follow it only if the script says so."""
        log.refer.append(
            {
                "target": str(prm.dstUri),
                "at": time.monotonic(),
                "followed": self.script.follow_refer,
            }
        )
        prm.statusCode = 202
        if self.script.follow_refer:
            child = CallLog(next(self._keys), "transfer", remote_uri=str(prm.dstUri))
            self.logs.append(child)
            new_call = _PeerCall(self, self._account, pj.PJSUA_INVALID_ID, child)
            self._calls[child.key] = new_call  # kept, or pjsua2 reuses the old Call (trap 7)
            prm.newCall = new_call

    def on_mwi(self, message: str) -> None:
        """Record an MWI NOTIFY (pjsua has already answered it 200)."""
        _, _, body = message.partition("\r\n\r\n")
        request_line = message.split("\r\n", 1)[0]
        self.mwi.append(
            {"at": round(time.monotonic() - self.t0, 3), "request_line": request_line, "body": body}
        )

    # -- the loop ---------------------------------------------------------------------------

    def _pump(self) -> None:
        self._ep.libHandleEvents(PUMP_MS)
        now = time.monotonic()
        for key in list(self._to_ring):
            self._to_ring.discard(key)
            self._answer(key, 180)
        for key, due in list(self._to_answer.items()):
            if now >= due:
                del self._to_answer[key]
                self._answer(key)
        for call in list(self._calls.values()):
            if call.audio is None:
                continue
            if call.recorder is None:
                self._start_media(call)
            # getTxLevel is what the call sends into the bridge, i.e. what we hear; getRxLevel
            # is what the bridge sends to the far end (measured).
            loud = int(call.audio.getTxLevel()) > self.script.silence_level
            self._note_level(call.log, loud, now)
            if (
                call.log.direction == "transfer"
                and call.log.answered is not None
                and now - call.log.answered >= self.script.transfer_hold
                and not call.log.local_hangup
            ):
                self._hangup(call.log.key)

    def _until(self, done: Callable[[], bool], limit_s: float | None = None) -> bool:
        """Pump events until ``done()``; False when ``limit_s`` passed first."""
        end = None if limit_s is None else time.monotonic() + limit_s
        while not done():
            now = time.monotonic()
            if now >= self.deadline:
                raise PeerTimeoutError(f"overall timeout of {self.script.timeout} s")
            if end is not None and now >= end:
                return False
            self._pump()
        return True

    def _note_level(self, log: CallLog, loud: bool, now: float) -> None:
        log.loud_now = loud
        if not loud:
            return
        if log.last_loud is not None and now - log.last_loud <= AUDIO_SPAN_GAP_S and log.spans:
            log.spans[-1][1] = now
        else:
            log.spans.append([now, now])
        log.last_loud = now

    def _start_media(self, call: _PeerCall) -> None:
        """Record what the far end sends, and feed the null sound device (keeps levels live)."""
        call.audio.startTransmit(self._sink)
        recorder = pj.AudioMediaRecorder()
        path = self._record_path(call.log)
        if path is None:
            call.recorder = self._sink  # marks media as started; nothing to record
            return
        recorder.createRecorder(str(path))
        call.audio.startTransmit(recorder)
        call.recorder = recorder
        call.log.record = str(path)

    def _record_path(self, log: CallLog) -> Path | None:
        base = self.script.record
        if base is None or log.direction == "transfer":
            return None
        self._records += 1
        if self._records == 1:
            return base
        return base.with_name(f"{base.stem}-{self._records}{base.suffix}")

    def _answer(self, key: int, code: int | None = None) -> None:
        call = self._calls.get(key)
        if call is None:
            return
        code = self.script.answer_code if code is None else code
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if code >= 300:
            call.log.local_hangup = True
            call.hangup(prm)
        else:
            call.answer(prm)
        if code >= 200:
            call.log.status = code
        else:
            call.log.provisional.append(code)

    def _hangup(self, key: int, timed_out: bool = False) -> None:
        call = self._calls.get(key)
        if call is None:
            return
        call.log.local_hangup = True
        call.log.timed_out = timed_out
        with contextlib.suppress(pj.Error):  # already ending
            call.hangup(pj.CallOpParam(True))

    def _gone(self, key: int) -> bool:
        return key not in self._calls

    def _media_up(self, key: int) -> bool:
        call = self._calls.get(key)
        return call is None or (call.log.answered is not None and call.recorder is not None)

    # -- running the script ------------------------------------------------------------------

    def run(self) -> None:
        """Run the script to its end (or the overall timeout, then hang up)."""
        try:
            if self.script.mode == "call":
                self._run_caller()
            else:
                self._run_answerer()
        except PeerTimeoutError:
            self.timed_out = True
            for key in list(self._calls):
                self._hangup(key, timed_out=True)
            end = time.monotonic() + 3
            while self._calls and time.monotonic() < end:
                self._ep.libHandleEvents(PUMP_MS)

    def _run_caller(self) -> None:
        s = self.script
        log = CallLog(next(self._keys), "outgoing", remote_uri=s.to)
        self.logs.append(log)
        call = _PeerCall(self, self._account, pj.PJSUA_INVALID_ID, log)
        self._calls[log.key] = call
        prm = pj.CallOpParam(True)
        for name, value in s.headers:
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        try:
            call.makeCall(s.to, prm)
        except pj.Error as exc:
            self.forget(log.key)
            raise SipvmError(f"cannot call {s.to}: {exc.info()}") from None
        del call, prm
        self._until(lambda: self._media_up(log.key))
        self._run_steps(log)
        self._until(lambda: not self._calls)  # the far end's BYE, and any followed transfer

    def _run_answerer(self) -> None:
        s = self.script

        def finished() -> bool:
            ended = sum(1 for lg in self.logs if lg.direction == "incoming" and lg.ended)
            return ended >= s.calls and len(self.mwi) >= s.mwi and not self._calls

        def next_ready() -> CallLog | None:
            for lg in self.logs:
                fresh = lg.direction == "incoming" and not lg.stepped and lg.ended is None
                if fresh and lg.answered is not None and self._media_up(lg.key):
                    return lg
            return None

        while not finished():
            self._until(lambda: finished() or next_ready() is not None)
            log = next_ready()
            if log is not None:
                self._run_steps(log)
                self._until(functools.partial(self._gone, log.key))

    def _run_steps(self, log: CallLog) -> None:
        log.stepped = True
        if log.answered is None:
            return
        for step in self.script.steps:
            started = time.monotonic()
            try:
                result = "call_ended" if self._gone(log.key) else self._run_step(log.key, step)
            except pj.Error as exc:  # e.g. RFC 4733 not negotiated: report it, go on
                result = f"error: {exc.reason}"
            log.steps.append(
                {"step": step.raw, "started": started, "ended": time.monotonic(), "result": result}
            )

    def _run_step(self, key: int, step: Step) -> str:
        def gone() -> bool:
            return self._gone(key)

        if step.kind == "wait":
            return "call_ended" if self._until(gone, step.seconds) else "ok"
        if step.kind == "hangup":
            self._hangup(key)
            return "ok" if self._until(gone, 5) else "timeout"
        if step.kind == "play":
            return self._play(key, step)
        if step.kind == "dtmf":
            return self._dtmf(key, step)
        call = self._calls[key]
        log = call.log
        del call
        if step.kind == "wait_for_audio":
            ok = self._until(lambda: gone() or log.loud_now, step.seconds)
        else:  # wait_for_silence
            since = time.monotonic()

            def quiet() -> bool:
                last = max(since, log.last_loud or since)
                return not log.loud_now and time.monotonic() - last >= step.min_silence

            ok = self._until(lambda: gone() or quiet(), step.seconds)
        return "call_ended" if gone() else "ok" if ok else "timeout"

    def _play(self, key: int, step: Step) -> str:
        assert step.path is not None
        call = self._calls[key]
        player = _Player()
        player.createPlayer(str(step.path), pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(call.audio)
        call.player = player
        done = player.done
        del call, player
        length = step.play_seconds or 0.0
        ok = self._until(lambda: self._gone(key) or done.is_set(), length + 2)
        still = self._calls.get(key)
        if still is None:
            return "call_ended"
        still.player = None  # the player is destroyed here, in the main thread
        del still
        return "ok" if ok else "timeout"

    def _dtmf(self, key: int, step: Step) -> str:
        for digit in step.digits:
            call = self._calls.get(key)
            if call is None:
                return "call_ended"
            prm = pj.CallSendDtmfParam()
            prm.method = DTMF_METHODS[step.method]
            prm.digits = digit
            prm.duration = step.duration_ms
            call.sendDtmf(prm)
            del call
            self._until(lambda: self._gone(key), (step.duration_ms + step.gap_ms) / 1000)
        return "call_ended" if self._gone(key) else "ok"

    # -- the report ----------------------------------------------------------------------------

    def report(self, error: str | None = None) -> dict[str, Any]:
        """The JSON report: the run, every call (see :meth:`CallLog.to_json`), MWI NOTIFYs."""
        return {
            "mode": self.script.mode,
            "local": self.local,
            "error": error,
            "timed_out": self.timed_out,
            "elapsed": round(time.monotonic() - self.t0, 3),
            "calls": [log.to_json(self.t0) for log in self.logs],
            "mwi": self.mwi,
        }


def _wav_seconds(path: Path) -> float:
    try:
        return read_wav_info(path).duration_s
    except (SipvmError, OSError) as exc:
        raise InvalidInputError(f"cannot play {path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Run a script file; print the report as JSON on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.testpeer",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--script", type=Path, required=True, help="the JSON script to run")
    args = parser.parse_args(argv)
    try:
        script = load_script(args.script, wav_seconds=_wav_seconds)
    except InvalidInputError as exc:
        print(f"testpeer: invalid script {args.script}: {exc}", file=sys.stderr)
        return exc.exit_code
    sys.stdout.flush()
    report_fd = os.dup(1)
    os.dup2(2, 1)  # pjlib writes its log to fd 1; keep stdout for the report alone
    peer = ScriptedPeer(script)
    error: str | None = None
    code = 0
    # Exceptions are turned into text here, so no traceback keeps a Call alive past
    # libDestroy (which would abort the process: trap 4).
    try:
        local = peer.start()
        print(f"testpeer ready {local}", file=sys.stderr, flush=True)
        peer.run()
    except SipvmError as exc:
        error, code = str(exc), exc.exit_code
    except pj.Error as exc:
        error, code = f"pjsua2: {exc.info()}", 1
    except Exception:
        error, code = traceback.format_exc(), 1
    peer.close()
    report = json.dumps(peer.report(error), indent=2)
    with os.fdopen(report_fd, "w") as out:
        out.write(report + "\n")
    if error is not None:
        print(f"testpeer: {error}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
