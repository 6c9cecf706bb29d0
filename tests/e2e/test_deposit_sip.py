"""Callers leave messages over real SIP: a live `sipvm serve`, pjsua2 callers and sipp.

The server trusts 127.0.0.2 (the "PBX"); callers that should be trusted send from there.
Audio is checked by content: each test plays a tone and finds it in the stored message.
"""

from __future__ import annotations

import json
import shutil
import signal
import time
import wave
from pathlib import Path
from typing import Any

import pytest

from tests.support.rtp_pcap import write_rtp_pcap
from tests.support.tones import read_pcm_mono, seconds_with_tone, write_tone_wav

from .conftest import PBX_HOST, SCENARIOS, Kit, Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]


def caller_script(
    server: Server,
    user: str,
    steps: list[dict[str, Any]],
    *,
    bind: str = PBX_HOST,
    headers: list[list[str]] | None = None,
    timeout: float = 40,
) -> dict[str, Any]:
    name, _, params = user.partition(";")
    return {
        # URI parameters in angle brackets, or they would become To header parameters
        "to": f"<sip:{name}@{server.uri_host};{params}>"
        if params
        else f"sip:{name}@{server.uri_host}",
        "bind": bind,
        "from_user": "5551234",
        "from_name": "Pat Caller",
        "headers": headers or [],
        "steps": steps,
        "timeout": timeout,
        "record": "heard.wav",
    }


def skip_greeting_then_speak(tone: str) -> list[dict[str, Any]]:
    """Wait for the greeting, skip it with #, let the beep pass, then play ``tone``."""
    return [
        {"wait_for_audio": 10},
        {"dtmf": "#", "method": "rfc4733"},
        # The greeting stops, the beep plays; 0.3 s of quiet after it: recording has begun.
        {"wait_for_silence": 5, "min_silence": 0.3},
        {"play": tone},
    ]


