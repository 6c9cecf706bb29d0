"""The auto receptionist over real SIP: a live `sipvm serve`, pjsua2 callers and sipp.

The server runs the example directory: the main number 3001 is an auto receptionist whose
menu (business hours) is 1 → transfer to Sales 2001, 2 → dial by extension, 4 → the "branch"
submenu (1 → transfer to the branch front desk 4001), and which takes a message in its own
inbox when closed. Each test forces the period with `sipvm hours set --inbox 3001 open|closed`
so nothing depends on the wall clock.

With no ``[sip] proxy`` configured the server REFERs to the PBX that sent the INVITE, address
and port: here the caller's own address on 127.0.0.2.

Timings measured with the example prompts (offsets from the answer, pjsua2 caller):
- open: "Thank you for calling" 0.1-1.7 s; the menu's options 1.8-29.5 s, then 6 s of waiting
  and the menu again. A key during the greeting goes straight to its option.
- a transfer: "Please hold while I try that extension" 2.4 s, then the REFER (2.6 s after the
  key). A failed one: "The transfer failed." 1.2 s, then the target's deposit dialog (2001's
  greeting and the beep: recording starts 14.6 s after the REFER's final NOTIFY).
- dial by extension: the prompt 3.8 s (a digit interrupts it); an unknown extension: "that's
  not a valid extension" 4.4 s, then the menu again.
- closed: the greeting, "Our office is closed right now", the instructions and the beep end
  10.2 s after the answer; the longest pause inside is 0.5 s.
"""

from __future__ import annotations

import json
import shutil
import wave
from array import array
from pathlib import Path
from typing import Any

import pytest

from tests.support.rtp_pcap import write_rtp_pcap
from tests.support.tones import read_pcm_mono, seconds_with_tone, tone_samples, write_tone_wav

from .conftest import PBX_HOST, SCENARIOS, Kit, Proc, Server, free_sip_port, stored_message
from .test_deposit_sip import exported_tone_s, messages
from .test_menu_sipp import DTMF_DIR, write_respaced_digits

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]
needs_digit_pcaps = pytest.mark.skipif(
    not (DTMF_DIR / "dtmf_2833_1.pcap").exists(), reason="sipp's DTMF pcaps missing"
)

AR = "3001"
CALLER = "5551234"
TRANSFER_S = 4.5
"""From a key to well past the REFER it causes (the hold prompt, 2.4 s, comes first)."""


def force(server: Server, mode: str, period: str) -> None:
    """Force the auto receptionist open or closed, and check the server sees it so."""
    result = server.cli("hours", "set", "--inbox", AR, mode)
    assert result.returncode == 0, result.stderr
    shown = server.cli("hours", "show", "--inbox", AR, "--json")
    assert shown.returncode == 0, shown.stderr
    now = json.loads(shown.stdout)
    assert (now["override"], now["period"]) == (mode, period), now


def keys(digits: str) -> dict[str, Any]:
    return {"dtmf": digits, "method": "rfc4733", "duration_ms": 120, "gap_ms": 80}


