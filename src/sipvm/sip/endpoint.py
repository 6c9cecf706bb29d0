"""The worker's pjsua2 Endpoint: where and how it listens, its transports, codecs and account.

Everything here runs in the pjsip thread, from the engine's start. The settings follow
PJSUA2_NOTES.md: ``threadCnt = 0`` and ``mainThreadOnly`` (the engine's thread polls), no
sound device, 8 kHz G.711 only.

RTP shares SIP's ioqueue (``medConfig.hasIoqueue = False``, no media thread): pjmedia's own
worker would poll its ioqueue every 10 ms forever, idle or not (``endpoint.c``, a fixed
timeout), while the engine's thread polls long when no call is up. A packet, RTP or SIP, ends
that thread's poll at once, and the DTMF it carries reaches its callback right there instead
of being queued for the next poll (pjsua2's pending jobs, under ``mainThreadOnly``).

The null sound device clocks the conference bridge only while something is connected: pjsua
closes it after ``sndAutoCloseTime`` (1 s) with no call and no connection, and opens it again
on the next connection. ``setNoDev()`` would leave the bridge with no clock at all (pjsua's
"no device" mode hands the master port to the application): no playback, no recording.
"""

from __future__ import annotations

import ctypes
import errno
import logging
from dataclasses import dataclass
from typing import Any

import pjsua2 as pj

from sipvm.errors import PortInUseError, SipvmError

log = logging.getLogger(__name__)

#: What the PyPI wheel is compiled with (PJSUA_MAX_CALLS): never configure more.
MAX_CALLS_BUILD = 4
#: pjlib's status for the OS error "address already in use" (PJ_STATUS_FROM_OS).
_PJ_EADDRINUSE = 120000 + errno.EADDRINUSE


@dataclass(frozen=True)
class EngineConfig:
    """Where and how the worker's SIP stack listens."""

    bind: str = "127.0.0.1"
    """Address for SIP and RTP."""
    port: int = 5060
    """SIP port (UDP and TCP)."""
    rtp_port: int = 40000
    """First RTP port; each call takes two (RTP and RTCP)."""
    rtp_port_range: int = 100
    max_calls: int = MAX_CALLS_BUILD
    proxy: str = ""
    """Next hop (``sip:host:port``) for requests outside calls: the MWI NOTIFYs."""
    user_agent: str = "sipvm"
    log_level: int = 1
    no_media_s: float = 5.0
    """An answered call from which no RTP packet has arrived this long after the answer is
    ended (scanners and broken media paths would otherwise hold a slot); 0: never."""


def new_endpoint() -> Any:
    """A new, not yet created, ``pj.Endpoint`` (pjlib's start-up banner silenced first)."""
    # Silence the banner pjlib prints before any log config applies.
    ctypes.CDLL(pj._pjsua2.__file__).pj_log_set_level(0)
    return pj.Endpoint()


def start_endpoint(ep: Any, cfg: EngineConfig) -> None:
    """Create, configure and start ``ep``: UDP and TCP transports on the SIP port, G.711."""
    ep.libCreate()
    ep_cfg = pj.EpConfig()
    ep_cfg.uaConfig.threadCnt = 0
    ep_cfg.uaConfig.mainThreadOnly = True
    ep_cfg.uaConfig.maxCalls = cfg.max_calls
    ep_cfg.uaConfig.userAgent = cfg.user_agent
    ep_cfg.uaConfig.natTypeInSdp = 0
    ep_cfg.logConfig.level = cfg.log_level
    ep_cfg.logConfig.consoleLevel = cfg.log_level
    ep_cfg.logConfig.msgLogging = 0
    ep_cfg.medConfig.clockRate = 8000
    ep_cfg.medConfig.sndClockRate = 8000
    ep_cfg.medConfig.ecTailLen = 0
    ep_cfg.medConfig.noVad = True
    ep_cfg.medConfig.hasIoqueue = False  # RTP in SIP's ioqueue: no media thread (see above)
    ep_cfg.medConfig.threadCnt = 0
    ep.libInit(ep_cfg)
    ep.audDevManager().setNullDev()
    for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
        t_cfg = pj.TransportConfig()
        t_cfg.port = cfg.port
        t_cfg.boundAddress = cfg.bind
        ep.transportCreate(kind, t_cfg)
    ep.libStart()
    for codec in ep.codecEnum2():
        # G.711 only: nothing is resampled, and two pjsua2 ends never pick speex + VAD.
        keep = codec.codecId.startswith(("PCMU/", "PCMA/"))
        ep.codecSetPriority(codec.codecId, 255 if keep else 0)


def account_config(cfg: EngineConfig) -> Any:
    """The ``pj.AccountConfig`` of the worker's one account: RTP ports, outbound proxy."""
    acc_cfg = pj.AccountConfig()
    acc_cfg.idUri = f"sip:sipvm@{cfg.bind}:{cfg.port}"
    media = acc_cfg.mediaConfig.transportConfig
    media.boundAddress = cfg.bind
    if cfg.bind not in ("0.0.0.0", "::"):
        media.publicAddress = cfg.bind  # else the SDP names the default-route address
    media.port = cfg.rtp_port
    media.portRange = cfg.rtp_port_range
    if cfg.proxy:
        route = cfg.proxy if ";lr" in cfg.proxy else f"{cfg.proxy};lr"
        acc_cfg.sipConfig.proxies.append(route)
    return acc_cfg


def start_error(exc: Exception, cfg: EngineConfig) -> SipvmError:
    """A plain error for asyncio (built from strings and numbers only) saying what failed."""
    status = getattr(exc, "status", None)
    if isinstance(status, int) and status == _PJ_EADDRINUSE:
        return PortInUseError(
            f"SIP port {cfg.port} on {cfg.bind} is in use; choose another --sip-port"
        )
    if isinstance(exc, pj.Error):
        reason = f"{exc.reason} (status {exc.status})"
    else:
        log.error("SIP start failed", exc_info=exc)
        reason = f"{type(exc).__name__}: {exc}"
    return SipvmError(
        f"SIP could not start on {cfg.bind}:{cfg.port}: {reason}; check --bind and --sip-port"
    )