def messages(server: Server, inbox: str, count: int, timeout: float = 15) -> list[dict[str, Any]]:
    """The inbox's messages once there are ``count`` of them (the deposit ends after the BYE)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = server.cli("messages", "--inbox", inbox, "--json")
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(
        f"inbox {inbox} has {len(found)} messages, expected {count}; server log:\n"
        + "\n".join(server.log[-20:])
    )


def exported_tone_s(server: Server, message_id: int, freq: float, tmp: Path) -> tuple[float, float]:
    """(seconds of ``freq`` in the message, its length), via `sipvm message export`."""
    out = tmp / f"m{message_id}.wav"
    result = server.cli(
        "message", "export", str(message_id), "--as", "1002", "--format", "wav", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    with wave.open(str(out)) as w:
        length = w.getnframes() / w.getframerate()
    return seconds_with_tone(read_pcm_mono(out), 8000, freq, window_s=0.1), length


def test_caller_tone_after_the_beep_is_in_the_message(server: Server, kit: Kit) -> None:
    write_tone_wav(kit.tmp / "tone.wav", 1300, 3.0)
    steps = [*skip_greeting_then_speak("tone.wav"), {"hangup": True}]
    report = kit.peer("caller", caller_script(server, "2001", steps)).report(60)
    call = report["calls"][0]
    assert call["status"] == 200
    assert all(s["result"] == "ok" for s in call["steps"]), call["steps"]
    (m,) = messages(server, "2001", 1)
    assert m["caller"] == "5551234" and m["caller_name"] == "Pat Caller"
    assert abs(m["duration_s"] - 3.0) < 0.5, m
    tone_s, length = exported_tone_s(server, m["id"], 1300, kit.tmp)
    assert abs(length - m["duration_s"]) < 0.05
    assert tone_s == pytest.approx(3.0, abs=0.5)
    # the caller heard the greeting before it pressed #
    assert call["audio"] and call["audio"][0][0] < 3.0
    # Voicemail is private: the store, the recording and the export are the owner's only.
    made = [*server.data.rglob("*"), server.data, kit.tmp / f"m{m['id']}.wav"]
    assert any(p.suffix == ".wav" for p in made if p.is_relative_to(server.data))
    assert [f"{p} {p.stat().st_mode & 0o777:o}" for p in made if p.stat().st_mode & 0o077] == []


def test_caller_hanging_up_mid_recording_keeps_the_whole_message(server: Server, kit: Kit) -> None:
    write_tone_wav(kit.tmp / "long.wav", 900, 6.0)
    steps = [*skip_greeting_then_speak("long.wav"), {"hangup": True}]  # no # at the end
    kit.peer("caller", caller_script(server, "1002", steps)).report(60)
    (m,) = messages(server, "1002", 1)
    assert abs(m["duration_s"] - 6.0) < 0.5, m
    tone_s, _ = exported_tone_s(server, m["id"], 900, kit.tmp)
    assert tone_s == pytest.approx(6.0, abs=0.6)


@pytest.mark.parametrize(
    ("user", "header", "inbox"),
    [
        (
            "voicemail",
            [
                "History-Info",
                "<sip:2001@pbx.example.com>;index=1, <sip:voicemail@127.0.0.1;cause=486>;index=1.1",
            ],
            "2001",
        ),
        ("voicemail;target=sip:4001%40pbx.example.com;cause=408", None, "4001"),
    ],
    ids=["history-info", "rfc4458"],
)
def test_history_info_and_rfc4458_land_in_their_inbox(
    server: Server, kit: Kit, user: str, header: list[str] | None, inbox: str
) -> None:
    # In business hours both take messages (4001 transfers to 1101 when closed): pin that.
    assert server.cli("hours", "set", "--inbox", inbox, "open").returncode == 0
    write_tone_wav(kit.tmp / "tone.wav", 1100, 2.5)
    steps = [*skip_greeting_then_speak("tone.wav"), {"hangup": True}]
    script = caller_script(server, user, steps, headers=[header] if header else [])
    kit.peer("caller", script).report(60)
    (m,) = messages(server, inbox, 1)
    assert m["reason"] == ("busy" if inbox == "2001" else "no-answer")
    assert server.cli("messages", "--inbox", "voicemail", "--json").returncode == 4


def test_untrusted_sources_get_403_for_every_extension(server: Server, kit: Kit) -> None:
    answers = []
    for user in ("2001", "9999", "voicemail"):
        script = caller_script(server, user, [{"hangup": True}], bind="127.0.0.1", timeout=10)
        call = kit.peer(f"scan-{user}", script).report(30)["calls"][0]
        answers.append((call["status"], call["reason"]))
    assert answers == [(403, "Forbidden")] * 3
    assert json.loads(server.cli("messages", "--inbox", "2001", "--json").stdout) == []


def test_overflow_from_sipp_with_diversion_lands_in_the_queue(
    server: Server, kit: Kit, tmp_path: Path
) -> None:
    # The caller talks from the start: the greeting (about 3.5 s with the example's
    # prompts), the beep, then 3 s of tone and a hang-up. No DTMF: this is a plain phone.
    # The tone starts 7 s in: well after the beep, well before 10 s of silence would end the
    # recording.
    lead = 7.0
    audio = tmp_path / "caller.wav"
    samples = [0] * int(lead * 8000)
    from tests.support.tones import tone_samples

    body = list(samples) + list(tone_samples(700, 3.0))
    with wave.open(str(audio), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(int(x).to_bytes(2, "little", signed=True) for x in body))
    pcap = write_rtp_pcap(tmp_path / "caller.pcap", wav=audio)
    args = [
        server.uri_host,
        "-sf",
        str(SCENARIOS / "uac_deposit.xml"),
        "-s",
        "voicemail",
        "-p",
        str(_free(PBX_HOST)),
        "-d",
        str(int(pcap.duration_s * 1000) + 500),
        "-key",
        "caller",
        "5550199",
        "-key",
        "caller_name",
        "Sipp",
        "-key",
        "pcap",
        str(pcap.path),
        "-key",
        "extra_header",
        "Diversion: <sip:2001@pbx.example.com>;reason=no-answer;counter=1",
    ]
    sipp = kit.sipp("sipp", args, host=PBX_HOST)
    assert sipp.finish(60) == 0, sipp.stderr()
    (m,) = messages(server, "2001", 1)
    assert (m["caller"], m["reason"]) == ("5550199", "no-answer")
    tone_s, _ = exported_tone_s(server, m["id"], 700, kit.tmp)
    assert tone_s == pytest.approx(3.0, abs=0.7)


def test_fifth_simultaneous_call_is_refused_and_the_worker_lives(server: Server, kit: Kit) -> None:
    write_tone_wav(kit.tmp / "tone.wav", 1000, 4.0)
    steps = [*skip_greeting_then_speak("tone.wav"), {"hangup": True}]
    callers = [kit.peer(f"c{i}", caller_script(server, "2001", steps)) for i in range(5)]
    statuses = sorted(p.report(90)["calls"][0]["status"] for p in callers)
    assert statuses == [200, 200, 200, 200, 486]
    assert len(messages(server, "2001", 4)) == 4
    # every call slot is free again: another caller gets through
    kit.peer("after", caller_script(server, "2001", steps)).report(60)
    assert len(messages(server, "2001", 5)) == 5


def _free(host: str) -> int:
    from .conftest import free_sip_port

    return free_sip_port(host)


def test_busy_caller_hears_the_uploaded_busy_greeting(server: Server, kit: Kit) -> None:
    greeting = write_tone_wav(kit.tmp / "busy-greeting.wav", 450, 2.0)
    up = server.cli("greeting", "upload", "--inbox", "2001", "--kind", "busy", str(greeting))
    assert up.returncode == 0, up.stderr
    headers = [["Diversion", "<sip:2001@pbx.example.com>;reason=user-busy"]]
    steps = [{"wait": 3.5}, {"hangup": True}]
    report = kit.peer("caller", caller_script(server, "voicemail", steps, headers=headers))
    call = report.report(60)["calls"][0]
    heard = read_pcm_mono(Path(call["record"]))
    assert seconds_with_tone(heard, 8000, 450.0, window_s=0.1) == pytest.approx(2.0, abs=0.4)


def test_sigterm_drains_refuses_new_calls_and_keeps_recordings(tmp_path: Path, kit: Kit) -> None:
    from .conftest import start_server

    (tmp_path / "srv").mkdir()
    server = start_server(tmp_path / "srv")  # drain_s = 5
    try:
        write_tone_wav(kit.tmp / "long.wav", 1000, 20.0)
        steps = [*skip_greeting_then_speak("long.wav"), {"hangup": True}]
        talker = kit.peer("talker", caller_script(server, "2001", steps, timeout=60))
        time.sleep(6)  # greeting skipped, recording under way
        server.proc.send_signal(signal.SIGTERM)
        server.wait_log("stopping: new calls get 503")
        late = kit.peer("late", caller_script(server, "2001", [{"hangup": True}], timeout=10))
        late_call = late.report(30)["calls"][0]
        assert late_call["status"] == 503
        assert "Retry-After: 30" in late_call["response"]
        talked = talker.report(60)["calls"][0]
        assert talked["disconnect"]["by"] == "remote"  # the server ended it after the grace
        assert server.stop(30) == 0
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    listing = server.cli("messages", "--inbox", "2001", "--json")
    (m,) = json.loads(listing.stdout)
    assert 5.0 < m["duration_s"] < 15.0, m  # cut at the end of the grace period, not lost


def test_zero_during_the_greeting_refers_the_caller_to_the_operator(
    server: Server, kit: Kit
) -> None:
    # The test caller answers the REFER with 202 but does not follow it, so the transfer
    # fails (sipfrag 500): the caller is told and goes on to leave a message.
    write_tone_wav(kit.tmp / "tone.wav", 1200, 2.5)
    steps = [
        {"wait_for_audio": 10},
        {"dtmf": "0", "method": "rfc4733"},
        # "please hold", the REFER fails, "the transfer did not go through", the
        # instructions, the beep: about 11 s (the prompts have pauses, so wait by the clock).
        {"wait": 13.0},
        {"play": "tone.wav"},
        {"hangup": True},
    ]
    script = {**caller_script(server, "2001", steps), "follow_refer": False}
    call = kit.peer("caller", script).report(60)["calls"][0]
    (refer,) = call["refer"]
    assert "sip:0@127.0.0.2" in refer["target"]  # the operator, at the PBX that sent the call
    (m,) = messages(server, "2001", 1)
    tone_s, _ = exported_tone_s(server, m["id"], 1200, kit.tmp)
    assert tone_s > 1.5
