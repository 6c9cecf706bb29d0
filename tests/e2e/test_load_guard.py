"""A server that falls behind refuses new calls with 503 until it catches up (``[sip]
behind_lag_ms``): the process is stopped for 1 s (as a starved machine would leave it), and
an INVITE right after gets 503; a second later the same call is answered. (On a machine busy
with the rest of the suite the server may fall behind by itself: the calls that must be
answered may take a few tries.)"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.rtp_caller import RtpCaller

from .conftest import PBX_HOST, SERVER_HOST, Server, start_server

pytestmark = pytest.mark.slow


def answered(server: Server) -> bool:
    """A call is answered within a few tries (each refusal a 503, nothing else)."""
    for _ in range(5):
        with RtpCaller((SERVER_HOST, server.sip_port), bind=PBX_HOST) as caller:
            status = caller.invite("2001", timeout=10)
            if status == 200:
                caller.hangup()
                return True
            assert status == 503, status
        time.sleep(1.0)
    return False


def test_a_server_behind_refuses_new_calls_until_it_catches_up(tmp_path: Path) -> None:
    server = start_server(tmp_path, settings="behind_lag_ms = 400")
    try:
        assert answered(server)  # taken while in time
        os.kill(server.proc.pid, signal.SIGSTOP)
        time.sleep(1.0)
        os.kill(server.proc.pid, signal.SIGCONT)
        line = server.wait_log("behind: the event loop lost", timeout=5)
        assert "new calls get 503 until it catches up" in line
        with RtpCaller((SERVER_HOST, server.sip_port), bind=PBX_HOST) as late:
            assert late.invite("2001", timeout=10) == 503
        server.wait_log("caught up: new calls are taken again", timeout=5)
        assert answered(server)
    finally:
        assert server.stop() == 0, "\n".join(server.log[-30:])
