"""Trusted peers given as a network, over real SIP: a live `sipvm serve --trusted-peer
127.0.0.0/29` takes a sipp deposit from 127.0.0.2 (inside) and refuses a caller on 127.0.0.9
(outside) with 403; a trusted peer with host bits set stops the start with a clear error."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from tests.support.rtp_pcap import write_rtp_pcap
from tests.support.tones import tone_samples

from .conftest import EXAMPLE, PBX_HOST, SCENARIOS, Kit, free_sip_port, start_server
from .test_deposit_sip import caller_script, exported_tone_s, messages

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]

NETWORK = "127.0.0.0/29"
"""127.0.0.0 - 127.0.0.7: the PBX (127.0.0.2) is inside, 127.0.0.9 is not."""
OUTSIDE = "127.0.0.9"
#: The example queue's greeting and beep last about 3.5 s; the caller speaks after this (and
#: well before 10 s of silence after the beep would end the recording).
GREETING_S = 7.0


def deposit_pcap(tmp: Path, seconds: float) -> tuple[Path, float]:
    """A plain phone's audio: quiet through the greeting, then a 700 Hz tone."""
    audio = tmp / "caller.wav"
    samples = [0] * int(GREETING_S * 8000) + list(tone_samples(700, seconds))
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(int(x).to_bytes(2, "little", signed=True) for x in samples))
    pcap = write_rtp_pcap(tmp / "caller.pcap", wav=audio)
    return pcap.path, pcap.duration_s


def test_a_peer_inside_a_trusted_network_leaves_a_message_and_one_outside_gets_403(
    tmp_path: Path, kit: Kit
) -> None:
    server = start_server(tmp_path, trusted=NETWORK)
    try:
        # Outside the network first: refused before anything is answered.
        script = caller_script(server, "2001", [{"hangup": True}], bind=OUTSIDE, timeout=10)
        refused = kit.peer("outside", script).report(30)["calls"][0]
        assert (refused["status"], refused["reason"]) == (403, "Forbidden")
        server.wait_log(f"refused a call from {OUTSIDE}: not a trusted peer")

        pcap, duration_s = deposit_pcap(kit.tmp, 3.0)
        args = [
            server.uri_host, "-sf", str(SCENARIOS / "uac_deposit.xml"), "-s", "voicemail",
            "-p", str(free_sip_port(PBX_HOST)), "-d", str(int(duration_s * 1000) + 500),
            "-key", "caller", "5550199", "-key", "caller_name", "Sipp", "-key", "pcap", str(pcap),
            "-key", "extra_header", "Diversion: <sip:2001@pbx.example.com>;reason=no-answer",
        ]  # fmt: skip
        sipp = kit.sipp("inside", args, host=PBX_HOST)
        assert sipp.finish(60) == 0, sipp.stderr()
        (m,) = messages(server, "2001", 1)
        assert (m["caller"], m["reason"]) == ("5550199", "no-answer")
        tone_s, _ = exported_tone_s(server, m["id"], 700, kit.tmp)
        assert tone_s == pytest.approx(3.0, abs=0.7)
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])


def test_a_trusted_network_with_host_bits_set_stops_the_start(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "sipvm", "serve", "--data", str(tmp_path / "data")]
    argv += ["--directory", str(EXAMPLE), "--bind", "127.0.0.1"]
    argv += ["--sip-port", str(free_sip_port()), "--trusted-peer", "127.0.0.1/29"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)

    assert done.returncode == 2, done.stderr[-2000:]
    assert "'127.0.0.1/29' has host bits set" in done.stderr
    assert '"127.0.0.0/29"' in done.stderr
    assert "sipvm ready" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before the store was touched
