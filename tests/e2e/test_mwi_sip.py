"""Message-waiting lamps over real SIP: a live `sipvm serve` sends unsolicited NOTIFYs (RFC 3842)
to the desk phones of every member of an inbox, and to no one else.

- pjsua2 phones (``tests.support.testpeer`` in answer mode, `onMwiInfo`) are reached directly (no
  ``[sip] proxy``; their AORs are IP addresses): Alice, a member of queue 2001, sees its counts
  follow a deposit, a play and a delete; Carol, not a member, hears nothing about 2001.
- sipp as the PBX/proxy (``[sip] proxy`` set; AORs with a host name): every NOTIFY's headers
  and whole body are checked by the scenario, the exact bodies by the test.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import SCENARIOS, Kit, free_port, seed_message, start_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (Debian sip-tester) missing"),
]

#: Longer than the notifier's poll (0.25 s) plus the coalescing window (0.2 s), with margin.
SETTLE_S = 1.5

DIRECTORY = """
[[site]]
name = "HQ"
timezone = "America/New_York"

[[user]]
ext = "1001"
name = "Alice"
pin = "482916"
phones = ["{alice}"]

[[user]]
ext = "1002"
name = "Bob"
pin = "482917"

[[user]]
ext = "1003"
name = "Carol"
pin = "482918"
phones = ["{carol}"]

[[call_queue]]
ext = "2001"
name = "Sales"
[[call_queue.members]]
member = "1001"
rights = ["play", "download"]
[[call_queue.members]]
member = "1002"
rights = ["play", "delete"]
"""


def lamp_states(report: dict[str, Any], account: str) -> list[str]:
    """The ``Voice-Message`` values a phone got for ``account``, in order."""
    found = []
    for notify in report["mwi"]:
        body = notify["body"]
        if f"Message-Account: {account}\r\n" in body:
            found.append(re.search(r"Voice-Message: (\S+)", body).group(1))  # type: ignore[union-attr]
    return found


def phone(kit: Kit, name: str, port: int, user: str, mwi: int, timeout: float) -> Any:
    script = {"mode": "answer", "bind": "127.0.0.1", "port": port, "from_user": user}
    return kit.peer(name, script | {"calls": 0, "mwi": mwi, "timeout": timeout})


def test_member_phones_follow_deposit_play_delete_and_others_hear_nothing(
    tmp_path: Path, kit: Kit
) -> None:
    a_port, c_port = free_port(), free_port()
    alice, carol = f"sip:1001@127.0.0.1:{a_port}", f"sip:1003@127.0.0.1:{c_port}"
    directory = tmp_path / "dir.toml"
    directory.write_text(DIRECTORY.format(alice=alice, carol=carol), encoding="utf-8")
    # Alice: her own inbox at start, then 2001 at start, after the deposit, play and delete
    # (she stays until the last: a NOTIFY nobody answers holds the server's stop for 32 s).
    alice_phone = phone(kit, "alice", a_port, "1001", mwi=5, timeout=40)
    carol_phone = phone(kit, "carol", c_port, "1003", mwi=1000, timeout=14)
    server = start_server(tmp_path, directory=directory)
    try:
        time.sleep(SETTLE_S)
        message = seed_message(server, tmp_path, "2001")  # another process, like a worker
        time.sleep(SETTLE_S)
        played = server.cli("message", "mark-played", str(message), "--as", "1001")
        assert played.returncode == 0, played.stderr
        time.sleep(SETTLE_S)
        deleted = server.cli("message", "delete", str(message), "--as", "1002")
        assert deleted.returncode == 0, deleted.stderr
        a = alice_phone.report(30)
        c = carol_phone.report(30)
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])
    assert not a["timed_out"], a["mwi"]
    queue = f"sip:2001@127.0.0.1:{a_port}"
    assert lamp_states(a, queue) == ["0/0", "1/0", "0/1", "0/0"]
    assert lamp_states(a, f"sip:1001@127.0.0.1:{a_port}") == ["0/0"]
    waiting = [n["body"].split("\r\n")[0] for n in a["mwi"] if queue in n["body"]]
    assert waiting == [f"Messages-Waiting: {w}" for w in ("no", "yes", "no", "no")]
    assert all(n["request_line"] == f"NOTIFY {alice} SIP/2.0" for n in a["mwi"])
    # Carol's phone: her own (empty) inbox once at start, nothing about the queue.
    assert [n["body"] for n in c["mwi"]] == [
        f"Messages-Waiting: no\r\nMessage-Account: sip:1003@127.0.0.1:{c_port}\r\n"
        "Voice-Message: 0/0 (0/0)\r\n"
    ]


def test_notify_through_the_proxy_has_the_exact_rfc3842_body(tmp_path: Path, kit: Kit) -> None:
    directory = tmp_path / "dir.toml"
    directory.write_text(
        DIRECTORY.format(alice="sip:1001@pbx.example.com", carol="sip:1003@pbx.example.com")
        .replace('name = "Carol"', 'name = "Carol"\n# no phone')
        .replace('phones = ["sip:1003@pbx.example.com"]', ""),
        encoding="utf-8",
    )
    proxy_port = free_port()
    trace = tmp_path / "pbx.msgs"
    pbx = kit.spawn(
        "pbx",
        [
            "sipp", "-sf", str(SCENARIOS / "uas_mwi.xml"), "-i", "127.0.0.1",
            "-p", str(proxy_port), "-m", "3", "-timeout", "40s", "-timeout_error",
            "-nostdin", "-trace_msg", "-message_file", str(trace),
        ],
    )  # fmt: skip
    time.sleep(0.5)
    server = start_server(
        tmp_path, directory=directory, settings=f'proxy = "sip:127.0.0.1:{proxy_port}"'
    )
    try:
        time.sleep(SETTLE_S)  # the two NOTIFYs at start: Alice's inbox and the queue, empty
        seed_message(server, tmp_path, "2001")
        assert pbx.finish(30) == 0, pbx.stderr() + trace.read_text(errors="replace")[-3000:]
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])
    text = trace.read_text(errors="replace").replace("\r\n", "\n").replace("\n", "\r\n")
    pattern = r"NOTIFY (sip:\S+) SIP/2\.0\r\n(.*?)\r\n\r\n(.*?)(?=\r\n-{5,}|\Z)"
    notifies = re.findall(pattern, text, re.S)
    assert len(notifies) == 3, text[-3000:]
    assert {uri for uri, _, _ in notifies} == {"sip:1001@pbx.example.com"}
    for _, headers, _ in notifies:
        assert re.search(rf"^Route: <sip:127\.0\.0\.1:{proxy_port};lr>\r?$", headers, re.M | re.I)
    bodies = [body for _, _, body in notifies]
    assert sorted(bodies[:2]) == [
        "Messages-Waiting: no\r\nMessage-Account: sip:1001@pbx.example.com\r\n"
        "Voice-Message: 0/0 (0/0)\r\n",
        "Messages-Waiting: no\r\nMessage-Account: sip:2001@pbx.example.com\r\n"
        "Voice-Message: 0/0 (0/0)\r\n",
    ]
    assert bodies[2] == (
        "Messages-Waiting: yes\r\nMessage-Account: sip:2001@pbx.example.com\r\n"
        "Voice-Message: 1/0 (0/0)\r\n"
    )
