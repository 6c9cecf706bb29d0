"""The pjsua2 engine of one media worker: one Endpoint, owned by one thread.

Rules from PJSUA2_NOTES.md that shape this module:
- ``threadCnt = 0`` and ``mainThreadOnly``: the "pjsip" thread created here calls every pjsua2
  API and loops ``libHandleEvents(10)``; asyncio hands it work through a job queue and gets
  results back as futures. Every callback therefore runs in the pjsip thread.
- Callbacks do one thing: turn what happened into one of our events, handed to asyncio with
  ``call_soon_threadsafe``. They carry our own call key (never a Call object: ids recycle).
- Every Call, player and recorder is referenced from ``_PjCall`` in the ``calls`` dict until
  the call is DISCONNECTED, where it is dropped (media first, no stopTransmit: it is gone).
- Incoming INVITEs are never answered or rejected inside ``onIncomingCall`` (trap 8).
- An answered call starts its dialog only once the caller's ACK confirms it. Until then the
  engine watches it: a call with no ACK by Timer H, or with no RTP packet ``no_media_s`` after
  the answer, is ended here. pjsip holds back a BYE until the ACK comes (RFC 3261 §15), which
  would keep a never-confirmed call's slot for Timer H plus a BYE's Timer F (about 64 s), so
  such a call is ended with ``pjsip_inv_terminate`` (``sip.dialogs``), which frees the slot
  at once and still sends the BYE.
- The calls the engine ends itself are paced (``sip.pacing``): ended faster than pjlib
  recycles their sockets' keys, the next INVITE would abort the process.
- A failed start, and any failed job, is cleaned up in the pjsip thread: the library is
  destroyed there, every pjsua2 reference is dropped there, and asyncio gets a plain error
  (no traceback holding pjsua2 objects, whose release in another thread aborts the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import gc
import itertools
import logging
import queue
import shutil
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pjsua2 as pj

from sipvm.audio.wav import read_wav_info
from sipvm.errors import PortInUseError, SipvmError
from sipvm.sip.dialogs import DialogId, dialog_of_answer, sent_message, terminate
from sipvm.sip.events import (
    CallConfirmed,
    CallEnded,
    CallEvent,
    DtmfDigit,
    IncomingInvite,
    MediaActive,
    PlaybackEnded,
    TransferProgress,
)
from sipvm.sip.pacing import EndPacer
from sipvm.sip.ports import check_rtp_ports, check_sip_port

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What the PyPI wheel is compiled with (PJSUA_MAX_CALLS): never configure more.
MAX_CALLS_BUILD = 4
#: Silence after the last file of a multi-file prompt: longer than pjmedia's playlist buffer
#: (4000 bytes, 0.25 s of 16-bit 8 kHz), which is dropped when the playlist reports its end.
PLAYLIST_PAD_S = 0.3
#: Longest a request outside calls can stay unanswered: pjsip's Timer F (64 x T1), plus margin.
REQUEST_TIMEOUT_S = 33.0
#: Longest an answered call may wait for the caller's ACK: pjsip's Timer H (64 x T1).
CONFIRM_TIMEOUT_S = 32.0
#: How often the pjsip thread looks at answered calls for their ACK and first RTP packet.
WATCH_S = 0.25
#: pjlib's status for the OS error "address already in use" (PJ_STATUS_FROM_OS).
_PJ_EADDRINUSE = 120000 + errno.EADDRINUSE


@dataclass(frozen=True)
class EngineConfig:
    """Where and how the worker's SIP stack listens."""

    bind: str = "127.0.0.1"
    """Address for SIP and RTP."""
    port: int = 5060
    """SIP port (UDP and TCP)."""
    rtp_port: int = 40000
    """First RTP port; each call takes two (RTP and RTCP)."""
    rtp_port_range: int = 100
    max_calls: int = MAX_CALLS_BUILD
    proxy: str = ""
    """Next hop (``sip:host:port``) for requests outside calls: the MWI NOTIFYs."""
    user_agent: str = "sipvm"
    log_level: int = 1
    no_media_s: float = 5.0
    """An answered call from which no RTP packet has arrived this long after the answer is
    ended (scanners and broken media paths would otherwise hold a slot); 0: never."""


