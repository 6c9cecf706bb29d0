"""The server's settings: the settings file (TOML, CONTRACT.md) with command-line overrides."""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sipvm.domain.sip_uri import has_ip_host
from sipvm.errors import InvalidInputError


@dataclass(frozen=True)
class SipSettings:
    """``[sip]``: where the server listens and whom it trusts."""

    bind: str = "0.0.0.0"
    """Address for SIP and RTP."""
    port: int = 5060
    """SIP port (UDP and TCP)."""
    trusted_peers: tuple[str, ...] = ("127.0.0.1",)
    """Addresses whose identity and routing headers are honoured."""
    proxy: str = ""
    """Next hop for NOTIFY and REFER, e.g. ``sip:127.0.0.1:5080``."""
    pilot: tuple[str, ...] = ("*97", "voicemail")
    """Numbers that reach the desk-phone menu."""
    rtp_port: int = 40000
    """First RTP port of this worker (each call takes two)."""
    drain_s: float = 30.0
    """On SIGTERM: how long calls in progress may go on before they are ended."""
    no_media_s: float = 5.0
    """An answered call from which no RTP packet has arrived this long after the answer is
    hung up (a ghost call of a scanner or broken peer would hold a call slot); 0: never."""
    peer_login_failures: int = 100
    """Wrong PINs from one peer address (any caller id, any extension) within 15 minutes that
    lock phone logins from it (a PBX fronts many users: keep it well above their own slips)."""
    behind_lag_ms: int = 200
    """New calls get 503 with Retry-After while this process's event loop has lost this many
    ms of the last second to waking late (a saturated machine, before recordings come out
    short); it takes calls again below a quarter of it; 0: never refuse for load."""


@dataclass(frozen=True)
class SmtpSettings:
    """``[smtp]``: where email notifications go (empty host: no email)."""

    host: str = ""
    port: int = 25
    starttls: bool = False
    """Upgrade the connection with STARTTLS (port 587)."""
    tls: bool = False
    """Connect over TLS from the start (port 465)."""
    username: str = ""
    """With a password: log in (AUTH) before sending."""
    password: str = field(default="", repr=False)
    """Never shown: kept out of reprs, logs and error texts."""
    sender: str = "voicemail@example.com"
    timeout_s: float = 30.0
    """How long one SMTP conversation may take before it counts as failed."""
    retry_s: float = 30.0
    """First wait before a failed send is retried; doubles each time, up to 15 minutes."""
    give_up_h: float = 72.0
    """After this long an email still not sent is given up (logged; the message is kept)."""


@dataclass(frozen=True)
class MwiSettings:
    """``[mwi]``: message-waiting lamps (unsolicited NOTIFYs, RFC 3842)."""

    enabled: bool = True
    coalesce_s: float = 0.2
    """At most one NOTIFY per phone and inbox in this long; bursts send the latest counts."""
    refresh_s: float = 3600.0
    """Every this long (and at start), every phone gets the full state again; 0: only at start."""


@dataclass(frozen=True)
class HttpSettings:
    """``[http]``: the web portal and the HTTP API (port 0: off)."""

    bind: str = "127.0.0.1"
    """Address the portal listens on (put a TLS proxy in front before opening it wider)."""
    port: int = 0
    """Port of the portal and the API; 0: no HTTP."""
    session_idle_s: float = 1800.0
    """A web session unused this long is signed out."""
    proxies: tuple[str, ...] = ()
    """Addresses of reverse proxies (a TLS terminator) whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed: the client's address (lockout, security log) and
    https (the session cookie's Secure flag) come from them. Nobody else's are."""


ENVELOPES = ("before", "after", "key")
"""When the desk-phone menu says a message's envelope (when it came, from whom)."""


@dataclass(frozen=True)
class MenuSettings:
    """``[menu]``: how the desk-phone menu speaks."""

    envelope: str = "after"
    """When a message's envelope (when it came, from whom) is said: ``before`` the message,
    ``after`` it (the default: the message starts soonest and the caller still hears who
    called without a key), or only on ``key`` 3. Key 3 says it again in every mode."""
    spoken_names: bool = True
    """Announce an inbox with no recorded name by its directory name, spoken by espeak-ng
    (made at start and when the directory changes); false: by its extension, spelled out."""


