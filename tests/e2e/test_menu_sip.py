"""The desk-phone menu over real SIP: a live `sipvm serve`, pjsua2 callers with RFC 4733 DTMF.

Each test message carries its own tone, and each caller records what it hears, so a test
proves which message was played. The server runs the example directory: Carol (1003, PIN
315972) reaches her own inbox, Bob's (1002, play), the lobby phone's (1900, play and delete)
and the main number's (3001); Bob (1002, PIN 739164) has every right on the Sales queue 2001.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from tests.support.tones import read_pcm_mono, seconds_with_tone

from .conftest import PBX_HOST, Kit, Server, seed_message, stored_message

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]

CAROL, CAROL_PIN = "1003", "315972"
BOB, BOB_PIN = "1002", "739164"


def menu_call(
    server: Server, name: str, identity: str, steps: list[dict[str, Any]], *, timeout: float = 60
) -> dict[str, Any]:
    """A call to the pilot from the PBX with ``identity`` asserted, recording what it hears."""
    return {
        "to": f"sip:voicemail@{server.uri_host}",
        "bind": PBX_HOST,
        "from_user": identity,
        "headers": [["P-Asserted-Identity", f"<sip:{identity}@{PBX_HOST}>"]],
        "steps": steps,
        "timeout": timeout,
        "record": f"{name}.wav",
    }


def keys(digits: str) -> dict[str, Any]:
    return {"dtmf": digits, "method": "rfc4733", "duration_ms": 120, "gap_ms": 80}


def log_in(pin: str) -> list[dict[str, Any]]:
    """Wait for the PIN prompt, type the PIN and #, let the main menu begin."""
    return [{"wait_for_audio": 10}, keys(pin + "#"), {"wait": 2.5}]


def open_and_hear(digit: str, seconds: float = 3.0) -> list[dict[str, Any]]:
    """Pick an inbox in the main menu with # typed ahead (it skips the inbox intro whenever it
    arrives: a # sent once the short intro is over would skip ahead in the message instead) and
    hear the first message, with 3 s to spare: a machine busy with parallel tests may be slow."""
    return [keys(digit + "#"), {"wait": seconds + 3.0}]


def listed(server: Server, inbox: str, member: str) -> list[dict[str, Any]]:
    result = server.cli("messages", "--inbox", inbox, "--as", member, "--json")
    assert result.returncode == 0, result.stderr
    found: list[dict[str, Any]] = json.loads(result.stdout)
    return found


def heard(kit: Kit, name: str) -> Any:
    return read_pcm_mono(kit.tmp / f"{name}.wav")


def test_member_hears_the_shared_inbox_message_and_it_is_played_for_everyone(
    server: Server, kit: Kit
) -> None:
    lobby = seed_message(server, kit.tmp, "1900", 1200)
    seed_message(server, kit.tmp, BOB, 900)
    steps = [*log_in(CAROL_PIN), *open_and_hear("3"), {"hangup": True}]  # 3: the lobby phone
    report = kit.peer("carol", menu_call(server, "carol", CAROL, steps)).report(90)
    assert report["calls"][0]["status"] == 200, report
    pcm = heard(kit, "carol")
    assert seconds_with_tone(pcm, 8000, 1200) >= 2.5  # the lobby message, played in full
    assert seconds_with_tone(pcm, 8000, 900) == 0  # not Bob's
    [message] = listed(server, "1900", "1900")  # as the lobby phone, another member
    assert message["id"] == lobby
    assert message["played"] is True and message["played_by"] == CAROL
    [bobs] = listed(server, BOB, BOB)
    assert bobs["played"] is False


def test_delete_without_and_with_the_right(server: Server, kit: Kit) -> None:
    bobs = seed_message(server, kit.tmp, BOB, 900)
    lobby = seed_message(server, kit.tmp, "1900", 1200)
    steps = [
        *log_in(CAROL_PIN),
        *open_and_hear("2"),  # Bob's inbox: Carol may only play
        keys("7"),  # "You do not have permission to delete messages in this inbox."
        {"wait": 4.5},
        keys("*"),  # back to the main menu
        {"wait": 1.5},
        *open_and_hear("3"),  # the lobby phone: play and delete
        keys("7"),
        {"wait": 3},
        {"hangup": True},
    ]
    kit.peer("carol", menu_call(server, "carol", CAROL, steps, timeout=90)).report(120)
    assert [m["id"] for m in listed(server, BOB, BOB)] == [bobs]
    assert listed(server, "1900", "1900") == []
    message, trail = stored_message(server, lobby)
    assert message.deleted_by == CAROL  # deleted for everyone, the owner included
    assert [(e.actor, e.action) for e in trail] == [
        ("caller", "deposit"),
        (CAROL, "play"),
        (CAROL, "delete"),
    ]


def test_share_reaches_the_target_with_the_audio(server: Server, kit: Kit) -> None:
    original = seed_message(server, kit.tmp, "2001", 1500)
    steps = [
        *log_in(BOB_PIN),
        *open_and_hear("2"),  # Bob: own 1002, then the Sales queue 2001
        keys("8"),  # share: "Enter the extension to share with, then press pound."
        {"wait": 1.0},
        keys(CAROL + "#"),
        {"wait": 1.5},  # "Inbox 1 0 0 3. If this is correct, press 1."
        keys("1"),
        {"wait": 1.5},  # "Press 1 to prepend a message or 2 to forward ... without"
        keys("2"),
        {"wait": 4},
        {"hangup": True},
    ]
    kit.peer("bob", menu_call(server, "bob", BOB, steps, timeout=90)).report(120)
    [copy] = listed(server, CAROL, CAROL)
    assert copy["played"] is False
    assert copy["id"] != original
    copy_file = kit.tmp / "copy.wav"
    exported = server.cli(
        "message", "export", str(copy["id"]), "--as", CAROL, "--format", "wav", "-o", str(copy_file)
    )
    assert exported.returncode == 0, exported.stderr
    assert seconds_with_tone(read_pcm_mono(copy_file), 8000, 1500) >= 2.5


def test_wrong_pins_end_in_a_lockout(server: Server, kit: Kit) -> None:
    # Typed ahead, each answer as soon as the first prompt starts: the server reads them in turn
    # (extension, PIN, "Login incorrect.", extension again ...) with nothing lost.
    wrong = ["000000", "111000", "222000"]
    first = [{"wait_for_audio": 10}, keys("".join(f"1101#{pin}#" for pin in wrong)), {"wait": 20}]
    report = kit.peer("guess1", menu_call(server, "guess1", "5550000", first)).report(90)
    assert report["calls"][0]["disconnect"]["by"] == "remote", report  # 3 failures: hung up
    assert report["calls"][0]["steps"][-1]["result"] == "call_ended", report
    later = ["333000", "444000", "927361"]  # the third is Erin's real PIN: locked by now
    second = [{"wait_for_audio": 10}, keys("".join(f"1101#{pin}#" for pin in later)), {"wait": 20}]
    report = kit.peer("guess2", menu_call(server, "guess2", "5550000", second)).report(90)
    assert report["calls"][0]["disconnect"]["by"] == "remote", report
    server.wait_log("login locked: source=127.0.0.2 caller=5550000 extension=1101 scope=ext")
    refused = server.wait_log("login refused: source=127.0.0.2 caller=5550000 extension=1101")
    assert "reason=locked" in refused
    failed = [line for line in server.log if "login failed:" in line]
    assert len(failed) == 5
    assert all("reason=wrong-pin" in line for line in failed)
    log = "\n".join(server.log)
    for pin in [*wrong, *later]:
        assert pin not in log