class _PjCall(pj.Call):  # type: ignore[misc]
    """A pjsua2 call whose callbacks become events; lives only in the pjsip thread."""

    def __init__(self, engine: PjEngine, account: Any, call_id: int, key: int, source: str) -> None:
        super().__init__(account, call_id)
        self.engine = engine
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
            self.engine._emit(CallConfirmed(self.key))
        elif ci.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            # Drop media first (closes a recording's WAV), then the call itself (trap 3, 6).
            self.player = None
            self.recorder = None
            self.audio = None
            self.engine._forget(self.key)
            self.engine._emit(CallEnded(self.key, int(ci.lastStatusCode)))

    def onCallMediaState(self, prm: Any) -> None:
        ci = self.getInfo()
        for mi in ci.media:  # ci held in a local: iterating a temporary reads freed memory
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                self.audio = self.getAudioMedia(mi.index)
                self.audio_index = int(mi.index)
                if not self.media_reported:
                    self.media_reported = True
                    self.engine._emit(MediaActive(self.key))
                return

    def onDtmfDigit(self, prm: Any) -> None:
        self.engine._emit(DtmfDigit(self.key, str(prm.digit)))

    def onCallTransferStatus(self, prm: Any) -> None:
        self.engine._emit(TransferProgress(self.key, int(prm.statusCode), bool(prm.finalNotify)))
        prm.cont = not prm.finalNotify


class _Player(pj.AudioMediaPlayer):  # type: ignore[misc]
    """A player that reports its end; ``onEof2`` runs on a pjmedia thread, so it only posts."""

    def __init__(self, engine: PjEngine, key: int, token: int) -> None:
        super().__init__()
        self.engine = engine
        self.key = key
        self.token = token

    def onEof2(self) -> None:
        # Capture plain values only: the player must not be referenced from another thread.
        engine, event = self.engine, PlaybackEnded(self.key, self.token)
        engine._jobs.put((lambda: engine._emit(event), None))


class _Account(pj.Account):  # type: ignore[misc]
    def __init__(self, engine: PjEngine) -> None:
        super().__init__()
        self.engine = engine

    def onIncomingCall(self, prm: Any) -> None:
        self.engine._incoming(self, prm)

    def onSendRequest(self, prm: Any) -> None:
        # The final answer to a NOTIFY we sent (or its timeout): only worth a log line.
        self.engine._requests_pending -= 1
        tsx = prm.e.body.tsxState.tsx
        code = int(tsx.statusCode)
        if code >= 300:
            log.info("message-waiting NOTIFY answered %d %s", code, tsx.statusText)


