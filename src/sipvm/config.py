"""The server's settings: the settings file (TOML, CONTRACT.md) with command-line overrides."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class SmtpSettings:
    """``[smtp]``: where email notifications go (empty host: no email)."""

    host: str = ""
    port: int = 25
    starttls: bool = False
    username: str = ""
    password: str = ""
    sender: str = "voicemail@example.com"


@dataclass(frozen=True)
class HttpSettings:
    """``[http]``: the HTTP API (port 0: off)."""

    port: int = 0


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
    http: HttpSettings = field(default_factory=HttpSettings)


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
    sections = {"sip": SipSettings, "smtp": SmtpSettings, "http": HttpSettings}
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
                "[sip], [smtp], [http]"
            )
    return replace(Settings(), **top)


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
