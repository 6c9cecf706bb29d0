"""`sipvm serve --workers 2`: a Kamailio front spreads calls over two pjsua2 workers sharing one
store; more calls than one worker takes all land; a killed worker is started again; beyond
capacity callers get 503 from the front, and every slot is free again afterwards."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time
import wave
from pathlib import Path

import pytest

from tests.support.rtp_pcap import write_rtp_pcap
from tests.support.tones import tone_samples, write_tone_wav

from .conftest import PBX_HOST, SCENARIOS, Kit, Server, free_rtp_port, start_server
from .test_deposit_sip import _free, exported_tone_s, messages

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
    pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio missing"),
]


#: The queue's own one-second greeting (uploaded below) and the beep are over by then; the
#: caller speaks after this. (The system greeting would take 11 s of every call.)
GREETING_S = 3.0


def start_pool(tmp_path: Path) -> Server:
    server = start_server(tmp_path, extra=("--workers", "2"), shared_prompts=False)
    deadline = time.monotonic() + 20
    while sum("sipvm ready" in line for line in list(server.log)) < 2:
        assert time.monotonic() < deadline, "\n".join(server.log[-30:])
        time.sleep(0.1)
    # The supervisor prepared the prompts before starting the workers: both read its cache.
    prepared = [line for line in list(server.log) if "files prepared" in line]
    found = re.search(r"prompts: (\d+) files prepared \(0 from cache\)", prepared[0])
    assert found is not None and "[worker" not in prepared[0], prepared
    count = found.group(1)
    workers = [line for line in prepared if "[worker" in line]
    assert len(workers) == 2, prepared
    assert all(f"({count} from cache)" in line for line in workers), prepared
    greeting = write_tone_wav(tmp_path / "greeting.wav", 440.0, 1.0)
    uploaded = server.cli("greeting", "upload", "--inbox", "2001", "--kind", "unavailable",
                          str(greeting))  # fmt: skip
    assert uploaded.returncode == 0, uploaded.stderr
    return server


def deposit_calls(
    kit: Kit, server: Server, name: str, calls: int, seconds: float, trace: Path | None = None
) -> int:
    """``calls`` simultaneous sipp deposit calls into 2001 (a 700 Hz tone after the greeting,
    as in test_deposit_sip: no DTMF, a plain phone); sipp's exit code."""
    audio = kit.tmp / "caller.wav"
    samples = [0] * int(GREETING_S * 8000) + list(tone_samples(700, seconds))
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(int(x).to_bytes(2, "little", signed=True) for x in samples))
    pcap = write_rtp_pcap(kit.tmp / "caller.pcap", wav=audio)
    args = [
        "sipp", server.uri_host, "-sf", str(SCENARIOS / "uac_deposit.xml"), "-s", "voicemail",
        "-i", PBX_HOST, "-mi", PBX_HOST, "-mp", str(free_rtp_port(PBX_HOST)),
        "-p", str(_free(PBX_HOST)), "-m", str(calls), "-l", str(calls), "-r", str(calls),
        "-d", str(int(pcap.duration_s * 1000) + 500),
        "-key", "caller", "5550199", "-key", "caller_name", "Sipp", "-key", "pcap", str(pcap.path),
        "-key", "extra_header", "Diversion: <sip:2001@pbx.example.com>;reason=no-answer",
        "-timeout", "60s", "-timeout_error", "-nostdin",
    ]  # fmt: skip
    if trace is not None:
        args += ["-trace_msg", "-message_file", str(trace)]
    return kit.spawn(name, args).finish(90)


def test_calls_beyond_one_worker_land_and_a_killed_worker_comes_back(
    tmp_path: Path, kit: Kit
) -> None:
    server = start_pool(tmp_path)
    try:
        assert deposit_calls(kit, server, "six", calls=6, seconds=3.0) == 0
        found = messages(server, "2001", 6)
        assert len(found) == 6
        tone_s, _ = exported_tone_s(server, found[-1]["id"], 700, kit.tmp)
        assert tone_s == pytest.approx(3.0, abs=0.7)
        recorded = [line for line in server.log if "inbox 2001: recorded" in line]
        assert any("[worker 1]" in x for x in recorded) and any("[worker 2]" in x for x in recorded)
        # One notifier for the pool: worker 1 (lamps and emails once per event, not per worker).
        notifying = [x for x in server.log if "notifications: lamps" in x]
        assert len(notifying) == 1 and "[worker 1]" in notifying[0]
        # Kill worker 2: the supervisor starts it again, and calls go on meanwhile.
        (line,) = [x for x in server.log if "started worker 2 (pid" in x]
        pid = int(line.rsplit("pid ", 1)[1].rstrip(")"))
        os.kill(pid, signal.SIGKILL)
        server.wait_log("worker 2 exited with -9", timeout=5)
        assert deposit_calls(kit, server, "during", calls=2, seconds=2.0) == 0
        server.wait_log("started worker 2 (pid", timeout=5)
        deadline = time.monotonic() + 15
        while sum("sipvm ready" in x for x in list(server.log)) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(3)  # the front's pings see it again
        assert deposit_calls(kit, server, "after", calls=8, seconds=2.0) == 0
        assert len(messages(server, "2001", 16)) == 16
    finally:
        assert server.stop(timeout=90) == 0, "\n".join(server.log[-30:])
    assert any("pool stopped" in x for x in server.log)


def test_beyond_capacity_the_front_answers_503_and_every_slot_is_free_afterwards(
    tmp_path: Path, kit: Kit
) -> None:
    server = start_pool(tmp_path)
    try:
        trace = kit.tmp / "burst.msgs"
        code = deposit_calls(kit, server, "burst", calls=10, seconds=2.0, trace=trace)
        assert code != 0  # two calls failed, as they should
        text = trace.read_text(errors="replace")
        # Unacknowledged by this scenario, a 503 is sent again: count calls, not packets.
        refused = set(re.findall(r"^SIP/2\.0 503 [^\n]*\n(?:[^\n]+\n)*?Call-ID: (\S+)", text, re.M))
        assert len(refused) == 2, text[-3000:]
        assert re.search(r"^Retry-After: 30\s*$", text, re.M)
        assert len(messages(server, "2001", 8)) == 8
        time.sleep(1.0)
        assert deposit_calls(kit, server, "again", calls=8, seconds=2.0) == 0
        assert len(messages(server, "2001", 16)) == 16
    finally:
        assert server.stop(timeout=90) == 0, "\n".join(server.log[-30:])
