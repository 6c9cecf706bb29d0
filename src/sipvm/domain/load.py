"""Whether a serving process has fallen behind: refuse new calls before recordings degrade.

On a saturated machine a worker's event loop and media fall behind real time together: a
greeting plays slow and a recording comes out seconds short. A worker measures how late its
event loop wakes (``sip.worker``: a timer that should fire every ``TICK_S``) and feeds the
lateness here; while the lateness summed over the last ``window_s`` is ``on_s`` or more (the
loop lost that much of the last second) it is *behind* and new INVITEs get 503 with
Retry-After (the front tries another worker, and says 503 to the caller when none is free).
It is no longer behind once the sum drops to ``off_s`` (hysteresis: no flapping at the edge).
Calls already up go on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

TICK_S = 0.1
"""How often the worker measures its lateness."""


@dataclass
class LagTracker:
    """The recent lateness of a process's event loop and whether it is behind."""

    on_s: float = 0.2
    off_s: float = 0.05
    window_s: float = 1.0
    min_samples: int = 3
    behind: bool = False
    _samples: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, now: float, lag_s: float) -> bool | None:
        """Record ``lag_s`` seconds of lateness at ``now``; True when this makes the process
        behind, False when it catches up, None when nothing changed."""
        self._samples.append((now, max(0.0, lag_s)))
        while self._samples and self._samples[0][0] < now - self.window_s:
            self._samples.popleft()
        if len(self._samples) < self.min_samples:
            return None
        late = self.late_s
        if not self.behind and late >= self.on_s:
            self.behind = True
            return True
        if self.behind and late <= self.off_s:
            self.behind = False
            return False
        return None

    @property
    def late_s(self) -> float:
        """How late the loop woke in all over the window."""
        return sum(lag for _, lag in self._samples)
