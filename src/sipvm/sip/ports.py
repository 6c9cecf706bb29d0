"""Is the port free? Checked before pjsua2 starts, with plain sockets.

pjsua2 reports a SIP port in use only through a log line and an exception, and binds RTP
ports only when a call comes; these checks turn both into one clear error at start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket

from sipvm.errors import PortInUseError

log = logging.getLogger(__name__)


def check_sip_port(bind: str, port: int) -> None:
    """Refuse a SIP port another process holds, before pjsua2 tries it (and logs its own
    complaint). The binds copy pjsip's: UDP plain, the TCP listener with SO_REUSEADDR (so a
    restart next to old TIME_WAIT connections is not refused). pjsua2's own failure is still
    turned into the same error, should the port be taken between the check and the start.

    Raises:
        PortInUseError: the UDP or the TCP port is in use.
    """
    for kind, reuse in ((socket.SOCK_DGRAM, False), (socket.SOCK_STREAM, True)):
        with socket.socket(socket.AF_INET, kind) as sock:
            if reuse:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((bind, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    return  # e.g. an address not on this machine: pjsua2 will say so
                raise PortInUseError(
                    f"SIP port {port} on {bind} is in use; choose another --sip-port"
                ) from None


def check_rtp_ports(bind: str, first: int, count: int, calls: int) -> int:
    """Count the RTP/RTCP port pairs among the ``count`` ports from ``first`` that can be
    bound now (up to ``calls`` pairs); pjsua binds them only when a call comes, so a range
    held by another process would otherwise show as failing calls, long after the start.

    Returns:
        The pairs found free; 0 when the address itself cannot be bound (pjsua2 reports that).

    Raises:
        PortInUseError: every pair in the range is in use.
    """
    last = min(first + max(count, 2) - 1, 65535)
    free = 0
    for port in range(first, last, 2):  # pjsua takes even RTP ports, RTCP on the next
        with contextlib.ExitStack() as stack:
            try:
                for p in (port, port + 1):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((bind, p))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    return 0  # not a port in use (e.g. a foreign address): pjsua2 will say
                continue
        free += 1
        if free >= calls:
            return free
    if free == 0:
        raise PortInUseError(
            f"RTP ports {first}-{last} on {bind} are all in use; choose another "
            "[sip] rtp_port (or --rtp-port)"
        )
    log.warning(
        "only %d free RTP port pairs in %d-%d on %s for %d calls",
        free,
        first,
        last,
        bind,
        calls,
    )
    return free
