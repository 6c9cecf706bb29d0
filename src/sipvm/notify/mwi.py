"""Message-waiting lamps: send each phone the counts of every inbox it shows, coalesced.

``changed(inboxes)`` asks for fresh NOTIFYs to every phone showing those inboxes; at most one
NOTIFY per phone and inbox goes out per ``coalesce_s`` (a burst sends the latest counts once,
at the end of the window). ``set_directory`` follows membership changes: phones that now show
an inbox get its counts, phones that no longer do get a cleared lamp (0/0, never the counts).
``refresh_all`` resends the whole state (at start and every ``refresh_s``), paced.

The counts are read when the NOTIFY is sent, so a phone always gets the state at that moment.

One lamp, several inboxes: many phones (and Asterisk's and FreeSWITCH's MWI relays) keep only
the last NOTIFY's ``Messages-Waiting``, whatever its ``Message-Account``. So the NOTIFYs of a
round go out "no" first, "yes" last, and a phone whose round ended on "no" while another of
its inboxes has new messages is sent that inbox again: the last NOTIFY a phone gets says "yes"
whenever any of its inboxes has new messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from sipvm.domain.messages import InboxCounts
from sipvm.domain.model import Directory
from sipvm.domain.mwi import CLEARED, lamp_map, message_account, summary_body

log = logging.getLogger(__name__)

Key = tuple[str, str]
"""(phone AOR, inbox)."""


class LampSender(Protocol):
    """Sends unsolicited message-summary NOTIFYs (the SIP engine: one round-trip into its
    thread per batch, not per NOTIFY)."""

    async def send_mwi_batch(self, notifies: Sequence[tuple[str, str]]) -> Sequence[str | None]:
        """Send each ``(phone, body)``; per NOTIFY None when it was handed to the SIP stack,
        else what went wrong (only logged: lamps are refreshed)."""


class CountsSource(Protocol):
    """Reads inbox counts (the message repository)."""

    async def counts(self, inboxes: Iterable[str]) -> Mapping[str, InboxCounts]:
        """The shared counts of each inbox (zeros for an inbox without messages)."""


class MwiNotifier:
    """Keeps every member's phone lamps in step with their inboxes."""

    def __init__(
        self,
        sender: LampSender,
        counts: CountsSource,
        *,
        coalesce_s: float = 0.2,
        max_per_s: float = 200.0,
        reachable: Callable[[str], bool] = lambda phone: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sender = sender
        self._counts = counts
        self._coalesce_s = coalesce_s
        self._max_per_s = max_per_s
        self._reachable = reachable
        self._clock = clock
        self._lamps: Mapping[str, tuple[str, ...]] = {}
        self._shown: dict[str, list[str]] = {}
        """For each phone, the inboxes it shows (the reverse of ``_lamps``)."""
        self._pending: dict[Key, float] = {}
        self._clear: set[Key] = set()
        self._last_sent: dict[Key, float] = {}
        self._wake = asyncio.Event()
        self.sent = 0
        """NOTIFYs sent so far (for logs and tests)."""

    # -- what changed ------------------------------------------------------------------------

    def set_directory(self, directory: Directory) -> None:
        """Follow a new directory: new (phone, inbox) pairs get counts, dropped ones a clear."""
        lamps: dict[str, tuple[str, ...]] = {}
        unreachable: set[str] = set()
        for inbox, phones in lamp_map(directory).items():
            lamps[inbox] = tuple(p for p in phones if self._reachable(p))
            unreachable.update(p for p in phones if not self._reachable(p))
        if unreachable:
            log.warning(
                "message-waiting lamps: %d phones (e.g. %s) have a host name and no [sip] proxy "
                "is set, so they get no NOTIFY; set [sip] proxy to the PBX or proxy they "
                'register to (an IP address, e.g. "sip:10.0.0.2:5060")',
                len(unreachable),
                min(unreachable),
            )
        before = {(p, i) for i, phones in self._lamps.items() for p in phones}
        after = {(p, i) for i, phones in lamps.items() for p in phones}
        self._lamps = lamps
        self._shown = {}
        for inbox, phones in lamps.items():
            for phone in phones:
                self._shown.setdefault(phone, []).append(inbox)
        for key in before - after:
            self._pending.pop(key, None)
            self._clear.add(key)
        self._clear -= after
        self._schedule(after - before)

    def changed(self, inboxes: Iterable[str]) -> None:
        """The counts of these inboxes may have changed: tell their phones."""
        self._schedule((p, i) for i in set(inboxes) for p in self._lamps.get(i, ()))

    def refresh_all(self) -> None:
        """Send every phone the state of every inbox it shows."""
        self._schedule((p, i) for i, phones in self._lamps.items() for p in phones)

    @property
    def pending(self) -> int:
        """NOTIFYs waiting to be sent."""
        return len(self._pending) + len(self._clear)

    def _schedule(self, keys: Iterable[Key]) -> None:
        now = self._clock()
        for key in keys:
            due = max(now, self._last_sent.get(key, -1e18) + self._coalesce_s)
            self._pending[key] = min(due, self._pending.get(key, due))
        self._wake.set()

    # -- sending -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Send NOTIFYs as they fall due, until cancelled."""
        while True:
            sent = await self.send_due()
            if sent:
                await asyncio.sleep(sent / self._max_per_s)  # pace refresh bursts
                continue
            self._wake.clear()
            timeout = None
            if self._pending:
                timeout = max(0.0, min(self._pending.values()) - self._clock())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def send_due(self, limit: int = 50) -> int:
        """Send up to ``limit`` NOTIFYs that are due now; returns how many were sent."""
        now = self._clock()
        clears = [self._clear.pop() for _ in range(min(limit, len(self._clear)))]
        due = sorted((t, k) for k, t in self._pending.items() if t <= now)
        due_keys = [k for _, k in due[: limit - len(clears)]]
        for key in due_keys:
            del self._pending[key]
        summaries = await self._counts.counts({i for _, i in due_keys}) if due_keys else {}
        work = [(k, CLEARED) for k in clears]
        work += [(k, summaries.get(k[1], CLEARED)) for k in due_keys]
        work.sort(key=lambda item: item[1].new > 0)  # stable: every phone's "yes" comes last
        notifies = [
            (phone, summary_body(message_account(inbox, phone), summary))
            for (phone, inbox), summary in work
        ]
        try:
            errors = await self._sender.send_mwi_batch(notifies) if notifies else []
        except Exception as exc:  # a lamp is refreshed later; never stop the loop
            log.exception("could not send %d message-waiting NOTIFYs", len(notifies))
            errors = [str(exc)] * len(notifies)
        sent_at = self._clock()
        for ((phone, inbox), _), error in zip(work, errors, strict=True):
            if error is not None:
                log.error("could not send the message-waiting NOTIFY to %s: %s", phone, error)
                continue
            self._last_sent[(phone, inbox)] = sent_at
            self.sent += 1
        await self._end_on_yes(work)
        return len(work)

    async def _end_on_yes(self, work: list[tuple[Key, InboxCounts]]) -> None:
        """Phones whose last NOTIFY said "no" though another of their inboxes has new
        messages: send them that inbox again (respecting the coalescing window)."""
        last: dict[str, tuple[str, InboxCounts]] = {}
        for (phone, inbox), summary in work:
            last[phone] = (inbox, summary)
        dark = {
            phone: inbox
            for phone, (inbox, summary) in last.items()
            if summary.new == 0 and len(self._shown.get(phone, ())) > 1
        }
        if not dark:
            return
        others = {i for phone, inbox in dark.items() for i in self._shown[phone] if i != inbox}
        counts = await self._counts.counts(others)
        for phone, inbox in dark.items():
            lit = [i for i in self._shown[phone] if i != inbox and counts[i].new > 0]
            if lit and (phone, lit[0]) not in self._pending:
                self._schedule([(phone, lit[0])])
