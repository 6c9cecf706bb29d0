"""Waking the pjsip thread out of a long ``libHandleEvents`` poll.

With no call up, the pjsip thread polls for up to ``IDLE_POLL_MS`` at a time, so an idle
worker wakes a few times a second instead of a hundred. pjlib's ioqueue has no wake-up of its
own, and only a socket event ends the poll early: an INVITE or any other SIP packet does by
itself, and work handed over from another thread (a job, a stop) does through a tiny datagram
sent to the worker's own SIP UDP port. pjsip's UDP transport drops datagrams of 32 bytes or
less without parsing or logging them (``sip_transport_udp.c``, ``MIN_SIZE``), so the nudge
costs one ``sendto`` and one empty read.
"""

from __future__ import annotations

import contextlib
import socket

#: What a nudge carries: a SIP keep-alive (RFC 5626 §4.4.1), far under pjsip's 32-byte floor.
NUDGE = b"\r\n\r\n"


def own_address(bind: str) -> str:
    """Where a packet from this host reaches a transport bound to ``bind``."""
    if bind in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind == "::":
        return "::1"
    return bind


class UdpWaker:
    """Sends nudges to the worker's own SIP UDP port; callable from any thread."""

    def __init__(self, bind: str, port: int) -> None:
        host = own_address(bind)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._target = (host, port)
        self._sock = socket.socket(family, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def __call__(self) -> None:
        # A full socket buffer or a closed port only means the poll ends at its timeout.
        with contextlib.suppress(OSError):
            self._sock.sendto(NUDGE, self._target)

    def close(self) -> None:
        self._sock.close()
