"""Recordings that are silence from end to end never become messages: not from a call, not
from ``deposit_file``, not from crash recovery (quarantined there, like a too-short one)."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.messages import DepositFacts
from sipvm.testing.clock import FakeClock
from tests.support.tones import tone_samples, write_silence_wav, write_tone_wav


def write_crashed(path: Path, samples: bytes) -> None:
    """16-bit 8 kHz mono PCM as pjmedia leaves it when the process dies: sizes are 0."""
    header = b"RIFF" + struct.pack("<I", 0) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    header += b"data" + struct.pack("<I", 0)
    path.write_bytes(header + samples)


def line_noise(seconds: float) -> bytes:
    """The A-law idle code as the bridge decodes it (+-8): a quiet line, not a caller."""
    return struct.pack("<2h", 8, -8) * round(seconds * 4000)


async def begin(app: App, clock: FakeClock, inbox: str = "1002") -> tuple[str, Path]:
    facts = DepositFacts(inbox=inbox, received_at=clock(), caller="5550100")
    return await app.deposits.begin(facts)


async def test_a_silent_call_recording_is_not_stored(
    app: App, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    uid, wav = await begin(app, clock)
    write_silence_wav(wav, 12.0)
    with caplog.at_level(logging.INFO, "sipvm"):
        assert await app.deposits.finish(uid) is None
    assert "inbox 1002: not stored: the caller sent only silence (12.0 s" in caplog.text
    assert await app.messages.messages("1002") == []
    assert not list(app.files.spool.iterdir())
    # the same length with a tone in it is a message
    uid, wav = await begin(app, clock)
    write_tone_wav(wav, 700.0, 12.0, amplitude=0.01)  # -43 dBFS: a quiet speaker
    assert await app.deposits.finish(uid) is not None


async def test_deposit_file_refuses_silence(app: App, clock: FakeClock, tmp_path: Path) -> None:
    facts = DepositFacts(inbox="1002", received_at=clock(), caller="5550100")
    silent = write_silence_wav(tmp_path / "silent.wav", 5.0)
    assert await app.deposits.deposit_file(facts, silent) is None
    assert silent.exists()  # the caller's file is left alone
    assert await app.messages.messages("1002") == []


async def test_recovery_quarantines_silent_leftovers_and_adopts_the_others(
    app: App, clock: FakeClock
) -> None:
    silent_uid, silent = await begin(app, clock)
    write_crashed(silent, line_noise(9.0))
    spoken_uid, spoken = await begin(app, clock)
    write_crashed(spoken, bytes(2 * 8000 * 2) + tone_samples(500, 3.0).tobytes())
    report = await app.deposits.recover()
    (adopted,) = report.adopted
    assert adopted.uid == spoken_uid
    ((moved, why),) = report.quarantined
    assert moved.name == f"{silent_uid}.wav"
    assert why == "9.0 s of only silence, no message"
    kept = {p.name for p in app.files.quarantine.iterdir()}
    assert {f"{silent_uid}.wav", f"{silent_uid}.json"} <= kept
    assert not list(app.files.spool.iterdir())
    assert [m.uid for m in await app.messages.messages("1002")] == [spoken_uid]


async def test_silent_file_renamed_but_not_committed_is_quarantined(
    app: App, clock: FakeClock
) -> None:
    uid, wav = await begin(app, clock)
    write_silence_wav(wav, 6.0)
    # crash between the rename into audio/ and the commit of the row
    committed = app.files.commit(wav, "1002", uid)
    assert app.files.path(committed).exists()
    report = await app.deposits.recover()
    assert report.adopted == []
    ((moved, why),) = report.quarantined
    assert "only silence" in why
    assert not app.files.path(committed).exists()
    assert moved.exists()
    assert await app.messages.messages("1002") == []
