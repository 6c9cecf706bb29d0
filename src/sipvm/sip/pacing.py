"""Pacing call ends, so that pjlib's socket keys come back before they run out.

pjlib keeps a closed socket's ioqueue key 500 ms (``PJ_IOQUEUE_KEY_FREE_DELAY``) before it
can be reused, out of 64 keys in all (the select ioqueue of the wheel, which RTP shares with
SIP's transports: see ``sip.endpoint``), and each call holds two (RTP, RTCP). Calls that
end faster than their keys come back make the next INVITE abort the whole process (the
``pj_ioqueue_register_sock2`` assert, compiled in; measured: the 33rd INVITE refused at 80 a
second). So the engine ends calls itself at most ``per_window`` per
``window_s``, counting the ends callers cause too. A call waiting for its turn keeps its
slot, so pjsua meanwhile answers new INVITEs 486 without opening any socket.

With 12 per 0.6 s: at most 24 keys closing, 8 in live calls, 2 for the SIP listeners (UDP,
TCP), which leaves room for SIP-over-TCP connections and for ends this pacing cannot hold back
(a CANCEL, a caller's BYE, an offer pjsua refuses).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

log = logging.getLogger(__name__)

ENDS_WINDOW_S = 0.6
ENDS_PER_WINDOW = 12
#: Shortest time between two log lines about held-back ends (a flood would fill the log).
PACING_LOG_S = 10.0


class EndPacer:
    """Counts call ends over a sliding window and holds back the ends asked for beyond it.

    Pure bookkeeping over a given clock reading; the engine calls it in the pjsip thread.
    Held-back ends are kept with their call's key, never a pjsua2 object (trap 3).
    """

    def __init__(
        self, *, window_s: float = ENDS_WINDOW_S, per_window: int = ENDS_PER_WINDOW
    ) -> None:
        self.window_s = window_s
        self.per_window = per_window
        self._ends: deque[float] = deque()
        self._waiting: deque[tuple[int, Callable[[], None]]] = deque()
        self._held = 0
        self._logged_at: float | None = None

    @property
    def waiting(self) -> int:
        """Ends held back now."""
        return len(self._waiting)

    def ended(self, now: float) -> None:
        """A call ended (whoever ended it)."""
        self._ends.append(now)

    def _room(self, now: float) -> bool:
        while self._ends and self._ends[0] <= now - self.window_s:
            self._ends.popleft()
        return len(self._ends) < self.per_window

    def end(self, key: int, action: Callable[[], None], now: float) -> None:
        """Run ``action`` (which ends call ``key``) now if the window has room and nothing is
        waiting; otherwise keep it for :meth:`run`."""
        if not self._waiting and self._room(now):
            action()
            return
        self._waiting.append((key, action))
        self._held += 1
        if self._logged_at is None or now - self._logged_at >= PACING_LOG_S:
            log.warning(
                "calls are ending faster than %d per %.1f s (a flood?): %d ends held back "
                "since the last report; new INVITEs meanwhile get 486",
                self.per_window,
                self.window_s,
                self._held,
            )
            self._logged_at, self._held = now, 0

    def run(self, now: float, alive: Callable[[int], bool]) -> None:
        """Run the held-back ends the window has room for; an end whose call is gone
        (``alive(key)`` false: the caller hung up meanwhile) is dropped."""
        while self._waiting and self._room(now):
            key, action = self._waiting.popleft()
            if alive(key):
                action()
                if alive(key):  # not reported ended at once: count it now all the same
                    self.ended(now)
