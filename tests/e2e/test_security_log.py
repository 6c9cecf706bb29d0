"""The security log and the lockout over real SIP: a live `sipvm serve`, pjsua2 callers dialing
the pilot ``*97`` from the PBX address with the caller ids an attacker would choose.

Erin (1101, PIN 927361) is in the example directory.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.unit.test_fail2ban_filter import Fail2ban

from .conftest import PBX_HOST, Kit, Server, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]

ERIN, ERIN_PIN = "1101", "927361"
FORGED_HOST = "10.9.9.9"
FORGED_LINE = (
    f"2026-11-28 17:37:15,225 WARNING sipvm.security: login failed: source={FORGED_HOST} "
    f"caller=x extension={ERIN} reason=wrong-pin"
)
#: On the wire: every character of the forged line %-escaped (RFC 3261 §19.1.2), so the raw
#: header holds no space, colon or line break and passes as a plain user part.
FORGED_USER = "x%0D%0A" + quote(FORGED_LINE, safe="")
#: A security record that sipvm wrote itself: its own timestamp, then the logger, at the start.
OWN_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ WARNING sipvm\.security: (.*)$")


def keys(digits: str) -> dict[str, Any]:
    return {"dtmf": digits, "method": "rfc4733", "duration_ms": 120, "gap_ms": 80}


def attempt(ext: str, pin: str, *, last: bool = False) -> list[dict[str, Any]]:
    """At the extension prompt: type the extension and the PIN, let the answer play. The
    ``last`` attempt waits, up to a bound, for the server to end the call."""
    typed = [keys(ext + "#"), {"wait": 1.0}, keys(pin + "#")]
    return [*typed, {"wait": 30}] if last else [*typed, {"wait": 3.5}]


def pilot_call(server: Server, user: str, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """A call to ``*97`` from the PBX asserting ``user`` (as sent: already %-escaped) in From
    and P-Asserted-Identity."""
    return {
        "to": f"sip:*97@{server.uri_host}",
        "bind": PBX_HOST,
        "from_user": user,
        "headers": [["P-Asserted-Identity", f"<sip:{user}@{PBX_HOST}>"]],
        "steps": steps,
        "timeout": 60,
    }


def security_records(server: Server) -> list[str]:
    """The messages of the security records in the server's log, in order."""
    return [m.group(1) for line in server.log if (m := OWN_RECORD.match(line))]


def test_a_forged_caller_id_writes_no_line_of_its_own(server: Server, kit: Kit) -> None:
    steps = [{"wait_for_audio": 10}, *attempt(ERIN, "000000"), {"hangup": True}]
    report = kit.peer("forger", pilot_call(server, FORGED_USER, steps)).report(60)
    assert report["calls"][0]["status"] == 200, report
    server.wait_log("login failed: source=")
    # Exactly one failure recorded, from the real peer, with the caller id taken as anonymous.
    assert security_records(server) == [
        f"login failed: source={PBX_HOST} caller=- extension={ERIN} reason=wrong-pin"
    ]
    assert Fail2ban().hosts(server.log) == [PBX_HOST]
    # The forged text is in the log, escaped, inside lines of sipvm's own; never a line itself.
    escaped = [line for line in server.log if "x\\r\\n2026-11-28 17:37:15,225 WARNING" in line]
    assert escaped, "\n".join(server.log[-20:])
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \w+ ", line) for line in escaped)
    assert not any(line.startswith(("2026-11-28 17:37:15", "x")) for line in server.log)
    assert FORGED_LINE not in server.log


def test_rotating_caller_ids_end_in_a_peer_lock(tmp_path: Path, kit: Kit) -> None:
    # Two failures per peer lock it here (100 by default), so a few short calls show it.
    server = start_server(tmp_path, settings="peer_login_failures = 2")
    try:
        # One wrong PIN per call, each call with a new caller id: the second locks the peer.
        for caller, pin in [("5550001", "000000"), ("5550002", "111000")]:
            steps = [{"wait_for_audio": 10}, *attempt(ERIN, pin), {"hangup": True}]
            report = kit.peer(f"caller-{caller}", pilot_call(server, caller, steps)).report(60)
            assert report["calls"][0]["status"] == 200, report
            server.wait_log(f"login failed: source={PBX_HOST} caller={caller}")
        # A third caller id with the right PIN: "locked", and the server ends the call.
        steps = [{"wait_for_audio": 10}, *attempt(ERIN, ERIN_PIN, last=True)]
        refused_call = kit.peer("caller-5550003", pilot_call(server, "5550003", steps)).report(60)
        server.wait_log(f"login refused: source={PBX_HOST} caller=5550003")
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])
    assert refused_call["calls"][0]["disconnect"]["by"] == "remote", refused_call
    records = security_records(server)
    assert [r for r in records if r.startswith("login failed:")] == [
        f"login failed: source={PBX_HOST} caller={caller} extension={ERIN} reason=wrong-pin"
        for caller in ["5550001", "5550002"]
    ]
    [locked] = [r for r in records if r.startswith("login locked:")]
    assert locked.startswith(
        f"login locked: source={PBX_HOST} caller=5550002 extension={ERIN} scope=peer until="
    )
    [refused] = [r for r in records if r.startswith("login refused:")]
    assert refused.startswith(
        f"login refused: source={PBX_HOST} caller=5550003 extension={ERIN} reason=locked until="
    )
    assert not any(f"login: extension {ERIN}" in line for line in server.log)
    assert Fail2ban().hosts(server.log) == [PBX_HOST] * 3
