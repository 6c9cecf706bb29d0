"""The Kamailio configuration of the SIP front, rendered from a :class:`FrontConfig`.

Pure: :func:`render` returns the text of each file to write, :func:`kamailio_command` the
command line that runs Kamailio in the foreground on them; starting, stopping and writing
files is the caller's business. The routing script is ``kamailio.cfg.tmpl`` beside this
module (``{{name}}`` placeholders, filled here; ``#!ifdef LEAST_BUSY`` blocks are switched by
Kamailio's own preprocessor); its header comment explains the routing.

Only IPv4: the media workers' pjsua2 build has no IPv6, and the ``X-Sipvm-Source: IP:PORT``
header the front adds is written for IPv4 addresses.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Final, Literal

from sipvm.domain.peers import parse_peer
from sipvm.errors import InvalidInputError

Algorithm = Literal["least-busy", "round-robin"]

DS_ALGORITHMS: Final[Mapping[str, int]] = {"least-busy": 10, "round-robin": 4}
"""Our algorithm names and the dispatcher's numbers for them (``ds_select_dst`` ``alg``)."""
DS_PROBING: Final = 8
"""Dispatcher list flag: keep pinging this destination (with ``ds_probing_mode`` 1: all are)."""
SOURCE_HEADER: Final = "X-Sipvm-Source"
"""The header the front adds to every request it passes to a worker: the sender's IP:PORT
(written out in the template; any copy a caller sent is removed first)."""
DEFAULT_SHM_MB: Final = 64
DEFAULT_PKG_MB: Final = 8
TM_MAX_BRANCHES: Final = 12
"""Kamailio's ``max_branches`` default: tm refuses a call's 13th branch with "500 Forking
capacity exceeded"; each worker tried for a call is one branch."""
MAX_ATTEMPTS_LIMIT: Final = 8
"""The most workers ``max_attempts`` may name: well below :data:`TM_MAX_BRANCHES`."""
MAX_UNIX_SOCKET_PATH: Final = 100
"""``sun_path`` holds 108 bytes; a longer control socket path fails at Kamailio's start."""

_PLACEHOLDER = re.compile(r"\{\{([a-z_]+)\}\}")
_UNSAFE_PATH_CHARS = frozenset('"\\\n\r')


@dataclass(frozen=True)
class FrontPaths:
    """Where the front's files live; everything is under one state directory."""

    state_dir: Path

    @property
    def cfg(self) -> Path:
        """The routing script (``kamailio -f``)."""
        return self.state_dir / "kamailio.cfg"

    @property
    def dispatcher_list(self) -> Path:
        """The workers, one dispatcher destination a line."""
        return self.state_dir / "dispatcher.list"

    @property
    def pid_file(self) -> Path:
        """Kamailio's main process id (``-P``)."""
        return self.state_dir / "kamailio.pid"

    @property
    def ctl_socket(self) -> Path:
        """The binrpc control socket (``kamcmd -s unix:PATH dispatcher.list``)."""
        return self.state_dir / "kamailio.ctl"