def ar_call(server: Server, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A call from the PBX to the auto receptionist, recording what the caller hears.

    The caller does not follow REFERs: it answers 202 and, having one call slot, reports
    the transfer failed (NOTIFY with sipfrag 500), as a PBX that cannot reach the target."""
    return {
        "to": f"sip:{AR}@{server.uri_host}",
        "bind": PBX_HOST,
        "from_user": CALLER,
        "from_name": "Pat Caller",
        "steps": steps,
        "timeout": 60,
        "record": "heard.wav",
        "follow_refer": False,
    }


# -- a pjsua2 caller ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("presses", "target"),
    [
        (["1"], "2001"),
        (["4", "1"], "4001"),
        (["2", "1003#"], "1003"),
    ],
    ids=["sales", "branch-submenu", "dial-by-extension"],
)
def test_menu_key_refers_the_caller_to_its_target_at_the_pbx(
    server: Server, kit: Kit, presses: list[str], target: str
) -> None:
    force(server, "open", "business")
    steps: list[dict[str, Any]] = [{"wait_for_audio": 10}]
    for digits in presses:
        steps += [keys(digits), {"wait": 1.0}]
    steps[-1] = {"wait": TRANSFER_S}
    steps.append({"hangup": True})
    report = kit.peer("caller", ar_call(server, steps)).report(60)
    call = report["calls"][0]
    assert call["status"] == 200, call
    assert all(s["result"] == "ok" for s in call["steps"]), call["steps"]
    assert call["audio"] and call["audio"][0][0] < 1.0  # the greeting, before any key
    (refer,) = call["refer"]
    assert refer["target"] == f"sip:{target}@{report['local']}"  # the INVITE's source
    server.wait_log(f"transfer from {AR} to {target} failed (500)")


def test_unknown_extension_is_refused_and_the_menu_comes_back(server: Server, kit: Kit) -> None:
    force(server, "open", "business")
    steps = [
        {"wait_for_audio": 10},
        keys("2"),
        {"wait": 1.0},
        keys("9999#"),
        {"wait": 5.5},  # "I am sorry, that's not a valid extension", then the menu again
        keys("1"),
        {"wait": TRANSFER_S},
        {"hangup": True},
    ]
    report = kit.peer("caller", ar_call(server, steps)).report(60)
    call = report["calls"][0]
    assert all(s["result"] == "ok" for s in call["steps"]), call["steps"]
    (refer,) = call["refer"]  # none for 9999
    assert refer["target"] == f"sip:2001@{report['local']}"
    pressed_1 = call["steps"][5]
    assert pressed_1["step"] == keys("1")
    assert refer["at"] > pressed_1["started"]  # caused by the 1 of the replayed menu
    assert not [line for line in server.log if "9999" in line]


def test_closed_caller_leaves_a_message_in_the_main_number(server: Server, kit: Kit) -> None:
    force(server, "closed", "closed")
    write_tone_wav(kit.tmp / "tone.wav", 1300, 3.0)
    steps = [
        {"wait_for_audio": 10},
        # welcome, "our office is closed", the instructions, the beep; then recording (quiet)
        {"wait_for_silence": 20, "min_silence": 1.0},
        {"play": "tone.wav"},
        {"hangup": True},
    ]
    call = kit.peer("caller", ar_call(server, steps)).report(60)["calls"][0]
    assert call["status"] == 200, call
    assert all(s["result"] == "ok" for s in call["steps"]), call["steps"]
    assert call["refer"] == []
    heard_until = call["steps"][1]["ended"] - 1.0
    # The whole closed greeting (about 5.5 s: "Thank you for calling. Our office is closed right
    # now. Leave a message after the tone." and the beep), not a menu.
    assert 4.5 < heard_until < 9, call["steps"]
    server.wait_log(f"auto_receptionist {AR} (closed): Voicemail")
    (listed,) = messages(server, AR, 1)
    assert (listed["caller"], listed["caller_name"]) == (CALLER, "Pat Caller")
    assert 3.0 < listed["duration_s"] < 4.6, listed  # the 1 s of quiet waited for, the tone
    # nobody has the download right on 3001: read the stored file
    message, _ = stored_message(server, listed["id"])
    audio = read_pcm_mono(server.data / message.audio)
    assert seconds_with_tone(audio, 8000, 1300, window_s=0.1) == pytest.approx(3.0, abs=0.5)


# -- sipp as the PBX: it carries out (or fails) the transfer ----------------------------------


def sipp_ar_call(kit: Kit, server: Server, scenario: str, *extra: str) -> tuple[Proc, int]:
    """sipp from the PBX address running ``scenario`` against the AR; returns it and its port."""
    write_respaced_digits(kit.tmp)  # only 1 is used; the scenario finds it in the cwd
    port = free_sip_port(PBX_HOST)
    args = [
        *(server.uri_host, "-sf", str(SCENARIOS / scenario), "-s", AR, "-p", str(port)),
        *("-key", "caller", CALLER, *extra),
        *("-trace_logs", "-log_file", str(kit.tmp / "sipp.log")),
        *("-trace_err", "-error_file", str(kit.tmp / "sipp.errors")),
    ]
    return kit.sipp("sipp", args, host=PBX_HOST), port


def refer_to_logged(kit: Kit) -> str:
    """The Refer-To value the scenario matched (its log action)."""
    lines = (kit.tmp / "sipp.log").read_text().splitlines()
    (line,) = [x for x in lines if x.startswith("Refer-To:")]
    return line.removeprefix("Refer-To:").strip()


@needs_digit_pcaps
def test_pbx_completes_the_transfer_and_the_server_leaves(server: Server, kit: Kit) -> None:
    force(server, "open", "business")
    sipp, port = sipp_ar_call(kit, server, "uac_ar_refer.xml")
    code = sipp.finish(40)
    assert code == 0, f"sipp exited {code}:\n{sipp.stderr()}\n" + "\n".join(server.log[-20:])
    assert refer_to_logged(kit) == f"sip:2001@{PBX_HOST}:{port}"
    server.wait_log(f"caller for {AR} transferred to 2001")
    assert json.loads(server.cli("messages", "--inbox", "2001", "--json").stdout) == []


@needs_digit_pcaps
def test_busy_target_fails_the_transfer_and_takes_a_message(
    server: Server, kit: Kit, tmp_path: Path
) -> None:
    force(server, "open", "business")
    # silent while the menu, "The transfer failed.", 2001's greeting ("Sales is unavailable.
    # Leave a message after the tone.") and the beep play (recording starts about 7.5 s after
    # the answer; 9.5 s with the extension spelled), then 3 s of tone: well before the 10 s of
    # silence that end a recording
    lead_s, tone_hz = 13.0, 700.0
    wav = tmp_path / "talk.wav"
    samples = array("h", bytes(2 * int(lead_s * 8000))) + tone_samples(tone_hz, 3.0)
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    pcap = write_rtp_pcap(tmp_path / "talk.pcap", wav=wav)
    pause_ms = str(int(pcap.duration_s * 1000) + 500)
    sipp, _ = sipp_ar_call(
        kit, server, "uac_ar_refer_busy.xml", "-key", "pcap", str(pcap.path), "-d", pause_ms
    )
    code = sipp.finish(60)
    assert code == 0, f"sipp exited {code}:\n{sipp.stderr()}\n" + "\n".join(server.log[-20:])
    server.wait_log(f"transfer from {AR} to 2001 failed (486)")
    (m,) = messages(server, "2001", 1)
    assert (m["caller"], m["called"]) == (CALLER, AR)
    tone_s, _ = exported_tone_s(server, m["id"], tone_hz, kit.tmp)
    assert tone_s == pytest.approx(3.0, abs=0.6)
