"""A media worker's SIP side: the engine, the channels of its calls, and their dispatch.

New INVITEs are handed to an ``on_invite(key, raw, source)`` coroutine (the call router),
which decides to ``reject`` or ``accept`` them; ``accept`` answers and returns the call's
``PjCallChannel`` once the caller's ACK has confirmed the call and audio flows. A caller that
never confirms, or sends no RTP, is hung up by the engine (``EngineConfig.no_media_s``, Timer
H) and gets no greeting and no recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from sipvm.domain.load import TICK_S, LagTracker
from sipvm.flows.channel import CallerHungUp
from sipvm.sip.channel import PjCallChannel
from sipvm.sip.engine import CONFIRM_TIMEOUT_S, EngineConfig, PjEngine
from sipvm.sip.events import CallEnded, CallEvent, IncomingInvite

log = logging.getLogger(__name__)

#: How long ``accept`` waits for the ACK: the engine ends an unconfirmed call at Timer H
#: (or sooner without RTP), so this only guards against a lost end.
CONFIRM_WAIT_S = CONFIRM_TIMEOUT_S + 5.0


class InviteRouter(Protocol):
    """Decides what to do with each new INVITE (``flows.router.CallRouter``)."""

    draining: bool
    behind: bool

    async def on_invite(self, control: SipWorker, key: int, raw: str, source: str) -> None: ...


class SipWorker:
    """Owns one ``PjEngine`` and routes its events to the right call."""

    def __init__(
        self, config: EngineConfig, router: InviteRouter, *, lag: LagTracker | None = None
    ) -> None:
        self.config = config
        self._router = router
        self._channels: dict[int, PjCallChannel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._engine: PjEngine | None = None
        self._lag = lag
        self._watch: asyncio.Task[None] | None = None

    @property
    def engine(self) -> PjEngine:
        if self._engine is None:
            raise RuntimeError("the SIP worker is not started")
        return self._engine

    async def start(self) -> None:
        """Start SIP on the configured address and port."""
        self._engine = PjEngine(self.config, asyncio.get_running_loop(), self._dispatch)
        await self._engine.start()
        if self._lag is not None:
            self._watch = asyncio.create_task(watch_lag(self._lag, self._router))

    async def stop(self, grace_s: float = 0.0) -> None:
        """Refuse new calls; let calls in progress finish for up to ``grace_s``, then end
        them (their recordings are kept) and stop SIP."""
        self._router.draining = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._tasks and grace_s > 0:
            log.info("waiting up to %.0f s for %d calls to finish", grace_s, len(self._tasks))
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        for channel in list(self._channels.values()):
            with contextlib.suppress(CallerHungUp):
                await channel.hangup()
        if self._tasks:  # flows finish their deposits once they see the hang-up
            await asyncio.wait(set(self._tasks), timeout=10)
        if self._engine is not None:
            await self._engine.stop()

    @property
    def calls(self) -> int:
        """Calls being handled now."""
        return len(self._tasks)

    async def accept(self, key: int, *, refer_host: str) -> PjCallChannel:
        """Answer call ``key`` and return its channel once the caller's ACK has confirmed
        it and audio flows.

        Raises:
            CallerHungUp: the call ended (or never confirmed) first; nothing was played.
        """
        channel = PjCallChannel(self.engine, key, refer_host=refer_host)
        self._channels[key] = channel
        answered = await self.engine.run(lambda: self.engine.answer(key, 200))
        if not answered or not await channel.wait_confirmed(CONFIRM_WAIT_S):
            await channel.hangup()
            raise CallerHungUp(f"call {key} ended before it was confirmed")
        return channel

    async def reject(
        self, key: int, status: int, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Refuse call ``key`` with a final ``status``."""
        await self.engine.run(lambda: self.engine.reject(key, status, headers))

    async def send_mwi_batch(self, notifies: Sequence[tuple[str, str]]) -> list[str | None]:
        """Send message-waiting NOTIFYs, one job in the pjsip thread for the whole batch
        (``notify.mwi.LampSender``)."""
        engine = self.engine
        batch = list(notifies)
        return await engine.run(lambda: engine.send_mwi_batch(batch))

    def _dispatch(self, event: CallEvent) -> None:
        if isinstance(event, IncomingInvite):
            task = asyncio.create_task(self._handle(event))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return
        channel = self._channels.get(event.key)
        if channel is not None:
            channel.deliver(event)
        if isinstance(event, CallEnded):
            self._channels.pop(event.key, None)

    async def _handle(self, invite: IncomingInvite) -> None:
        try:
            await self._router.on_invite(self, invite.key, invite.raw, invite.source)
        except CallerHungUp:
            pass
        except Exception:
            log.exception("call %d failed", invite.key)
            await self.reject(invite.key, 500)


async def watch_lag(tracker: LagTracker, router: InviteRouter, tick_s: float = TICK_S) -> None:
    """Measure how late this process's event loop wakes, every ``tick_s``; keep
    ``router.behind`` in step with ``tracker`` (logged when it changes), until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        asked = loop.time()
        await asyncio.sleep(tick_s)
        now = loop.time()
        changed = tracker.add(now, now - asked - tick_s)
        if changed is None:
            continue
        router.behind = changed
        if changed:
            log.warning(
                "behind: the event loop lost %.0f ms of the last %.0f s (a saturated machine); "
                "new calls get 503 until it catches up",
                tracker.late_s * 1000,
                tracker.window_s,
            )
        else:
            log.info("caught up: new calls are taken again")
