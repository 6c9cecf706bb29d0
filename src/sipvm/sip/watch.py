"""Answered calls that never became calls: no ACK by Timer H, or no RTP soon after the answer.

The engine looks every ``WATCH_S`` in the pjsip thread and ends what :func:`overdue` names
(scanners and broken media paths would otherwise hold one of the worker's few call slots).
"""

from __future__ import annotations

from collections.abc import Iterable

from sipvm.sip import media
from sipvm.sip.callbacks import PjCall

#: Longest an answered call may wait for the caller's ACK: pjsip's Timer H (64 x T1).
CONFIRM_TIMEOUT_S = 32.0
#: How often the pjsip thread looks at answered calls for their ACK and first RTP packet.
WATCH_S = 0.25


def overdue(calls: Iterable[PjCall], now: float, no_media_s: float) -> list[tuple[PjCall, str]]:
    """The answered calls to end at ``now`` (``time.monotonic()``), each with why, for the log:
    not confirmed ``CONFIRM_TIMEOUT_S`` after the answer, or no RTP packet ``no_media_s``
    after it (0: never). A call found to have had RTP is marked, so it is not asked again."""
    out: list[tuple[PjCall, str]] = []
    for call in calls:
        if call.answered_at is None or call.ending:
            continue
        waited = now - call.answered_at
        if not call.confirmed and waited >= CONFIRM_TIMEOUT_S:
            out.append((call, f"no ACK {CONFIRM_TIMEOUT_S:.0f} s after the answer"))
        elif 0 < no_media_s <= waited and not call.rtp_seen:
            if media.rtp_received(call) > 0:
                call.rtp_seen = True
            else:
                out.append((call, f"no RTP {no_media_s:g} s after the answer"))
    return out
