"""``PjCallChannel``: the flows' ``CallChannel`` over one call of the pjsua2 engine.

All pjsua2 work is a job run in the pjsip thread (``engine.run``); what happens to the call
arrives as events through ``deliver``, which wakes whichever operation is waiting.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from sipvm.audio.wav import header_is_final, read_wav_info
from sipvm.errors import CorruptAudioError
from sipvm.flows.channel import CallerHungUp, Playback, Recording, TransferResult
from sipvm.sip.engine import PjEngine
from sipvm.sip.events import (
    CallConfirmed,
    CallEnded,
    CallEvent,
    DtmfDigit,
    MediaActive,
    PlaybackEnded,
    TransferProgress,
)

log = logging.getLogger(__name__)

#: Caller signal level (pjmedia's 0-255 scale, µ-law-like) at or below which audio counts as
#: silence: digital A-law silence reads about 1, line noise a few more, speech 60 and up.
SILENCE_LEVEL = 10
#: How often recording checks the caller's level, the clock and the keys.
POLL_S = 0.1
#: Longest a single prompt may play before it is assumed stuck.
MAX_PROMPT_S = 600.0
#: How long past its expected end a message may play before it is assumed stuck.
MESSAGE_SLACK_S = 10.0


class PjCallChannel:
    """One answered (or answering) call."""

    def __init__(self, engine: PjEngine, key: int, *, refer_host: str) -> None:
        self._engine = engine
        self.key = key
        self._refer_host = refer_host
        self._digits: deque[str] = deque()
        self._finished_players: set[int] = set()
        self._transfer: list[TransferProgress] = []
        self._media = False
        self._confirmed = False
        self._ended = False
        self.end_status = 0
        self._changed = asyncio.Event()

    # -- events from the engine ------------------------------------------------------------

    def deliver(self, event: CallEvent) -> None:
        """Take one event for this call (called on the asyncio loop)."""
        if isinstance(event, DtmfDigit):
            self._digits.append(event.digit)
        elif isinstance(event, PlaybackEnded):
            self._finished_players.add(event.token)
        elif isinstance(event, MediaActive):
            self._media = True
        elif isinstance(event, CallConfirmed):
            self._confirmed = True
        elif isinstance(event, TransferProgress):
            self._transfer.append(event)
        elif isinstance(event, CallEnded):
            self._ended = True
            self.end_status = event.status
        self._changed.set()

    async def _wait_until(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``ready()`` holds (True) or ``timeout`` seconds pass (False)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not ready():
            self._changed.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                return ready()
        return True

    async def wait_confirmed(self, timeout: float) -> bool:
        """Wait after answering until the caller's ACK has confirmed the call and audio
        flows; False if that did not happen in ``timeout`` (or the call ended)."""
        await self._wait_until(lambda: (self._confirmed and self._media) or self._ended, timeout)
        return self._confirmed and self._media and not self._ended

    # -- CallChannel -------------------------------------------------------------------------

    @property
    def hung_up(self) -> bool:
        """Whether the call is over."""
        return self._ended

    async def play(self, files: Sequence[Path], *, interrupt: str = "") -> str | None:
        """Play ``files``; a key in ``interrupt`` (typed now or before) stops and is returned."""
        self._check()
        if not files:
            return None
        pressed = self._take(interrupt)
        if pressed:
            return pressed
        paths = list(files)
        token = await self._engine.run(lambda: self._engine.play(self.key, paths))
        if token is None:
            self._check()
            return None
        await self._wait_until(
            lambda: (
                self._ended
                or token in self._finished_players
                or any(d in interrupt for d in self._digits)
            ),
            MAX_PROMPT_S,
        )
        if token not in self._finished_players and not self._ended:
            await self._engine.run(lambda: self._engine.stop_playing(self.key, token))
        self._finished_players.discard(token)
        self._check()
        return self._take(interrupt)

    async def play_message(
        self, file: Path, *, start_s: float = 0.0, interrupt: str = ""
    ) -> Playback:
        """Play one recording from ``start_s`` seconds in (clamped to the recording); a key in
        ``interrupt`` (typed now or before) stops it and comes back with the position reached.

        A key typed before the call wins, even when ``start_s`` is past the end: it is
        returned at once with the (clamped) start. Otherwise a start at or past the end
        returns ``Playback(None, length)`` at once. Seconds are counted in the file's own
        sample rate (from its header).
        """
        self._check()
        info = read_wav_info(file)
        rate, length = info.sample_rate, info.duration_s
        start_frame = round(min(max(start_s, 0.0), length) * rate)
        start = start_frame / rate
        pressed = self._take(interrupt)
        if pressed:
            return Playback(pressed, start)
        if start_frame >= info.frames:
            return Playback(None, length)
        start_samples = start_frame * info.channels  # pjsua2 counts every channel's samples
        token = await self._engine.run(
            lambda: self._engine.play_file(self.key, file, start_samples)
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        if token is None:
            self._check()
            return Playback(None, length)
        await self._wait_until(
            lambda: (
                self._ended
                or token in self._finished_players
                or any(d in interrupt for d in self._digits)
            ),
            length - start + MESSAGE_SLACK_S,
        )
        played_out = token in self._finished_players
        samples = -1
        if not played_out and not self._ended:

            def stop() -> int:
                # Read the position and stop in one job, so both see the same frame.
                reached = self._engine.playback_position(self.key, token)
                self._engine.stop_playing(self.key, token)
                return reached

            samples = await self._engine.run(stop)
            played_out = token in self._finished_players  # EOF may have overtaken the key
        self._finished_players.discard(token)
        self._check()
        if played_out:
            position = length
        elif samples > 0:
            position = samples / info.channels / rate
        else:
            # pjmedia reports 0 once it has read ahead to the end of the file (and after
            # EOF): the clock is the best estimate left.
            position = start + (loop.time() - started)
        key = self._take(interrupt)
        if key is None:
            if not played_out:
                log.warning("message %s stuck at %.1f s; stopped", file.name, position)
            return Playback(None, length)
        return Playback(key, min(max(position, 0.0), length))

    async def collect(
        self,
        *,
        max_digits: int = 1,
        timeout_s: float = 5.0,
        inter_digit_s: float = 3.0,
        terminators: str = "#",
    ) -> str:
        """Digits until ``max_digits``, a terminator or a timeout ("" for none at all)."""
        typed = ""
        while len(typed) < max_digits:
            wait = timeout_s if not typed else inter_digit_s
            got = await self._wait_until(lambda: self._ended or bool(self._digits), wait)
            self._check()
            if not got:
                break
            digit = self._digits.popleft()
            if digit in terminators:
                break
            typed += digit
        return typed

    async def record(
        self,
        path: Path,
        *,
        max_s: float,
        silence_s: float = 10.0,
        terminators: str = "#",
        warning: Sequence[Path] = (),
        warn_before_s: float = 10.0,
    ) -> Recording:
        """Record the caller until a terminator, hang-up, ``max_s`` or ``silence_s`` of quiet."""
        self._check()
        self._digits.clear()  # keys typed during the greeting must not end the recording
        engine, call_key = self._engine, self.key

        def begin() -> tuple[bool, int]:
            return engine.start_recording(call_key, path), engine.rtp_received(call_key)

        def poll(rtp_too: bool) -> tuple[int, int]:
            level = engine.caller_level(call_key)
            return level, engine.rtp_received(call_key) if rtp_too else 0

        started, rtp_before = await engine.run(begin)
        rtp_arrived = False  # whether any RTP packet came while recording
        loop = asyncio.get_running_loop()
        start = last_sound = loop.time()
        ended_by: str | None = None if started else "hangup"
        key: str | None = None
        warning_token: int | None = None
        while ended_by is None:
            await self._wait_until(lambda: self._ended or bool(self._digits), POLL_S)
            now = loop.time()
            if self._ended:
                ended_by = "hangup"
                break
            while self._digits:
                digit = self._digits.popleft()
                if digit in terminators:
                    ended_by, key = "key", digit
                    break
            if ended_by:
                break
            if now - start >= max_s:
                ended_by = "max_length"
                break
            if warning and warning_token is None and now - start >= max_s - warn_before_s:
                warning_token = await self._engine.run(
                    functools.partial(self._engine.play, self.key, list(warning))
                )
            level, rtp = await engine.run(functools.partial(poll, not rtp_arrived))
            rtp_arrived = rtp_arrived or rtp > rtp_before
            if level > SILENCE_LEVEL:
                last_sound = now
            elif now - last_sound >= silence_s:
                ended_by = "silence"
        if not self._ended:

            def stop() -> int:
                engine.stop_recording(call_key)
                return engine.rtp_received(call_key)

            rtp_arrived = await engine.run(stop) > rtp_before or rtp_arrived
            if warning_token is not None:
                token = warning_token
                await self._engine.run(lambda: self._engine.stop_playing(self.key, token))
        # The recorder is dropped (on hang-up, by the engine before it reported the end); the
        # bridge closes the file a frame or so later. Wait for that, so no audio is lost.
        await self._wait_closed(path)
        return Recording(
            path,
            _duration(path),
            ended_by,  # type: ignore[arg-type]
            key,
            audio_received=rtp_arrived or not started,
        )

    async def _wait_closed(self, path: Path, timeout: float = 3.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not header_is_final(path):
            if loop.time() > deadline or not path.exists():
                log.warning("recording %s was not closed in %.0f s", path.name, timeout)
                return
            await asyncio.sleep(0.02)

    async def transfer(self, target: str) -> TransferResult:
        """REFER the caller to ``target`` at the PBX and wait for the final NOTIFY."""
        self._check()
        uri = f"sip:{target}@{self._refer_host}"
        self._transfer.clear()
        sent = await self._engine.run(lambda: self._engine.transfer(self.key, uri))
        if not sent:
            self._check()
            return TransferResult(accepted=False, status=0)
        await self._wait_until(lambda: self._ended or any(t.final for t in self._transfer), 32.0)
        status = self._transfer[-1].status if self._transfer else 0
        return TransferResult(accepted=200 <= status < 300, status=status)

    async def hangup(self) -> None:
        """Send BYE and wait (briefly) for the call to end."""
        if self._ended:
            return
        await self._engine.run(lambda: self._engine.hangup(self.key))
        await self._wait_until(lambda: self._ended, 5.0)

    # -- helpers ------------------------------------------------------------------------------

    def _check(self) -> None:
        if self._ended:
            raise CallerHungUp(f"call {self.key} ended")

    def _take(self, wanted: str) -> str | None:
        """Remove and return the first typed key that is in ``wanted``."""
        for digit in self._digits:
            if digit in wanted:
                self._digits.remove(digit)
                return digit
        return None


def _duration(path: Path) -> float:
    try:
        return read_wav_info(path).duration_s
    except (CorruptAudioError, OSError) as exc:
        log.warning("recording %s is unreadable: %s", path.name, exc)
        return 0.0
