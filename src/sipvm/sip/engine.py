"""The pjsua2 engine of one media worker: one Endpoint, owned by one thread.

Rules from PJSUA2_NOTES.md that shape this module and its helpers:
- ``threadCnt = 0`` and ``mainThreadOnly``: the "pjsip" thread created here calls every pjsua2
  API and loops ``libHandleEvents``; asyncio hands it work through a job queue
  (``sip.jobs``) and gets results back as futures. Every callback therefore runs in the pjsip
  thread. The Endpoint's settings are in ``sip.endpoint``.
- The poll is ``BUSY_POLL_MS`` while a call is up (pjsua2 runs the callbacks other threads
  raise, such as a DTMF digit from the media thread, only at the start of a poll) or an end is
  held back, and ``IDLE_POLL_MS`` otherwise: an idle worker then wakes a few times a second,
  not a hundred. Nothing waits for the long poll to end: a packet (an INVITE) ends it at once,
  pjsip shortens it to its next timer, and a job or a stop wakes it (``sip.wakeup``).
- Callbacks (``sip.callbacks``) do one thing: turn what happened into one of our events, handed
  to asyncio with ``call_soon_threadsafe``. They carry our own call key (never a Call object:
  ids recycle).
- Every Call, player and recorder is referenced from ``PjCall`` in the ``calls`` dict until
  the call is DISCONNECTED, where it is dropped (media first, no stopTransmit: it is gone).
- Incoming INVITEs are never answered or rejected inside ``onIncomingCall`` (trap 8).
- An answered call starts its dialog only once the caller's ACK confirms it. Until then the
  engine watches it (``sip.watch``): a call with no ACK by Timer H, or with no RTP packet
  ``no_media_s`` after the answer, is ended here. pjsip holds back a BYE until the ACK comes
  (RFC 3261 §15), which would keep a never-confirmed call's slot for Timer H plus a BYE's
  Timer F (about 64 s), so such a call is ended with ``pjsip_inv_terminate``
  (``sip.dialogs``), which frees the slot at once and still sends the BYE.
- The calls the engine ends itself are paced (``sip.pacing``): ended faster than pjlib
  recycles their sockets' keys, the next INVITE would abort the process.
- A failed start, and any failed job, is cleaned up in the pjsip thread: the library is
  destroyed there, every pjsua2 reference is dropped there, and asyncio gets a plain error
  (no traceback holding pjsua2 objects, whose release in another thread aborts the process).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pjsua2 as pj

from sipvm.errors import SipvmError
from sipvm.sip import media
from sipvm.sip.callbacks import PjAccount, PjCall, PjPlayer
from sipvm.sip.dialogs import terminate
from sipvm.sip.endpoint import (
    MAX_CALLS_BUILD,
    EngineConfig,
    account_config,
    new_endpoint,
    start_endpoint,
    start_error,
)
from sipvm.sip.events import CallEvent, IncomingInvite
from sipvm.sip.jobs import JobQueue
from sipvm.sip.media import PLAYLIST_PAD_S
from sipvm.sip.message_summary import notify_request
from sipvm.sip.pacing import EndPacer
from sipvm.sip.ports import check_rtp_ports, check_sip_port
from sipvm.sip.wakeup import UdpWaker
from sipvm.sip.watch import CONFIRM_TIMEOUT_S, WATCH_S, overdue

__all__ = [
    "BUSY_POLL_MS",
    "CONFIRM_TIMEOUT_S",
    "IDLE_POLL_MS",
    "MAX_CALLS_BUILD",
    "PLAYLIST_PAD_S",
    "REQUEST_TIMEOUT_S",
    "WATCH_S",
    "EngineConfig",
    "PjEngine",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Longest a request outside calls can stay unanswered: pjsip's Timer F (64 x T1), plus margin.
REQUEST_TIMEOUT_S = 33.0
#: The pjsip thread's poll while a call is up or an end is held back (the measured best).
BUSY_POLL_MS = 10
#: Its poll with no call: any packet, timer, job or stop ends it sooner.
IDLE_POLL_MS = 500


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
        self._waker = UdpWaker(config.bind, config.port)
        self._jobs = JobQueue(self._waker)
        self._keys = itertools.count(1)
        self._calls: dict[int, PjCall] = {}
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
        self._pad = media.write_silence(self._pad_dir / "pad.wav", PLAYLIST_PAD_S)

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
            self._waker.close()
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
        self._jobs.post(lambda: None)  # wakes an idle poll
        await asyncio.to_thread(self._thread.join, REQUEST_TIMEOUT_S + 10)

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the pjsip thread and return its result."""
        return await asyncio.wrap_future(self._jobs.submit(fn))

    # -- the pjsip thread -------------------------------------------------------------------

    def _main(self) -> None:
        error: SipvmError | None = None
        try:
            self._create()
        except Exception as exc:
            error = start_error(exc, self.config)
            # Its frames hold pjsua2 objects: let them go here, in this thread.
            exc.__traceback__ = None
        if error is not None:
            self._abandon()
            self._ready.set_exception(error)
            return
        self._ready.set_result(None)
        next_watch = time.monotonic() + WATCH_S
        while not self._stop.is_set():
            if self._calls or self._pacer.waiting or not self._jobs.doze():
                self._ep.libHandleEvents(BUSY_POLL_MS)
            else:
                self._ep.libHandleEvents(IDLE_POLL_MS)
                self._jobs.awake()
            self._jobs.drain()
            now = time.monotonic()
            self._pacer.run(now, self._calls.__contains__)
            if now >= next_watch:
                self._watch(now)
                next_watch = now + WATCH_S
        self._destroy()

    def _abandon(self) -> None:
        """After a failed start, in the pjsip thread: drop every pjsua2 object, destroy the
        library and remove the scratch files."""
        shutil.rmtree(self._pad_dir, ignore_errors=True)
        self._waker.close()
        self._account = None
        gc.collect()  # anything of pjsua2's still in a cycle goes before the library
        ep, self._ep = self._ep, None
        if ep is not None:
            with contextlib.suppress(pj.Error):
                ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
            del ep
        gc.collect()

    def _create(self) -> None:
        cfg = self.config
        ep = self._ep = new_endpoint()  # held by the engine at once, for _abandon
        start_endpoint(ep, cfg)
        acc_cfg = account_config(cfg)
        account = self._account = PjAccount(self)
        account.create(acc_cfg, True)
        log.info("SIP listening on %s:%d (UDP, TCP), %d calls", cfg.bind, cfg.port, cfg.max_calls)

    def _destroy(self) -> None:
        shutil.rmtree(self._pad_dir, ignore_errors=True)
        self._waker.close()
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

    # -- what the callbacks tell the engine (``sip.callbacks.EngineHooks``) ------------------

    def emit(self, event: CallEvent) -> None:
        """Hand ``event`` to asyncio (from the pjsip thread)."""
        self._loop.call_soon_threadsafe(self._on_event, event)

    def emit_later(self, event: CallEvent) -> None:
        """From any thread: have the pjsip thread hand ``event`` to asyncio, in turn."""
        self._jobs.post(lambda: self.emit(event))

    def incoming(self, account: Any, prm: Any) -> None:
        """A new INVITE: hold its call (unanswered) and tell asyncio."""
        key = next(self._keys)
        rdata = prm.rdata
        source = str(rdata.srcAddress)
        call = PjCall(self, account, prm.callId, key, source)
        self._calls[key] = call  # unreferenced, it would die and the caller get 603 (trap 1)
        self.emit(IncomingInvite(key, str(rdata.wholeMsg), source))

    def call_gone(self, key: int) -> None:
        """Call ``key`` is DISCONNECTED: drop it, and count its end for the pacing."""
        self._calls.pop(key, None)
        self._pacer.ended(time.monotonic())

    def request_answered(self) -> None:
        """A NOTIFY got its final answer (or timed out)."""
        self._requests_pending -= 1

    # -- ending calls the engine's way ------------------------------------------------------

    def _end_paced(self, key: int, action: Callable[[], None]) -> None:
        self._pacer.end(key, action, time.monotonic())

    def _watch(self, now: float) -> None:
        """End answered calls that never got their ACK, or no RTP, in time."""
        for call, why in overdue(list(self._calls.values()), now, self.config.no_media_s):
            log.warning("call %d from %s: %s; hanging up", call.key, call.source, why)
            self._end(call)

    def _end(self, call: PjCall) -> None:
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

    def _call(self, key: int) -> PjCall | None:
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

    def transfer(self, key: int, uri: str) -> bool:
        """Send REFER to blind-transfer the caller to ``uri``."""
        call = self._call(key)
        if call is None:
            return False
        call.xfer(uri, pj.CallOpParam(True))
        return True

    def rtp_received(self, key: int) -> int:
        """RTP packets received on call ``key`` so far (0 when the call or its audio is gone)."""
        call = self._call(key)
        return 0 if call is None else media.rtp_received(call)

    def play(self, key: int, files: list[Path]) -> int | None:
        """Start playing ``files`` to the caller; returns a token its PlaybackEnded carries."""
        call = self._call(key)
        if call is None or call.audio is None:
            return None
        token = next(self._tokens)
        media.play(call, PjPlayer(self, key, token), files, self._pad)
        return token

    def play_file(self, key: int, file: Path, start_samples: int = 0) -> int | None:
        """Start playing one WAV to the caller from ``start_samples`` in (see
        ``media.play_file``); returns a token its PlaybackEnded carries (None when the call or
        its audio is gone).

        Raises:
            ValueError: ``start_samples`` is negative or not before the end of the audio.
            CorruptAudioError: ``start_samples`` is given and the file's header is unreadable.
        """
        call = self._call(key)
        if call is None or call.audio is None:
            return None
        if start_samples:
            media.check_start(file, start_samples)  # before the player exists
        token = next(self._tokens)
        media.play_file(call, PjPlayer(self, key, token), file, start_samples)
        return token

    def playback_position(self, key: int, token: int) -> int:
        """Where player ``token`` is, in samples of its file; -1 when it is not the call's
        current player (0 may mean "unknown": see ``media.playback_position``)."""
        call = self._call(key)
        return -1 if call is None else media.playback_position(call, token)

    def stop_playing(self, key: int, token: int) -> None:
        """Stop the player ``token`` if it is still the call's current one."""
        call = self._call(key)
        if call is not None:
            media.stop_playing(call, token)

    def start_recording(self, key: int, path: Path) -> bool:
        """Record what the caller sends into ``path`` (16-bit PCM WAV at 8 kHz)."""
        call = self._call(key)
        if call is None or call.audio is None:
            return False
        media.start_recording(call, path)
        return True

    def stop_recording(self, key: int) -> None:
        """Stop recording: dropping the recorder writes the WAV sizes and closes the file."""
        call = self._call(key)
        if call is not None:
            media.stop_recording(call)

    def caller_level(self, key: int) -> int:
        """The caller's last signal level (0-255); 0 when the call is gone."""
        call = self._call(key)
        return 0 if call is None else media.caller_level(call)

    def send_mwi(self, phone: str, body: str) -> None:
        """Send an unsolicited message-summary NOTIFY (RFC 3842) to ``phone`` (an AOR),
        through the proxy when one is configured."""
        self._account.sendRequest(notify_request(phone, body))
        self._requests_pending += 1

    def send_mwi_batch(self, notifies: Sequence[tuple[str, str]]) -> list[str | None]:
        """``send_mwi`` for each ``(phone, body)`` in one pass of the pjsip thread; per NOTIFY
        None when sent, else the error's text (one bad AOR does not stop the others)."""
        errors: list[str | None] = []
        for phone, body in notifies:
            try:
                self.send_mwi(phone, body)
            except Exception as exc:  # pj.Error for a URI pjsip refuses, and the like
                errors.append(getattr(exc, "reason", "") or str(exc) or type(exc).__name__)
            else:
                errors.append(None)
        return errors

    @property
    def active_calls(self) -> int:
        """Calls the engine holds (read from any thread; a dict length is atomic)."""
        return len(self._calls)
