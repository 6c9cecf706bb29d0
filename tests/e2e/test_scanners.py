"""sipvicious against the live server: it is found, but learns nothing about extensions.

The scanners send from 127.0.0.1, which the server does not trust (the PBX is 127.0.0.2).
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from .conftest import Kit, Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("sipvicious_svwar") is None, reason="sipvicious missing"),
]

# Existing (1001-1004, 2001, 3001, 4001) and missing (1005-1010, 9998, 9999) extensions.
EXTENSIONS = "1001-1010,2001,3001,4001,9998,9999"


def run(*args: str) -> str:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False)
    return result.stdout + result.stderr


def test_svmap_finds_a_neutral_user_agent(server: Server) -> None:
    out = run("sipvicious_svmap", "127.0.0.1", "-p", str(server.sip_port))
    row = next(line for line in out.splitlines() if f"127.0.0.1:{server.sip_port}" in line)
    assert re.search(r"\|\s*sipvm\s*\|", row), row  # no version, no "pjsip"
    assert "pj" not in out.lower()


@pytest.mark.parametrize("method", ["INVITE", "OPTIONS", "REGISTER"])
def test_svwar_cannot_tell_existing_extensions_from_missing_ones(
    server: Server, kit: Kit, method: str
) -> None:
    out = run(
        "sipvicious_svwar",
        "--force",
        "-m",
        method,
        "-e",
        EXTENSIONS,
        "127.0.0.1",
        "-p",
        str(server.sip_port),
    )
    assert "found nothing" in out, out
    for ext in ("1001", "2001", "3001", "4001"):
        assert not re.search(rf"\|\s*{ext}\s*\|", out), out
    # the scan took no call slot and left no message: a trusted caller still gets through
    script = {
        "to": f"sip:2001@{server.uri_host}",
        "bind": "127.0.0.2",
        "from_user": "5551234",
        "steps": [{"wait": 0.5}, {"hangup": True}],
        "timeout": 15,
    }
    assert kit.peer("after", script).report(30)["calls"][0]["status"] == 200
    assert server.cli("messages", "--inbox", "2001", "--json").stdout.strip() == "[]"
