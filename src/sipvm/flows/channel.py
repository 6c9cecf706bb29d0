"""The small interface call flows talk to: play, collect digits, record, transfer, hang up.

``sip.PjCallChannel`` implements it over pjsua2; ``sipvm.testing.fake_channel`` over a script.
Every method raises ``CallerHungUp`` once the caller is gone, except ``record``, which returns
what was recorded with ``ended_by="hangup"`` (a message left by hanging up is still a message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from sipvm.errors import SipvmError

#: Keys a caller can press (RFC 4733 events 0-15).
KEYS = "0123456789*#ABCD"


class CallerHungUp(SipvmError):
    """The caller hung up: the flow stops here (after keeping anything recorded)."""


@dataclass(frozen=True)
class Recording:
    """What ``CallChannel.record`` captured."""

    path: Path
    duration_s: float
    ended_by: Literal["key", "hangup", "max_length", "silence"]
    key: str | None = None
    """The terminator key pressed, when ``ended_by == "key"``."""
    audio_received: bool = True
    """False when not one audio packet came from the caller while recording (a dead media
    path): the file then holds nothing the caller said, whatever its length."""


@dataclass(frozen=True)
class TransferResult:
    """How a blind transfer (REFER) ended, from the NOTIFY sipfrag."""

    accepted: bool
    status: int
    """SIP status in the final sipfrag (200 when the target answered), 0 if none came."""


@dataclass(frozen=True)
class Playback:
    """Where ``CallChannel.play_message`` stopped."""

    key: str | None
    """The ``interrupt`` key that stopped playback; None when the recording played to its end."""
    position_s: float
    """Seconds into the recording where playback stopped (its length when it played out)."""


class CallChannel(Protocol):
    """One answered call, as a flow sees it."""

    @property
    def hung_up(self) -> bool:
        """Whether the caller is gone."""
        ...

    async def play(self, files: Sequence[Path], *, interrupt: str = "") -> str | None:
        """Play the files in order; a key in ``interrupt`` stops playback and is returned.

        Keys pressed during playback that are not in ``interrupt`` are kept for ``collect``.
        """
        ...

    async def play_message(
        self, file: Path, *, start_s: float = 0.0, interrupt: str = ""
    ) -> Playback:
        """Play one recording from ``start_s`` seconds in; a key in ``interrupt`` (typed now or
        before) stops it and is returned with the position reached, so a menu can pause,
        rewind or skip ahead and go on from there."""
        ...

    async def collect(
        self,
        *,
        max_digits: int = 1,
        timeout_s: float = 5.0,
        inter_digit_s: float = 3.0,
        terminators: str = "#",
    ) -> str:
        """Digits typed (buffered ones first) until ``max_digits``, a terminator (not
        included) or a timeout; "" when nothing was typed in ``timeout_s``."""
        ...

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
        """Record the caller to ``path`` (16-bit mono WAV) until a terminator key, hang-up,
        ``max_s`` or ``silence_s`` of silence; ``warning`` is played ``warn_before_s`` before
        the end of the maximum length."""
        ...

    async def transfer(self, target: str) -> TransferResult:
        """Blind-transfer the caller to ``target`` (an extension or number) with REFER."""
        ...

    async def hangup(self) -> None:
        """End the call (no-op when already ended)."""
        ...