@dataclass(frozen=True)
class ProvisioningSettings:
    """``[provisioning]``: desk-phone configuration files served at ``/provisioning/``."""

    enabled: bool = True
    """Serve the files when the HTTP server is on."""
    voicemail_number: str = ""
    """What a phone's voicemail key dials and each inbox key starts with (``*97`` then
    ``*2001``); "": the first ``[sip] pilot``."""
    networks: tuple[str, ...] = ()
    """Source networks allowed to fetch the files (e.g. "10.1.0.0/16"); none: anyone who
    reaches the HTTP server."""
    username: str = ""
    """HTTP basic authentication for the files (with ``password``); "": none."""
    password: str = field(default="", repr=False)
    templates: str = ""
    """A folder whose templates (same names as ``provisioning/templates/``) replace the
    shipped ones; "": ``DATA/provisioning/templates/`` when it exists."""


@dataclass(frozen=True)
class Settings:
    """Everything ``sipvm serve`` is configured with."""

    data: Path = Path("./data")
    """The data directory (store, audio)."""
    directory: Path | None = None
    """Directory file applied at start; None keeps the stored one (or the embedded example)."""
    workers: int = 1
    """Media worker processes."""
    sip: SipSettings = field(default_factory=SipSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    mwi: MwiSettings = field(default_factory=MwiSettings)
    http: HttpSettings = field(default_factory=HttpSettings)
    menu: MenuSettings = field(default_factory=MenuSettings)
    provisioning: ProvisioningSettings = field(default_factory=ProvisioningSettings)


def load_settings(path: Path | None) -> Settings:
    """Read a settings file (every key optional; unknown keys are errors)."""
    if path is None:
        return Settings()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"settings file {path} is not valid TOML: {exc}") from exc
    sections = {
        "sip": SipSettings,
        "smtp": SmtpSettings,
        "mwi": MwiSettings,
        "http": HttpSettings,
        "menu": MenuSettings,
        "provisioning": ProvisioningSettings,
    }
    top: dict[str, Any] = {}
    for key, value in doc.items():
        if key in sections:
            top[key] = _section(path, key, sections[key], value)
        elif key in ("data", "directory"):
            top[key] = Path(_typed(path, key, value, str))
        elif key == "workers":
            top[key] = _typed(path, key, value, int)
        else:
            raise InvalidInputError(
                f"settings file {path}: unknown key {key!r}; allowed: data, directory, workers, "
                "[sip], [smtp], [mwi], [http], [menu], [provisioning]"
            )
    settings = replace(Settings(), **top)
    _check_proxy(path, settings.sip.proxy)
    if settings.menu.envelope not in ENVELOPES:
        raise InvalidInputError(
            f"settings file {path}: [menu] envelope {settings.menu.envelope!r} must be one of "
            f"{', '.join(ENVELOPES)} (when a message's time and caller are said: before the "
            "message, after it, or only when 3 is pressed)"
        )
    _check_provisioning(path, settings.provisioning)
    return settings


def _check_provisioning(path: Path, prov: ProvisioningSettings) -> None:
    for network in prov.networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise InvalidInputError(
                f"settings file {path}: [provisioning] networks: {network!r} is not a network; "
                'give addresses or prefixes, e.g. "10.1.0.0/16" or "192.0.2.7"'
            ) from None
    if bool(prov.username) != bool(prov.password):
        raise InvalidInputError(
            f"settings file {path}: [provisioning] give both username and password (HTTP basic "
            "authentication for the phones' files) or neither"
        )


def _check_proxy(path: Path, proxy: str) -> None:
    """The next hop must be ``sip:IP[:port]``: pjsip would resolve a name with a blocking
    lookup in the SIP thread for every request."""
    if proxy and not (proxy.startswith("sip:") and has_ip_host(proxy)):
        raise InvalidInputError(
            f"settings file {path}: [sip] proxy {proxy!r} must be sip:ADDRESS[:PORT] with an IP "
            'address, e.g. "sip:10.0.0.2:5060" (host names are not resolved, to keep the SIP '
            "thread from blocking)"
        )


def _section(path: Path, name: str, cls: type[Any], value: Any) -> Any:
    if not isinstance(value, dict):
        raise InvalidInputError(f"settings file {path}: [{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in known:
            raise InvalidInputError(
                f"settings file {path}: unknown key {key!r} in [{name}]; "
                f"allowed: {', '.join(known)}"
            )
        default = getattr(cls(), key)
        if isinstance(default, tuple):
            if not isinstance(item, list) or not all(isinstance(i, str) for i in item):
                raise InvalidInputError(
                    f"settings file {path}: [{name}] {key} must be a list of strings"
                )
            out[key] = tuple(item)
        else:
            out[key] = _typed(path, f"[{name}] {key}", item, type(default))
    return cls(**out)


def _typed(path: Path, key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInputError(f"settings file {path}: {key} must be a {kind.__name__}")
    return value
