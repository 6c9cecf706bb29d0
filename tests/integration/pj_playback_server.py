"""A one-call pjsua2 server for ``test_pj_playback.py``, run as its own process.

    python tests/integration/pj_playback_server.py --port P --rtp-port R \\
        --message six.wav --other tone.wav --playlist a.wav b.wav --out results.json

pjsua2 allows one Endpoint per process, and the test's caller (``tests.support.testpeer``) needs
its own, so the server side runs here: a ``SipWorker`` with a tiny router that answers the
first call and runs ``SCRIPT`` below with ``PjCallChannel.play_message``, then writes what
each step returned (and how long it took) as JSON. It prints "playback server ready" on
stderr once SIP listens, and exits after the call (status 0, or 1 when the call never came).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

from sipvm.flows.channel import CallerHungUp
from sipvm.sip.channel import PjCallChannel
from sipvm.sip.engine import EngineConfig
from sipvm.sip.worker import SipWorker

HOST = "127.0.0.1"
#: Silence between playbacks, so the caller can tell them apart.
GAP_S = 1.0


class OneCallRouter:
    """Answers the first INVITE, runs the playback script on it, refuses any other."""

    draining = False

    def __init__(self, message: Path, other: Path, playlist: list[Path]) -> None:
        self.message = message
        self.other = other
        self.playlist = playlist
        self.steps: list[dict[str, Any]] = []
        self.done = asyncio.Event()
        self._busy = False

    async def on_invite(self, control: SipWorker, key: int, raw: str, source: str) -> None:
        if self._busy:
            await control.reject(key, 486)
            return
        self._busy = True
        try:
            channel = await control.accept(key, refer_host=HOST)
            await self._script(channel)
            await channel.hangup()
        finally:
            self.done.set()

    async def _play(
        self,
        channel: PjCallChannel,
        name: str,
        file: Path,
        start_s: float,
        interrupt: str = "",
    ) -> float:
        """One ``play_message``, written down as a step; returns the position reached."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        step: dict[str, Any] = {"name": name, "start_s": start_s}
        self.steps.append(step)
        try:
            result = await channel.play_message(file, start_s=start_s, interrupt=interrupt)
        except CallerHungUp:
            step.update(hung_up=True, elapsed_s=loop.time() - began)
            raise
        step.update(key=result.key, position_s=result.position_s, elapsed_s=loop.time() - began)
        return result.position_s

    async def _script(self, channel: PjCallChannel) -> None:
        # The caller types 7 during this one: not an interrupt key, so it plays to the end.
        await self._play(channel, "from_3", self.message, 3.0, interrupt="5")
        # ...and that 7 stops the next playback before it starts.
        await self._play(channel, "typed_before", self.message, 2.5, interrupt="7")
        await self._play(channel, "past_end", self.message, 9.0, interrupt="5")
        await asyncio.sleep(GAP_S)
        # The caller presses 5 a moment after hearing this one; then the menu resumes.
        reached = await self._play(channel, "from_4", self.message, 4.0, interrupt="5")
        await self._play(channel, "resume", self.message, reached, interrupt="5")
        await asyncio.sleep(GAP_S)
        # A prompt of several files (a pjmedia playlist) must play to its very end.
        began = asyncio.get_running_loop().time()
        await channel.play(self.playlist)
        self.steps.append(
            {"name": "playlist", "elapsed_s": asyncio.get_running_loop().time() - began}
        )
        await asyncio.sleep(GAP_S)
        # The caller hangs up while this plays.
        with contextlib.suppress(CallerHungUp):
            await self._play(channel, "hangup", self.other, 0.5)


async def serve(args: argparse.Namespace) -> int:
    router = OneCallRouter(args.message, args.other, args.playlist)
    config = EngineConfig(
        bind=HOST, port=args.port, rtp_port=args.rtp_port, rtp_port_range=20, max_calls=1
    )
    worker = SipWorker(config, router)
    await worker.start()
    print("playback server ready", file=sys.stderr, flush=True)
    try:
        await asyncio.wait_for(router.done.wait(), args.timeout)
        code = 0
    except TimeoutError:
        print("no call came", file=sys.stderr)
        code = 1
    args.out.write_text(json.dumps({"steps": router.steps}, indent=2))
    await worker.stop()
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--message", type=Path, required=True)
    parser.add_argument("--other", type=Path, required=True)
    parser.add_argument("--playlist", type=Path, nargs="+", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
