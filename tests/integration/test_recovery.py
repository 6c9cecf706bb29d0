"""Startup recovery: recordings interrupted by a crash are adopted or quarantined, never lost."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import pytest

from sipvm.app import App
from sipvm.domain.messages import DepositFacts
from sipvm.testing.clock import FakeClock
from tests.support.tones import read_pcm_mono, seconds_with_tone, tone_samples

REPO = Path(__file__).resolve().parents[2]


def write_crashed_wav(path: Path, seconds: float, freq: float = 1000.0) -> None:
    """A 16-bit 8 kHz WAV as pjmedia leaves it when the process dies: sizes in the header are 0."""
    pcm = tone_samples(freq, seconds).tobytes()
    header = b"RIFF" + struct.pack("<I", 0) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    header += b"data" + struct.pack("<I", 0)
    path.write_bytes(header + pcm)


async def begin(app: App, clock: FakeClock, inbox: str = "2001") -> tuple[str, Path]:
    facts = DepositFacts(inbox=inbox, received_at=clock(), caller="5550100", reason="no-answer")
    return await app.deposits.begin(facts)


async def test_interrupted_recording_is_repaired_and_adopted(app: App, clock: FakeClock) -> None:
    uid, wav = await begin(app, clock)
    write_crashed_wav(wav, 5.0)
    with pytest.raises(wave.Error), wave.open(str(wav)):  # as left by the crash: unreadable
        pass
    report = await app.deposits.recover()
    (adopted,) = report.adopted
    assert adopted.uid == uid and adopted.inbox == "2001"
    assert adopted.caller == "5550100" and adopted.reason == "no-answer"
    assert adopted.duration_s == pytest.approx(5.0, abs=0.01)
    audio = app.files.path(adopted.audio)
    with wave.open(str(audio)) as w:
        assert w.getnframes() == 40000
    assert seconds_with_tone(read_pcm_mono(audio), 8000, 1000.0) == pytest.approx(5.0, abs=0.5)
    assert not list(app.files.spool.iterdir())
    trail = await app.messages._repo.audit_trail(adopted.id)
    assert [(e.actor, e.action) for e in trail] == [("system", "recover")]
    assert (await app.deposits.recover()).adopted == []  # idempotent


async def test_too_short_or_broken_recordings_are_quarantined(app: App, clock: FakeClock) -> None:
    short_uid, short = await begin(app, clock)
    write_crashed_wav(short, 0.5)
    broken_uid, broken = await begin(app, clock)
    broken.write_bytes(b"this is not audio at all")
    empty_uid, _ = await begin(app, clock)  # crashed before any audio was written
    orphan = app.files.spool / "feedface.wav"
    write_crashed_wav(orphan, 3.0)  # audio whose facts are lost
    report = await app.deposits.recover()
    assert report.adopted == []
    reasons = {path.name: why for path, why in report.quarantined}
    assert "shorter than 2 s" in reasons[f"{short_uid}.wav"]
    assert "not a RIFF" in reasons[f"{broken_uid}.wav"] or "WAV" in reasons[f"{broken_uid}.wav"]
    assert reasons[f"{empty_uid}.json"] == "no recording was written"
    assert reasons["feedface.wav"] == "recording without its facts"
    kept = {p.name for p in app.files.quarantine.iterdir()}
    assert {f"{short_uid}.wav", f"{short_uid}.json", f"{broken_uid}.wav", "feedface.wav"} <= kept
    assert not list(app.files.spool.iterdir())
    assert await app.messages.messages("2001") == []


async def test_crash_between_rename_and_commit_is_adopted(app: App, clock: FakeClock) -> None:
    uid, wav = await begin(app, clock)
    write_crashed_wav(wav, 3.0)
    app.files.commit(wav, "2001", uid)  # the file reached audio/, the row never committed
    report = await app.deposits.recover()
    (adopted,) = report.adopted
    assert adopted.uid == uid and adopted.duration_s == pytest.approx(3.0, abs=0.01)


async def test_crash_after_commit_leaves_no_duplicate(app: App, clock: FakeClock) -> None:
    uid, wav = await begin(app, clock)
    write_crashed_wav(wav, 3.0)
    stored = await app.deposits.finish(uid)
    assert stored is not None
    app.files.write_sidecar(uid, {"inbox": "2001", "uid": uid})  # cleanup never happened
    report = await app.deposits.recover()
    assert report.adopted == [] and report.cleaned == 1
    assert len(await app.messages.messages("2001")) == 1


RECORDER = textwrap.dedent(
    """
    import asyncio, struct, sys, time, math
    from datetime import datetime, UTC
    from pathlib import Path
    from sipvm.app import App
    from sipvm.domain.messages import DepositFacts

    async def main(data):
        app = await App.open(Path(data))
        uid, wav = await app.deposits.begin(
            DepositFacts(inbox="1002", received_at=datetime.now(UTC), caller="5550199"))
        with open(wav, "wb") as f:
            f.write(b"RIFF" + struct.pack("<I", 0) + b"WAVE")
            f.write(b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16))
            f.write(b"data" + struct.pack("<I", 0))
            n = 0
            while True:  # 20 ms frames of 700 Hz, like a recorder, until killed
                frame = b"".join(
                    struct.pack("<h", int(12000 * math.sin(2 * math.pi * 700 * (n + i) / 8000)))
                    for i in range(160)
                )
                f.write(frame); f.flush()
                n += 160
                if n == 8000 * 3:
                    print("3s", flush=True)
                time.sleep(0.001)

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_process_killed_mid_recording_loses_nothing(app: App) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RECORDER,
        str(app.data_dir),
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"3s\n"
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    report = await app.deposits.recover()
    (adopted,) = report.adopted
    assert adopted.inbox == "1002" and adopted.caller == "5550199"
    assert adopted.duration_s >= 3.0
    pcm = read_pcm_mono(app.files.path(adopted.audio))
    assert seconds_with_tone(pcm, 8000, 700.0) >= 2.5


async def test_a_store_locked_past_its_busy_timeout_delays_the_message_not_loses_it(
    app: App, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many workers ending calls at once held the store past its busy timeout (the capacity
    benchmark at 500 calls lost ~100 messages to the next start's recovery): the insert waits
    and tries again."""
    import sqlite3

    repo = app.deposits._repo
    real_insert = repo.insert
    attempts = []

    async def locked_once(*args: object, **kwargs: object) -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("database is locked")
        return await real_insert(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "insert", locked_once)
    wav = tmp_path / "caller.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(tone_samples(700, 3.0).tobytes())
    facts = DepositFacts(inbox="2001", received_at=clock(), caller="5550100")
    stored = await app.deposits.deposit_file(facts, wav)
    assert stored is not None and len(attempts) == 2
    (listed,) = await app.messages.messages("2001", as_member="1002")
    assert listed.id == stored.id
    assert not app.files.sidecar(stored.uid).exists()  # nothing left for a recovery
