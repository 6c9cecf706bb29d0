"""An idle ``PjEngine`` measured from inside, for ``test_pj_idle.py``; run as its own process.

    python tests/integration/pj_idle_engine.py --port P --rtp-port R [--seconds 3]

pjsua2 allows one Endpoint per process, so the engine runs here. With no call, it measures the
CPU time of the pjsip thread over ``--seconds`` (``/proc/self/task/<tid>/stat``), then how long
jobs handed to the idle thread take to come back (the thread sleeps in a long poll: a job must
wake it), and how long an OPTIONS request takes to be answered (a packet ends the poll by
itself). Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path

from sipvm.sip.engine import EngineConfig, PjEngine

CLK = os.sysconf("SC_CLK_TCK")


def thread_ticks(name: str) -> int:
    """utime + stime of the Python thread called ``name``, in clock ticks."""
    tid = next(t.native_id for t in threading.enumerate() if t.name == name)
    fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def options_rtt(port: int) -> float:
    """Seconds from sending an OPTIONS to the engine to its answer (pjsua answers by itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        me = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:sipvm@127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-idle-{time.monotonic_ns()}\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1:{me}>;tag=idle\r\n"
            f"To: <sip:sipvm@127.0.0.1:{port}>\r\n"
            f"Call-ID: idle-{time.monotonic_ns()}@127.0.0.1\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        start = time.monotonic()
        sock.sendto(request.encode(), ("127.0.0.1", port))
        reply = sock.recv(4096)
        assert reply.startswith(b"SIP/2.0 200"), reply[:80]
        return time.monotonic() - start


async def main(port: int, rtp_port: int, seconds: float) -> dict[str, object]:
    engine = PjEngine(
        EngineConfig(bind="127.0.0.1", port=port, rtp_port=rtp_port, rtp_port_range=16),
        asyncio.get_running_loop(),
        lambda event: None,
    )
    await engine.start()
    try:
        await asyncio.sleep(1.5)  # past the sound device's idle close (1 s)
        t0, c0 = time.monotonic(), thread_ticks("pjsip")
        await asyncio.sleep(seconds)
        pjsip_pct = 100.0 * (thread_ticks("pjsip") - c0) / CLK / (time.monotonic() - t0)
        waits = []
        for _ in range(10):
            await asyncio.sleep(0.13)  # let the thread go back to its long poll
            start = time.monotonic()
            await engine.run(lambda: None)
            waits.append(time.monotonic() - start)
        rtts = []
        for _ in range(5):
            await asyncio.sleep(0.13)
            rtts.append(await asyncio.to_thread(options_rtt, port))
    finally:
        stop_start = time.monotonic()
        await engine.stop()
        stop_s = time.monotonic() - stop_start
    return {"pjsip_pct": pjsip_pct, "job_waits_s": waits, "options_s": rtts, "stop_s": stop_s}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rtp-port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.port, args.rtp_port, args.seconds))))