@dataclass(frozen=True)
class FrontConfig:
    """Everything the generated front depends on. Invalid values raise InvalidInputError."""

    address: str
    """IPv4 address the front listens on for callers (UDP and TCP)."""
    workers: Sequence[tuple[str, int]]
    """Each media worker's SIP address and UDP port (stored as a tuple)."""
    trusted_peers: Sequence[str]
    """Addresses or CIDR networks allowed to send INVITEs (and so identity headers), as
    ``domain.peers`` reads them (IPv4 only here)."""
    state_dir: Path
    """Directory for the generated files, the pid file and the control socket."""
    port: int = 5060
    """The callers' SIP port (UDP and TCP)."""
    worker_side: tuple[str, int] | None = None
    """A second UDP socket the front uses towards workers, e.g. ``("127.0.0.1", 5059)`` when
    ``address`` is public and the workers listen on loopback; None: the callers' socket."""
    algorithm: Algorithm = "least-busy"
    """``least-busy``: the worker with fewest calls in progress (dispatcher call load);
    ``round-robin``: each worker in turn."""
    calls_per_worker: int = 4
    """least-busy only: a worker with this many calls gets no more (0: no limit)."""
    keepalive_s: int = 2
    """Interval of the OPTIONS pings to every worker."""
    probing_threshold: int = 2
    """Failed pings in a row before a worker leaves rotation."""
    recovery_threshold: int = 1
    """Answered pings before a worker that left rotation comes back."""
    worker_timeout_ms: int = 1000
    """How long a worker may stay silent (no reply to an INVITE, an in-dialog request or a
    ping) before that counts as a failure (tm fr_timer)."""
    peer_timeout_ms: int = 8000
    """How long the far side may take to give a first reply to a request a worker sends
    through the front (BYE, REFER, NOTIFY): longer than ``worker_timeout_ms``, for a WAN."""
    answer_timeout_s: int = 30
    """How long a worker that rang may take to answer (tm fr_inv_timer)."""
    retry_after_s: int = 10
    """Retry-After of the 503 sent when no worker can take a call."""
    max_attempts: int = 4
    """Workers tried for one call (busy, draining, failing or silent ones are skipped) before
    the caller gets 503; at most :data:`MAX_ATTEMPTS_LIMIT`."""
    children: int = 2
    """Kamailio SIP worker processes per UDP socket, and TCP workers: small for a 2-core box."""
    log_level: int = 1
    """Kamailio ``debug``: 0 warnings, 1 notices (rotation changes), 2 info, 3 debug."""
    module_dir: Path | None = None
    """Where Kamailio's modules are; None: the build's default (Debian: under /usr/lib)."""
    call_expire_s: int = 3600
    """least-busy: a call with no BYE seen stops counting after this long."""
    setup_expire_s: int = 60
    """least-busy: a call never answered stops counting after this long (longer than
    ``answer_timeout_s``)."""

    paths: FrontPaths = field(init=False, repr=False, compare=False)
    """The files under ``state_dir``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "workers", tuple((str(h), int(p)) for h, p in self.workers))
        object.__setattr__(self, "trusted_peers", tuple(self.trusted_peers))
        if self.worker_side is not None:
            host, port = self.worker_side
            object.__setattr__(self, "worker_side", (str(host), int(port)))
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        object.__setattr__(self, "paths", FrontPaths(self.state_dir))
        problems = list(_problems(self))
        if problems:
            raise InvalidInputError("invalid SIP front settings: " + "; ".join(problems))


def render(config: FrontConfig) -> dict[str, str]:
    """The files of the front: path (as a string) → text. Write them all, then start
    Kamailio with :func:`kamailio_command`."""
    paths = config.paths
    return {
        str(paths.cfg): render_cfg(config),
        str(paths.dispatcher_list): render_dispatcher_list(config),
    }


def render_cfg(config: FrontConfig) -> str:
    """The routing script (``kamailio.cfg``)."""
    paths = config.paths
    listen = [
        f"listen=udp:{config.address}:{config.port}",
        f"listen=tcp:{config.address}:{config.port}",
    ]
    worker_socket = ""
    if config.worker_side is not None:
        host, port = config.worker_side
        listen.append(f"listen=udp:{host}:{port}")
        worker_socket = f'modparam("dispatcher", "ds_default_socket", "udp:{host}:{port}")'
    ping_host = config.worker_side[0] if config.worker_side else config.address
    defines = "#!define LEAST_BUSY" if config.algorithm == "least-busy" else ""
    values = {
        "defines": defines,
        "log_level": str(config.log_level),
        "children": str(config.children),
        "listen": "\n".join(listen),
        "loadpath": f'loadpath "{config.module_dir}"' if config.module_dir else "",
        "ctl_socket": str(paths.ctl_socket),
        "worker_timeout_ms": str(config.worker_timeout_ms),
        "answer_timeout_ms": str(config.answer_timeout_s * 1000),
        "peer_timeout_ms": str(config.peer_timeout_ms),
        "dispatcher_list": str(paths.dispatcher_list),
        "ping_from_host": ping_host,
        "keepalive_s": str(config.keepalive_s),
        "probing_threshold": str(config.probing_threshold),
        "recovery_threshold": str(config.recovery_threshold),
        "worker_socket": worker_socket,
        "call_expire_s": str(config.call_expire_s),
        "setup_expire_s": str(config.setup_expire_s),
        "trusted_peers": ",".join(str(parse_peer(peer)) for peer in config.trusted_peers),
        "retry_after_s": str(config.retry_after_s),
        "ds_algorithm": str(DS_ALGORITHMS[config.algorithm]),
        "max_attempts": str(min(config.max_attempts, len(config.workers))),
    }
    return _fill(_template(), values)


def render_dispatcher_list(config: FrontConfig) -> str:
    """The dispatcher list: set 1, one worker a line, each pinged, each with a ``duid`` (and a
    ``maxload`` for least-busy)."""
    lines = ["# setid destination flags priority attributes (generated by sipvm)"]
    for index, (host, port) in enumerate(config.workers, start=1):
        attrs = f"duid=w{index}"
        if config.algorithm == "least-busy" and config.calls_per_worker:
            attrs += f";maxload={config.calls_per_worker}"
        lines.append(f"1 sip:{host}:{port} {DS_PROBING} 0 {attrs}")
    return "\n".join(lines) + "\n"


def kamailio_command(
    paths: FrontPaths,
    *,
    executable: str = "kamailio",
    shm_mb: int = DEFAULT_SHM_MB,
    pkg_mb: int = DEFAULT_PKG_MB,
) -> list[str]:
    """The command that runs the front in the foreground (no daemon; logs on stderr).

    SIGTERM to that process stops Kamailio and all its children."""
    return [
        executable,
        "-DD",
        "-E",
        "-f",
        str(paths.cfg),
        "-P",
        str(paths.pid_file),
        "-Y",
        str(paths.state_dir),
        "-w",
        str(paths.state_dir),
        "-m",
        str(shm_mb),
        "-M",
        str(pkg_mb),
    ]


@functools.cache
def _template() -> str:
    return resources.files(__package__).joinpath("kamailio.cfg.tmpl").read_text("utf-8")


def _fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each ``{{name}}`` replaced; an unknown name is a bug, so KeyError."""
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def _problems(config: FrontConfig) -> list[str]:
    """Everything wrong with ``config``, each said in a few words."""
    problems: list[str] = []
    problems += _address_problems("address", config.address)
    problems += _port_problems("port", config.port)
    if not config.workers:
        problems.append("at least one worker is needed")
    for host, port in config.workers:
        problems += _address_problems(f"worker {host}:{port}", host)
        problems += _port_problems(f"worker {host}:{port}", port)
    if len(set(config.workers)) != len(config.workers):
        problems.append("a worker is listed twice")
    sockets = {(config.address, config.port)}
    if config.worker_side is not None:
        host, port = config.worker_side
        problems += _address_problems("worker_side", host)
        problems += _port_problems("worker_side", port)
        sockets.add((host, port))
    if sockets & set(config.workers):
        problems.append("a worker cannot use the front's own address and port")
    if not config.trusted_peers:
        problems.append("trusted_peers is empty: no INVITE would ever be accepted")
    for peer in config.trusted_peers:
        try:
            network = parse_peer(peer)
        except InvalidInputError as exc:
            problems.append(str(exc))
            continue
        if network.version != 4:
            problems.append(
                f"trusted peer {peer!r} is IPv6, but the front takes calls over IPv4 only: "
                'write an IPv4 address or network such as "10.0.0.0/24"'
            )
    if config.algorithm not in DS_ALGORITHMS:
        problems.append(f"algorithm must be one of {', '.join(DS_ALGORITHMS)}")
    minimums = {
        "keepalive_s": (config.keepalive_s, 1),
        "probing_threshold": (config.probing_threshold, 1),
        "recovery_threshold": (config.recovery_threshold, 1),
        "worker_timeout_ms": (config.worker_timeout_ms, 100),
        "peer_timeout_ms": (config.peer_timeout_ms, 100),
        "answer_timeout_s": (config.answer_timeout_s, 1),
        "retry_after_s": (config.retry_after_s, 1),
        "children": (config.children, 1),
        "calls_per_worker": (config.calls_per_worker, 0),
        "call_expire_s": (config.call_expire_s, 1),
        "setup_expire_s": (config.setup_expire_s, 1),
        "max_attempts": (config.max_attempts, 1),
    }
    for name, (value, least) in minimums.items():
        if value < least:
            problems.append(f"{name} must be at least {least}")
    if config.max_attempts > MAX_ATTEMPTS_LIMIT:
        problems.append(
            f"max_attempts must be at most {MAX_ATTEMPTS_LIMIT} (Kamailio takes "
            f"{TM_MAX_BRANCHES} branches per call; each worker tried is one)"
        )
    if config.setup_expire_s <= config.answer_timeout_s:
        problems.append(
            "setup_expire_s must be longer than answer_timeout_s (a ringing call would stop "
            "counting on its worker)"
        )
    if config.worker_timeout_ms >= config.keepalive_s * 1000:
        problems.append("worker_timeout_ms must be shorter than keepalive_s (pings would overlap)")
    if not -5 <= config.log_level <= 3:
        problems.append("log_level must be between -5 and 3")
    paths = config.paths
    for path in (paths.state_dir, config.module_dir):
        if path is not None and (not path.is_absolute() or _UNSAFE_PATH_CHARS & set(str(path))):
            problems.append(f"{path} must be an absolute path without quotes or backslashes")
    if len(str(paths.ctl_socket)) > MAX_UNIX_SOCKET_PATH:
        problems.append(
            f"state_dir is too long for a unix socket path ({MAX_UNIX_SOCKET_PATH} bytes)"
        )
    return problems


def _address_problems(what: str, host: str) -> list[str]:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return [f"{what}: {host!r} is not an IP address"]
    if address.version != 4:
        return [f"{what}: {host!r} is not IPv4"]
    if address.is_unspecified:
        return [f"{what}: a concrete address is needed, not {host}"]
    return []


def _port_problems(what: str, port: int) -> list[str]:
    return [] if 0 < port < 65536 else [f"{what}: port {port} is out of range"]
