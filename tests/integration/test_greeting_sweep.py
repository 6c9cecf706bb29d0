"""The sweep of files no greeting uses goes by the service's clock, not the wall clock."""

from __future__ import annotations

import math
import os
import struct
import wave
from pathlib import Path

from sipvm.app import App
from sipvm.services.greetings import GREETINGS_DIR, ORPHAN_AGE_S
from sipvm.testing.clock import FakeClock


def tone_wav(path: Path, seconds: float = 1.5, rate: int = 8000) -> Path:
    """A 600 Hz tone at half scale: enough for the converter to keep as a greeting."""
    frames = b"".join(
        struct.pack("<h", int(16000 * math.sin(2 * math.pi * 600 * i / rate)))
        for i in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return path


async def test_a_leftover_goes_once_it_is_old_by_the_service_clock(
    app: App, clock: FakeClock, tmp_path: Path
) -> None:
    src = tone_wav(tmp_path / "g.wav")
    await app.greetings.upload("2001", "unavailable", src)
    folder = app.data_dir / GREETINGS_DIR / "2001"
    stray = folder / "unavailable-left-by-a-crash.wav"
    stray.write_bytes(src.read_bytes())
    # Stamped "now" by the service's clock, which is far from the wall clock's now.
    stamp = clock().timestamp()
    os.utime(stray, (stamp, stamp))

    await app.greetings.upload("2001", "unavailable", src)
    assert stray.exists()  # younger than ORPHAN_AGE_S by the service's clock

    clock.advance(seconds=ORPHAN_AGE_S + 60)
    await app.greetings.upload("2001", "unavailable", src)
    assert not stray.exists()
