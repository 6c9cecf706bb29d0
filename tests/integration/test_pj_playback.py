"""``PjCallChannel.play_message`` over real pjsua2: seeking, interrupting, playing out.

One loopback call, two processes (pjsua2 allows one Endpoint per process): the server side is
``pj_playback_server.py`` (a ``SipWorker`` whose router plays a message with
``play_message`` and writes what each call returned); the caller is the scripted pjsua2 peer
``tests.support.testpeer``, which presses keys, hangs up, and records what it hears. The message
is six seconds of tones, a different frequency each second, so the recording shows which
part of the message was played.

What the server does, and what the caller does meanwhile (see ``pj_playback_server.py``):
1. from 3.0 s, interrupt "5" — the caller types "7" a second in; it plays to the end;
2. from 2.5 s, interrupt "7" — returns the buffered "7" at once;
3. from 9.0 s (past the end) — returns at once;
4. from 4.0 s, interrupt "5" — the caller presses "5" 0.8 s after hearing it;
5. from where 4. stopped, to the end (a pause/resume);
6. another file, and the caller hangs up 0.4 s after hearing it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
import wave
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sipvm.sip.channel import PjCallChannel
from sipvm.sip.events import DtmfDigit
from tests.e2e.conftest import Kit, free_rtp_port, free_sip_port
from tests.support.tones import (
    dominant_frequency,
    read_pcm_mono,
    seconds_with_tone,
    tone_samples,
    write_silence_wav,
    write_tone_wav,
)

#: Marks the tests of the real call (the stub-engine test at the end is quick).
slow = pytest.mark.slow
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing")

T = TypeVar("T")

SERVER = Path(__file__).resolve().parent / "pj_playback_server.py"
RATE = 8000
#: The tone of each second of the message: second k carries TONES[k].
TONES = (500.0, 750.0, 1000.0, 1250.0, 1500.0, 1750.0)
LENGTH_S = float(len(TONES))
#: The other file, played when the caller hangs up.
OTHER_TONE = 2500.0
#: The last file of a two-file prompt: a tone up to its last sample.
TAIL_TONE = 2000.0
TAIL_S = 0.93  # not a whole number of playlist buffers: the case that was clipped
#: How far a position may be from the playing time (RTP, jitter buffer, event hand-over).
TOLERANCE_S = 0.3
#: When the caller presses "5" after hearing playback 4 start.
PRESS_AFTER_S = 0.8


def write_tone_per_second(path: Path, freqs: tuple[float, ...]) -> Path:
    """A 16-bit mono WAV whose second k is a tone of ``freqs[k]``."""
    samples = array("h")
    for freq in freqs:
        samples.extend(tone_samples(freq, 1.0, RATE))
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.tobytes())
    return path


def peer_script(port: int) -> dict[str, Any]:
    return {
        "mode": "call",
        "to": f"sip:play@127.0.0.1:{port}",
        "record": "heard.wav",
        "timeout": 30,
        "steps": [
            {"wait_for_audio": 10},  # playback 1 (from 3.0)
            {"wait": 1.0},
            {"dtmf": "7"},  # not an interrupt key there: kept for playback 2
            {"wait_for_silence": 10, "min_silence": 0.5},
            {"wait_for_audio": 10},  # playback 4 (from 4.0)
            {"wait": PRESS_AFTER_S},
            {"dtmf": "5"},
            {"wait_for_silence": 10, "min_silence": 0.5},  # 5. played out
            {"wait_for_audio": 10},  # the playlist's tail tone
            {"wait_for_silence": 10, "min_silence": 0.5},
            {"wait_for_audio": 10},  # 6. the other file
            {"wait": 0.4},
            {"hangup": True},
        ],
    }


@dataclass
class Run:
    """What one call produced: the server's steps, the caller's report and recording."""

    steps: dict[str, dict[str, Any]]
    peer: dict[str, Any]
    heard: array[int]
    seconds: float


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("pj_playback")
    message = write_tone_per_second(tmp / "message.wav", TONES)
    other = write_tone_wav(tmp / "other.wav", OTHER_TONE, 2.0)
    lead = write_silence_wav(tmp / "lead.wav", 0.5)
    tail = write_tone_wav(tmp / "tail.wav", TAIL_TONE, TAIL_S)
    port = free_sip_port()
    kit = Kit(tmp, [])
    began = time.monotonic()
    try:
        server = kit.spawn(
            "server",
            [
                sys.executable,
                str(SERVER),
                "--port",
                str(port),
                "--rtp-port",
                str(free_rtp_port()),
                "--message",
                str(message),
                "--other",
                str(other),
                "--playlist",
                str(lead),
                str(tail),
                "--out",
                str(tmp / "steps.json"),
            ],
        )
        server.wait_for("playback server ready", timeout=15)
        peer = kit.peer("peer", peer_script(port)).report(timeout=40)
        code = server.finish(timeout=20)
        assert code == 0, f"server exited {code}:\n{server.stderr()}"
        steps = json.loads((tmp / "steps.json").read_text())["steps"]
        yield Run(
            steps={s["name"]: s for s in steps},
            peer=peer["calls"][0],
            heard=read_pcm_mono(tmp / "heard.wav"),
            seconds=time.monotonic() - began,
        )
    finally:
        for p in kit.procs:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(5)


def _peer_step(call: dict[str, Any], index: int) -> dict[str, Any]:
    step: dict[str, Any] = call["steps"][index]
    assert step["result"] == "ok", call["steps"]
    return step


@slow
@needs_ffmpeg
def test_the_call_ran_every_step_in_reasonable_time(run: Run) -> None:
    assert list(run.steps) == [
        "from_3",
        "typed_before",
        "past_end",
        "from_4",
        "resume",
        "playlist",
        "hangup",
    ]
    assert run.seconds < 30


@slow
@needs_ffmpeg
def test_playing_from_3_s_sends_seconds_3_to_6_only(run: Run) -> None:
    heard = run.heard
    first_loud = next(i for i, x in enumerate(heard) if abs(x) > 2000)
    first_second = heard[first_loud + RATE // 10 : first_loud + RATE * 9 // 10]
    assert dominant_frequency(first_second, RATE, TONES) == TONES[3]
    found = {f: seconds_with_tone(heard, RATE, f, window_s=0.1) for f in TONES}
    for early in TONES[:3]:
        assert found[early] < 0.15, found  # seconds 0-2 never played
    # Second 3 once (playback 1); seconds 4 and 5 twice (playback 1, then 4 + 5 together):
    # the resume went on where the key stopped playback, nothing skipped nor repeated.
    assert found[TONES[3]] == pytest.approx(1.0, abs=0.25), found
    assert found[TONES[4]] == pytest.approx(2.0, abs=TOLERANCE_S), found
    assert found[TONES[5]] == pytest.approx(2.0, abs=TOLERANCE_S), found


@slow
@needs_ffmpeg
def test_a_prompt_of_several_files_plays_to_its_last_sample(run: Run) -> None:
    # pjmedia's playlist reports its end when it reads its last buffer (~0.25 s early) and
    # drops what is buffered; the engine pads playlists so nothing of the prompt is lost.
    heard = seconds_with_tone(run.heard, RATE, TAIL_TONE, window_s=0.05)
    # The clipped case lost ~0.25 s. On a machine busy with the parallel suite the receiver's
    # jitter buffer may repeat a late frame (heard once as 1.0 s), so allow two windows more.
    assert TAIL_S - 0.06 <= heard <= TAIL_S + 0.1


@slow
@needs_ffmpeg
def test_playing_to_the_end_returns_no_key_and_the_length(run: Run) -> None:
    from_3 = run.steps["from_3"]
    assert from_3["key"] is None
    assert from_3["position_s"] == pytest.approx(LENGTH_S)
    # It played three seconds, not six, and the "7" typed meanwhile did not stop it.
    assert from_3["elapsed_s"] == pytest.approx(3.0, abs=TOLERANCE_S)
    resume = run.steps["resume"]
    assert resume["key"] is None and resume["position_s"] == pytest.approx(LENGTH_S)
    assert resume["elapsed_s"] == pytest.approx(
        LENGTH_S - run.steps["from_4"]["position_s"], abs=TOLERANCE_S
    )


@slow
@needs_ffmpeg
def test_a_key_returns_the_position_reached(run: Run) -> None:
    from_4 = run.steps["from_4"]
    assert from_4["key"] == "5"
    played = from_4["position_s"] - 4.0
    # As the server timed it...
    assert played == pytest.approx(from_4["elapsed_s"], abs=TOLERANCE_S)
    # ...and as the caller did: from hearing playback 4 start to pressing the key.
    heard_at = _peer_step(run.peer, 4)["ended"]
    pressed_at = _peer_step(run.peer, 6)["started"]
    assert pressed_at - heard_at == pytest.approx(PRESS_AFTER_S, abs=0.05)
    assert played == pytest.approx(pressed_at - heard_at, abs=TOLERANCE_S)


@slow
@needs_ffmpeg
def test_a_key_typed_before_returns_at_once_at_the_start(run: Run) -> None:
    typed = run.steps["typed_before"]
    assert (typed["key"], typed["position_s"]) == ("7", 2.5)
    assert typed["elapsed_s"] < 0.1


@slow
@needs_ffmpeg
def test_a_start_past_the_end_returns_at_once(run: Run) -> None:
    past = run.steps["past_end"]
    assert (past["key"], past["position_s"]) == (None, LENGTH_S)
    assert past["elapsed_s"] < 0.1


@slow
@needs_ffmpeg
def test_the_caller_hanging_up_raises_caller_hung_up(run: Run) -> None:
    hangup = run.steps["hangup"]
    assert hangup.get("hung_up") is True, hangup
    assert hangup["elapsed_s"] < 1.5  # 0.4 s after the caller heard it, not at the end (1.5 s)
    assert seconds_with_tone(run.heard, RATE, OTHER_TONE, window_s=0.1) > 0.2


class StubEngine:
    """Stands in for ``PjEngine``: runs jobs at once; the player always reads ``samples``."""

    def __init__(self, samples: int) -> None:
        self.samples = samples
        self.started: list[int] = []
        self.stopped: list[int] = []

    async def run(self, fn: Callable[[], T]) -> T:
        return fn()

    def play_file(self, key: int, file: Path, start_samples: int) -> int:
        self.started.append(start_samples)
        return 1

    def playback_position(self, key: int, token: int) -> int:
        return self.samples

    def stop_playing(self, key: int, token: int) -> None:
        self.stopped.append(token)


@pytest.mark.parametrize(
    ("samples", "expected_s"),
    [(2 * RATE, 2.0), (0, 1.2)],  # 0: pjmedia read ahead to the end; the clock decides
    ids=["position-from-pjsua2", "position-from-the-clock"],
)
async def test_a_key_position_comes_from_the_player_or_else_the_clock(
    tmp_path: Path, samples: int, expected_s: float
) -> None:
    message = write_tone_per_second(tmp_path / "message.wav", TONES)
    engine = StubEngine(samples)
    channel = PjCallChannel(engine, 7, refer_host="127.0.0.1")  # type: ignore[arg-type]
    asyncio.get_running_loop().call_later(0.2, channel.deliver, DtmfDigit(7, "5"))
    result = await channel.play_message(message, start_s=1.0, interrupt="5")
    assert engine.started == [RATE] and engine.stopped == [1]
    assert result.key == "5"
    assert result.position_s == pytest.approx(expected_s, abs=0.1)
