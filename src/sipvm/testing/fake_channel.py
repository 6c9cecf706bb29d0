"""A scripted ``CallChannel`` for flow tests: the caller's actions in order, a transcript out.

The script is what the caller does, consumed as the flow asks:
- ``"12#"`` — a burst of keys, typed during the next ``play`` or ``collect``: ``play`` with a
  matching ``interrupt`` is cut short by the first one; ``collect`` reads them.
- ``WAIT`` — the caller does nothing: a ``collect`` times out ("").
- ``HANGUP`` — the caller hangs up: the next operation raises ``CallerHungUp``.
- ``Speak(seconds, ended_by=..., key=...)`` — what ``record`` captures: a tone WAV of that
  length is written to the path and the recording ends as given.
- ``TransferOutcome(status)`` — how the next ``transfer`` ends (default 200).
``play_message`` is cut short the same way as ``play``; a key stops it ``KEY_AFTER_S`` seconds
after ``start_s`` (or at the end of the recording), so seeking can be checked.
Everything the flow did is in ``transcript`` as ``(operation, detail)`` pairs.
"""

from __future__ import annotations

import math
import sys
import wave
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sipvm.audio.wav import read_wav_info
from sipvm.flows.channel import CallerHungUp, Playback, Recording, TransferResult

WAIT = "<wait>"
HANGUP = "<hangup>"
#: How far into a recording the fake caller is when a key stops ``play_message``.
KEY_AFTER_S = 1.0


def _write_tone_wav(path: Path, freq_hz: float, seconds: float, rate: int = 8000) -> None:
    """Write a half-scale sine of ``freq_hz`` as a 16-bit mono WAV (what the caller "says").

    Kept here rather than imported: the tone kit the suite measures audio with lives under
    ``tests/``, which the package must not depend on.
    """
    if not 0 < freq_hz < rate / 2:
        raise ValueError(f"tone frequency must be between 0 and {rate / 2} Hz, not {freq_hz}")
    step, peak = 2 * math.pi * freq_hz / rate, 0.5 * 32767
    samples = array("h", (round(peak * math.sin(step * i)) for i in range(round(seconds * rate))))
    if sys.byteorder == "big":
        samples.byteswap()  # WAV samples are little-endian
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())


@dataclass(frozen=True)
class Speak:
    """The caller talks into ``record`` for ``seconds`` (a tone of ``freq_hz``)."""

    seconds: float
    ended_by: Literal["key", "hangup", "max_length", "silence"] = "key"
    key: str | None = "#"
    freq_hz: float = 1000.0


@dataclass(frozen=True)
class TransferOutcome:
    """The final sipfrag status of the next transfer."""

    status: int = 200


Step = str | Speak | TransferOutcome


@dataclass
class FakeChannel:
    """A ``CallChannel`` that follows ``script`` and writes down what the flow did."""

    script: list[Step]
    transcript: list[tuple[str, object]] = field(default_factory=list)
    _keys: list[str] = field(default_factory=list)
    _hung_up: bool = False

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    def played(self) -> list[str]:
        """Stems of every file played, in order (prompt names, greeting files)."""
        stems: list[str] = []
        for op, detail in self.transcript:
            if op == "play":
                stems.extend(Path(f).stem for f in detail)  # type: ignore[attr-defined]
            elif op == "play_message":
                stems.append(Path(detail[0]).stem)  # type: ignore[index]
        return stems

    def _next(self) -> Step | None:
        return self.script[0] if self.script else None

    def _pull_keys(self) -> None:
        """Type the next burst of keys (one script string) if the buffer is empty."""
        head = self._next()
        if not self._keys and isinstance(head, str) and head not in (WAIT, HANGUP):
            self._keys.extend(self.script.pop(0))  # type: ignore[arg-type]

    def _check(self) -> None:
        if self._hung_up:
            raise CallerHungUp("fake caller hung up")
        if self._next() == HANGUP:
            self.script.pop(0)
            self._hung_up = True
            self.transcript.append(("hung_up", None))
            raise CallerHungUp("fake caller hung up")

    async def play(self, files: Sequence[Path], *, interrupt: str = "") -> str | None:
        self._check()
        self.transcript.append(("play", list(files)))
        self._pull_keys()
        for i, key in enumerate(self._keys):
            if key in interrupt:
                del self._keys[i]
                return key
        return None

    async def play_message(
        self, file: Path, *, start_s: float = 0.0, interrupt: str = ""
    ) -> Playback:
        self._check()
        length = read_wav_info(file).duration_s
        self.transcript.append(("play_message", (file, round(start_s, 3))))
        self._pull_keys()
        for i, key in enumerate(self._keys):
            if key in interrupt:
                del self._keys[i]
                return Playback(key, min(start_s + KEY_AFTER_S, length))
        return Playback(None, length)

    async def collect(
        self,
        *,
        max_digits: int = 1,
        timeout_s: float = 5.0,
        inter_digit_s: float = 3.0,
        terminators: str = "#",
    ) -> str:
        self._check()
        self._pull_keys()
        typed = ""
        while self._keys and len(typed) < max_digits:
            key = self._keys.pop(0)
            if key in terminators:
                break
            typed += key
        if not typed and self._next() == WAIT:
            self.script.pop(0)
        self.transcript.append(("collect", typed))
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
        self._check()
        self._keys.clear()
        step = self.script.pop(0) if self.script else None
        if not isinstance(step, Speak):
            raise AssertionError(f"the flow records but the script says {step!r}")
        seconds = min(step.seconds, max_s)
        ended_by = "max_length" if step.seconds > max_s else step.ended_by
        _write_tone_wav(path, step.freq_hz, seconds)
        if ended_by == "hangup":
            self._hung_up = True
        self.transcript.append(("record", (seconds, ended_by)))
        return Recording(path, seconds, ended_by, step.key if ended_by == "key" else None)

    async def transfer(self, target: str) -> TransferResult:
        self._check()
        step = self._next()
        status = 200
        if isinstance(step, TransferOutcome):
            self.script.pop(0)
            status = step.status
        self.transcript.append(("transfer", target))
        if 200 <= status < 300:
            self._hung_up = True  # the PBX takes the caller away
        return TransferResult(accepted=200 <= status < 300, status=status)

    async def hangup(self) -> None:
        if not self._hung_up:
            self._hung_up = True
            self.transcript.append(("hangup", None))