class PjEngine:
    """Runs pjsua2 in its own thread; asyncio code talks to it through ``run`` and events."""

    def __init__(
        self,
        config: EngineConfig,
        loop: asyncio.AbstractEventLoop,
        on_event: Callable[[CallEvent], None],
    ) -> None:
        if config.max_calls > MAX_CALLS_BUILD:
            raise ValueError(
                f"max_calls {config.max_calls} is above what this pjsua2 build allows "
                f"({MAX_CALLS_BUILD}); run more workers instead"
            )
        self.config = config
        self._loop = loop
        self._on_event = on_event
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any] | None]] = (
            queue.SimpleQueue()
        )
        self._keys = itertools.count(1)
        self._calls: dict[int, _PjCall] = {}
        self._tokens = itertools.count(1)
        self._stop = threading.Event()
        self._ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._main, name="pjsip", daemon=True)
        self._ep: Any = None
        self._account: Any = None
        self._requests_pending = 0
        """Requests outside calls (NOTIFYs) not answered yet: the account must outlive them."""
        self._pacer = EndPacer()
        """Holds back the ends we cause when calls end too fast (see ``sip.pacing``)."""
        self._pad_dir = Path(tempfile.mkdtemp(prefix="sipvm-pad-"))
        self._pad = _write_silence(self._pad_dir / "pad.wav", PLAYLIST_PAD_S)

    # -- lifecycle (asyncio side) ---------------------------------------------------------

    async def start(self) -> None:
        """Start the pjsip thread and wait until SIP listens.

        Raises:
            PortInUseError: the SIP port, or every port of the RTP range, is in use.
            SipvmError: SIP could not start for another reason (named in the message).
        """
        try:
            cfg = self.config
            check_sip_port(cfg.bind, cfg.port)
            check_rtp_ports(cfg.bind, cfg.rtp_port, cfg.rtp_port_range, cfg.max_calls)
        except SipvmError:
            shutil.rmtree(self._pad_dir, ignore_errors=True)
            raise
        self._thread.start()
        try:
            await asyncio.wrap_future(self._ready)
        except SipvmError:
            await asyncio.to_thread(self._thread.join, 10)  # it has cleaned up and is ending
            raise

    async def stop(self) -> None:
        """Hang up every call and destroy the library (in the pjsip thread)."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        await asyncio.to_thread(self._thread.join, REQUEST_TIMEOUT_S + 10)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the pjsip thread and return its result."""
        future: Future[T] = Future()
        self._jobs.put((fn, future))
        return await asyncio.wrap_future(future)

    # -- the pjsip thread -------------------------------------------------------------------

    def _main(self) -> None:
        error: SipvmError | None = None
        try:
            self._create()
        except Exception as exc:
            error = self._start_error(exc)
            # Its frames hold pjsua2 objects: let them go here, in this thread.
            exc.__traceback__ = None
        if error is not None:
            self._abandon()
            self._ready.set_exception(error)
            return
        self._ready.set_result(None)
        next_watch = time.monotonic() + WATCH_S
        while not self._stop.is_set():
            self._ep.libHandleEvents(10)
            self._drain()
            now = time.monotonic()
            self._pacer.run(now, self._calls.__contains__)
            if now >= next_watch:
                self._watch(now)
                next_watch = now + WATCH_S
        self._destroy()

    def _start_error(self, exc: Exception) -> SipvmError:
        """A plain error for asyncio (built from strings and numbers only) saying what failed."""
        cfg = self.config
        status = getattr(exc, "status", None)
        if isinstance(status, int) and status == _PJ_EADDRINUSE:
            return PortInUseError(
                f"SIP port {cfg.port} on {cfg.bind} is in use; choose another --sip-port"
            )
        if isinstance(exc, pj.Error):
            reason = f"{exc.reason} (status {exc.status})"
        else:
            log.error("SIP start failed", exc_info=exc)
            reason = f"{type(exc).__name__}: {exc}"
        return SipvmError(
            f"SIP could not start on {cfg.bind}:{cfg.port}: {reason}; check --bind and --sip-port"
        )

    def _abandon(self) -> None:
        """After a failed start, in the pjsip thread: drop every pjsua2 object, destroy the
        library and remove the scratch files."""
        shutil.rmtree(self._pad_dir, ignore_errors=True)
        self._account = None
        gc.collect()  # anything of pjsua2's still in a cycle goes before the library
        ep, self._ep = self._ep, None
        if ep is not None:
            with contextlib.suppress(pj.Error):
                ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            del ep
        gc.collect()

    def _drain(self) -> None:
        while True:
            try:
                fn, future = self._jobs.get_nowait()
            except queue.Empty:
                return
            if future is None:
                fn()
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(_plain(exc))

    def _create(self) -> None:
        cfg = self.config
        # Silence the banner pjlib prints before any log config applies.
        ctypes.CDLL(pj._pjsua2.__file__).pj_log_set_level(0)
        ep = self._ep = pj.Endpoint()  # held by the engine at once, for _abandon
        ep.libCreate()
        ep_cfg = pj.EpConfig()
        ep_cfg.uaConfig.threadCnt = 0
        ep_cfg.uaConfig.mainThreadOnly = True
        ep_cfg.uaConfig.maxCalls = cfg.max_calls
        ep_cfg.uaConfig.userAgent = cfg.user_agent
        ep_cfg.uaConfig.natTypeInSdp = 0
        ep_cfg.logConfig.level = cfg.log_level
        ep_cfg.logConfig.consoleLevel = cfg.log_level
        ep_cfg.logConfig.msgLogging = 0
        ep_cfg.medConfig.clockRate = 8000
        ep_cfg.medConfig.sndClockRate = 8000
        ep_cfg.medConfig.ecTailLen = 0
        ep_cfg.medConfig.noVad = True
        ep.libInit(ep_cfg)
        ep.audDevManager().setNullDev()
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
            t_cfg = pj.TransportConfig()
            t_cfg.port = cfg.port
            t_cfg.boundAddress = cfg.bind
            ep.transportCreate(kind, t_cfg)
        ep.libStart()
        for codec in ep.codecEnum2():
            # G.711 only: nothing is resampled, and two pjsua2 ends never pick speex + VAD.
            keep = codec.codecId.startswith(("PCMU/", "PCMA/"))
            ep.codecSetPriority(codec.codecId, 255 if keep else 0)
        acc_cfg = pj.AccountConfig()
        acc_cfg.idUri = f"sip:sipvm@{cfg.bind}:{cfg.port}"
        media = acc_cfg.mediaConfig.transportConfig
        media.boundAddress = cfg.bind
        if cfg.bind not in ("0.0.0.0", "::"):
            media.publicAddress = cfg.bind  # else the SDP names the default-route address
        media.port = cfg.rtp_port
        media.portRange = cfg.rtp_port_range
        if cfg.proxy:
            route = cfg.proxy if ";lr" in cfg.proxy else f"{cfg.proxy};lr"
            acc_cfg.sipConfig.proxies.append(route)
        account = self._account = _Account(self)
        account.create(acc_cfg, True)
        log.info("SIP listening on %s:%d (UDP, TCP), %d calls", cfg.bind, cfg.port, cfg.max_calls)

    def _destroy(self) -> None:
        shutil.rmtree(self._pad_dir, ignore_errors=True)
        ep = self._ep
        # pjsua reports a request's outcome to its account, and aborts the process if the
        # account is gone by then: let unanswered NOTIFYs end first (a phone that never
        # answers takes Timer F, 32 s; calls draining on SIGTERM usually cover it).
        if self._requests_pending > 0:
            log.info(
                "waiting up to %.0f s for %d unanswered message-waiting NOTIFYs",
                REQUEST_TIMEOUT_S,
                self._requests_pending,
            )
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        while self._requests_pending > 0 and time.monotonic() < deadline:
            ep.libHandleEvents(10)
        ep.hangupAllCalls()
        for _ in range(20):
            ep.libHandleEvents(10)
        for call in self._calls.values():
            call.player = call.recorder = call.audio = None
        self._calls.clear()
        self._account.shutdown()
        self._account = None
        gc.collect()
        ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
        self._ep = None

    def _emit(self, event: CallEvent) -> None:
        self._loop.call_soon_threadsafe(self._on_event, event)

    def _forget(self, key: int) -> None:
        self._calls.pop(key, None)
        self._pacer.ended(time.monotonic())

    def _end_paced(self, key: int, action: Callable[[], None]) -> None:
        self._pacer.end(key, action, time.monotonic())

    def _incoming(self, account: Any, prm: Any) -> None:
        key = next(self._keys)
        rdata = prm.rdata
        source = str(rdata.srcAddress)
        call = _PjCall(self, account, prm.callId, key, source)
        self._calls[key] = call  # unreferenced, it would die and the caller get 603 (trap 1)
        self._emit(IncomingInvite(key, str(rdata.wholeMsg), source))

    def _watch(self, now: float) -> None:
        """End answered calls that never got their ACK, or no RTP, in time."""
        no_media_s = self.config.no_media_s
        for key in list(self._calls):
            call = self._calls.get(key)
            if call is None or call.answered_at is None or call.ending:
                continue
            waited = now - call.answered_at
            if not call.confirmed and waited >= CONFIRM_TIMEOUT_S:
                why = f"no ACK {CONFIRM_TIMEOUT_S:.0f} s after the answer"
            elif 0 < no_media_s <= waited and not call.rtp_seen:
                if _rtp_received(call) > 0:
                    call.rtp_seen = True
                    continue
                why = f"no RTP {no_media_s:g} s after the answer"
            else:
                continue
            log.warning("call %d from %s: %s; hanging up", key, call.source, why)
            self._end(call)

    def _end(self, call: _PjCall) -> None:
        """Hang up an answered call, confirmed or not (see the module notes)."""
        call.ending = True
        key = call.key
        self._end_paced(key, lambda: self._end_now(key))

    def _end_now(self, key: int) -> None:
        call = self._call(key)
        if call is None:
            return
        if not call.confirmed and call.dialog is not None and terminate(call.dialog):
            return
        call.hangup(pj.CallOpParam(True))

    # -- operations on calls, run in the pjsip thread ---------------------------------------

    def _call(self, key: int) -> _PjCall | None:
        return self._calls.get(key)

    def answer(self, key: int, status: int = 200) -> bool:
        """Answer (or progress) call ``key``; False when it is gone."""
        call = self._call(key)
        if call is None:
            return False
        prm = pj.CallOpParam()
        prm.statusCode = status
        try:
            call.answer(prm)
        except pj.Error as exc:
            # e.g. an offer with no audio we can take: pjsua cannot build its answer.
            log.warning("call %d from %s: cannot answer: %s", key, call.source, exc.reason)
            self.reject(key, 488)
            return False
        if status >= 200 and call.answered_at is None:
            call.answered_at = time.monotonic()
        return True

    def reject(self, key: int, status: int, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """End call ``key`` with ``status`` (a final response if it is not answered yet)."""
        call = self._call(key)
        if call is None or call.ending:
            return
        call.ending = True
        self._end_paced(key, lambda: self._reject_now(key, status, headers))

    def _reject_now(self, key: int, status: int, headers: tuple[tuple[str, str], ...]) -> None:
        call = self._call(key)
        if call is None:
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = status
        for name, value in headers:
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            prm.txOption.headers.append(header)
        call.hangup(prm)

    def hangup(self, key: int) -> None:
        """End an answered call (BYE; a call not confirmed yet is also freed at once)."""
        call = self._call(key)
        if call is None or call.ending:
            return
        if call.answered_at is None:
            call.ending = True
            self._end_paced(key, lambda: self._reject_now(key, 0, ()))
        else:
            self._end(call)

    def rtp_received(self, key: int) -> int:
        """RTP packets received on call ``key`` so far (0 when the call or its audio is gone)."""
        call = self._call(key)
        return 0 if call is None else _rtp_received(call)

    def play(self, key: int, files: list[Path]) -> int | None:
        """Start playing ``files`` to the caller; returns a token its PlaybackEnded carries."""
        call = self._call(key)
        if call is None or call.audio is None:
            return None
        token = next(self._tokens)
        player = _Player(self, key, token)
        if len(files) == 1:
            player.createPlayer(str(files[0]), pj.PJMEDIA_FILE_NO_LOOP)
        else:
            names = pj.StringVector()
            # A playlist reports its end when it reads its last buffer and drops what is
            # still buffered (up to 0.25 s): pad it, so the prompt's own end is heard.
            for f in [*files, self._pad]:
                names.append(str(f))
            player.createPlaylist(names, "prompt", pj.PJMEDIA_FILE_NO_LOOP)
        player.startTransmit(call.audio)
        call.player = player  # replaces (and so stops) any earlier one
        return token

    def play_file(self, key: int, file: Path, start_samples: int = 0) -> int | None:
        """Start playing one WAV to the caller from ``start_samples`` in; returns a token its
        PlaybackEnded carries (None when the call or its audio is gone).

        Positions are pjsua2's "samples" (measured): samples of the file's own rate, all
        channels counted, for PCM and A-law alike, whatever the bridge rate.

        Raises:
            ValueError: ``start_samples`` is negative or not before the end of the audio.
            CorruptAudioError: ``start_samples`` is given and the file's header is unreadable.
        """
        call = self._call(key)
        if call is None or call.audio is None:
            return None
        if start_samples:
            # pjmedia asserts (the process aborts) on a position at or past the end of the
            # data chunk. Checked before the player exists: a traceback holding a player
            # would release it in whichever thread drops the exception.
            info = read_wav_info(file)
            size = info.frames * info.channels
            if not 0 < start_samples < size:
                raise ValueError(f"start {start_samples} is outside {file.name} (0..{size})")
        token = next(self._tokens)
        player = _Player(self, key, token)
        player.createPlayer(str(file), pj.PJMEDIA_FILE_NO_LOOP)
        if start_samples:
            player.setPos(start_samples)
        player.startTransmit(call.audio)
        call.player = player  # replaces (and so stops) any earlier one
        return token

    def playback_position(self, key: int, token: int) -> int:
        """Where player ``token`` is, in samples of its file (see ``play_file``); -1 when it
        is not the call's current player.

        Measured trap: pjmedia reads 0 here once its read-ahead buffer has reached the end of
        the file (a seek into the last 4000 bytes, or a file whose length is not a whole
        number of buffers) and after EOF, so 0 means "unknown" unless playback started at 0.
        """
        call = self._call(key)
        if call is None or call.player is None or call.player.token != token:
            return -1
        return int(call.player.getPos())

    def stop_playing(self, key: int, token: int) -> None:
        """Stop the player ``token`` if it is still the call's current one."""
        call = self._call(key)
        if call is not None and call.player is not None and call.player.token == token:
            call.player = None

    def start_recording(self, key: int, path: Path) -> bool:
        """Record what the caller sends into ``path`` (16-bit PCM WAV at 8 kHz)."""
        call = self._call(key)
        if call is None or call.audio is None:
            return False
        recorder = pj.AudioMediaRecorder()
        recorder.createRecorder(str(path))
        call.audio.startTransmit(recorder)
        call.recorder = recorder
        return True

    def stop_recording(self, key: int) -> None:
        """Stop recording: dropping the recorder writes the WAV sizes and closes the file."""
        call = self._call(key)
        if call is not None and call.recorder is not None:
            call.audio.stopTransmit(call.recorder)
            call.recorder = None

    def caller_level(self, key: int) -> int:
        """The caller's last signal level (0-255); 0 when the call is gone."""
        call = self._call(key)
        if call is None or call.audio is None:
            return 0
        # Measured: on a call's AudioMedia, getTxLevel() is what the far end sends us and
        # getRxLevel() what we send it (the names are the bridge's point of view).
        return int(call.audio.getTxLevel())

    def transfer(self, key: int, uri: str) -> bool:
        """Send REFER to blind-transfer the caller to ``uri``."""
        call = self._call(key)
        if call is None:
            return False
        call.xfer(uri, pj.CallOpParam(True))
        return True

    def send_mwi(self, phone: str, body: str) -> None:
        """Send an unsolicited message-summary NOTIFY (RFC 3842) to ``phone`` (an AOR),
        through the proxy when one is configured."""
        prm = pj.SendRequestParam()
        prm.method = "NOTIFY"
        option = prm.txOption
        option.targetUri = phone
        for name, value in (
            ("Event", "message-summary"),
            ("Subscription-State", "terminated;reason=noresource"),
        ):
            header = pj.SipHeader()
            header.hName, header.hValue = name, value
            option.headers.append(header)
        option.contentType = "application/simple-message-summary"
        option.msgBody = body
        self._account.sendRequest(prm)
        self._requests_pending += 1

    @property
    def active_calls(self) -> int:
        """Calls the engine holds (read from any thread; a dict length is atomic)."""
        return len(self._calls)


def _rtp_received(call: _PjCall) -> int:
    """RTP packets (any payload type) received on the call's audio stream so far."""
    if call.audio_index < 0:
        return 0
    try:
        return int(call.getStreamStat(call.audio_index).rtcp.rxStat.pkt)
    except pj.Error:  # no stream (any more)
        return 0


def _plain(exc: BaseException) -> BaseException:
    """``exc`` made safe to hand to asyncio: its traceback's frames hold pjsua2 objects (a
    Call, its options, a player) that must not be released in another thread, so the frames
    are dropped here, after logging them (debug); a pjsua2 error becomes a plain one."""
    log.debug("job failed in the pjsip thread", exc_info=exc)
    if isinstance(exc, pj.Error):
        plain: BaseException = RuntimeError(f"{exc.title}: {exc.reason} (status {exc.status})")
    else:
        plain = exc
    chain: BaseException | None = exc
    seen: set[int] = set()
    while chain is not None and id(chain) not in seen:  # chained errors hold frames too
        seen.add(id(chain))
        chain.__traceback__ = None
        chain = chain.__cause__ or chain.__context__
    return plain


def _write_silence(path: Path, seconds: float) -> Path:
    """A 16-bit 8 kHz mono WAV of silence (the format of every prompt and greeting)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * round(seconds * 8000))
    return path
