"""Loopback ports for test servers and peers, without the bind-close-reuse race.

Asking the kernel for an ephemeral port, closing it and handing the number to a child process
races with every other socket on the machine — and with parallel test processes doing the same.
Instead each test process owns a block of ports *below* the kernel's ephemeral range (so the
kernel never hands them out to anybody) and deals them out in order: a pytest-xdist worker
``gwN`` owns block N, a serial run block 0. A port is still checked free before it is dealt
(a server of an earlier test may not have let go of it yet); when the block runs out the cursor
wraps around.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading

FIRST = 20000
"""The lowest port dealt; blocks go up from here, well below the ephemeral range (32768+)."""
BLOCK = 1500
"""Ports per test process: 8 parallel workers fit below 32000."""

_lock = threading.Lock()
_cursor = 0


def _block_start() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    return FIRST + (index % 8) * BLOCK


def _all_free(host: str, first: int, count: int, tcp: bool) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kinds = [socket.SOCK_DGRAM, socket.SOCK_STREAM] if tcp else [socket.SOCK_DGRAM]
    with contextlib.ExitStack() as stack:
        try:
            for port in range(first, first + count):
                for kind in kinds:
                    s = stack.enter_context(socket.socket(family, kind))
                    s.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(host: str = "127.0.0.1", count: int = 1, *, tcp: bool = False) -> int:
    """The first of ``count`` consecutive free ports on ``host`` (even when ``count`` > 1, as RTP
    wants), dealt from this process's block so no other test process is handed them. With
    ``tcp`` the ports are free for TCP as well as UDP (a SIP listener takes both)."""
    global _cursor
    start = _block_start()
    with _lock:
        for _ in range(BLOCK):
            offset = _cursor + (_cursor & 1 if count > 1 else 0)
            if offset + count > BLOCK:
                offset = 0
            _cursor = offset + count
            if _all_free(host, start + offset, count, tcp):
                return start + offset
    raise RuntimeError(f"no {count} free consecutive ports on {host} in {start}..{start + BLOCK}")
