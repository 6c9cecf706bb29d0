"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966): the one parser, and the questions
the rest of sipvm asks of a URI (its ``host[:port]``, whether its host is an IP address, whether
an identity names it) and of a transport address (``ip:port``, ``[v6]:port``).

Pure and table-tested (``tests/unit/test_sip_uri.py``). Every parse failure is a
:class:`MalformedSipError`; the questions that take URI text answer "no" (False, "") for text
that is not a URI, since they are asked of configured or received values that may be wrong.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote

from sipvm.errors import InvalidInputError

#: The host of a URI: a name, an IPv4 address or a bracketed IPv6 address.
_HOST = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")

#: Characters that never appear raw in the user part of a URI; seeing one means the text is
#: not a URI at all (or a display name leaked into it).
_BAD_USER_CHARS = frozenset(' \t\r\n<>"')


class MalformedSipError(InvalidInputError):
    """A request, URI or header value that cannot be parsed far enough to route the call."""


@dataclass(frozen=True)
class SipUri:
    """``scheme:user@host:port;params?headers``.

    ``user`` is URL-unescaped (``%2A97`` → ``*97``, ``%0A`` → a line feed: see
    ``usable_caller_id``); for ``tel:`` it is the number and ``host`` is empty. Parameter and
    header names are lower case; their values are unescaped.
    """

    scheme: str
    user: str
    host: str
    port: int | None = None
    params: Mapping[str, str] = field(default_factory=dict, hash=False)
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)


def parse_uri(text: str) -> SipUri:
    """Parse a ``sip:``, ``sips:`` or ``tel:`` URI (RFC 3261 §19.1, RFC 3966)."""
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips", "tel"):
        raise MalformedSipError(f"not a sip, sips or tel URI: {text[:80]!r}")
    if scheme == "tel":
        number_part, _, header_part = rest.partition("?")
        number, _, param_part = number_part.partition(";")
        user = _unescape_user(number, text)
        if not user:
            raise MalformedSipError(f"tel URI without a number: {text[:80]!r}")
        return SipUri("tel", user, "", None, _params(param_part, ";"), _uri_headers(header_part))
    userinfo, hostpart = _split_userinfo(rest)
    # userinfo may be "user:password"; the password is never used and must not be kept.
    user = _unescape_user(userinfo.partition(":")[0], text) if userinfo is not None else ""
    if userinfo is not None and not user:
        raise MalformedSipError(f"URI with an empty user before '@': {text[:80]!r}")
    before_headers, _, header_part = hostpart.partition("?")
    hostport, _, param_part = before_headers.partition(";")
    host, port = _host_port(hostport, text)
    return SipUri(scheme, user, host, port, _params(param_part, ";"), _uri_headers(header_part))


def host_port(uri: SipUri) -> str:
    """``host[:port]`` of a parsed URI, an IPv6 host in brackets (``[::1]:5060``).

    >>> host_port(parse_uri("sip:1001@10.0.0.2:5080;transport=tcp"))
    '10.0.0.2:5080'
    """
    host = f"[{uri.host}]" if ":" in uri.host else uri.host
    return host if uri.port is None else f"{host}:{uri.port}"


def uri_host_port(text: str) -> str:
    """``host[:port]`` of URI text (``sip:user@host:port;params``), or "" when it is empty or
    not a sip, sips or tel URI."""
    try:
        return host_port(parse_uri(text)) if text.strip() else ""
    except MalformedSipError:
        return ""


def has_ip_host(text: str) -> bool:
    """Whether URI text (``sip:[user@]host[:port][;params]``) parses and its host is an IP
    address (v4, or v6 in brackets)."""
    try:
        host = parse_uri(text).host
    except MalformedSipError:
        return False
    return is_ip_address(host)


def is_ip_address(host: str) -> bool:
    """Whether ``host`` (brackets allowed around an IPv6 address) is an IP address."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def aor_matches(identity: str, aor: str) -> bool:
    """Whether ``identity`` (a caller's URI user part, or ``user@host[:port]``) names the AOR.

    ``sip:1001@pbx`` matches ``1001`` and ``1001@pbx`` (the host in any case), not ``1001@other``
    nor ``1001@pbx:5070``. An AOR that is not a URI matches nothing.
    """
    try:
        uri = parse_uri(aor)
    except MalformedSipError:
        return False
    address = host_port(uri)
    if not uri.user:
        return identity.lower() == address
    user, at, host = identity.rpartition("@")
    if not at:
        return identity == uri.user
    return user == uri.user and host.lower() == address


def split_host_port(address: str) -> tuple[str, int | None]:
    """Host (without brackets) and port of a transport address: ``10.0.0.2:5060``,
    ``[::1]:5060``, ``10.0.0.2``, ``[::1]``; the port is None when absent or not a number.

    >>> split_host_port("[::1]:5060")
    ('::1', 5060)
    """
    address = address.strip()
    if address.startswith("["):
        host, _, after = address[1:].partition("]")
        port = after[1:] if after.startswith(":") else ""
    elif address.count(":") == 1:
        host, _, port = address.partition(":")
    else:
        # No port, or a bare IPv6 address whose colons are not a port separator.
        host, port = address, ""
    return host, int(port) if port.isascii() and port.isdecimal() else None


def _split_userinfo(rest: str) -> tuple[str | None, str]:
    """Split ``user@hostpart``; None when the URI has no user part.

    The user part ends at the first '@'. A user may legally contain ';' (RFC 3261 §19.1.6,
    ``+1555;phone-context=x@host``), but when the text between the first ';'/'?' and the '@'
    holds a ':' the '@' belongs to an unescaped URI inside a parameter
    (``sip:vm.example.com;target=sip:2001@pbx``) and the URI has no user part.
    """
    at = rest.find("@")
    if at < 0:
        return None, rest
    separator = min((i for i in (rest.find(";"), rest.find("?")) if i >= 0), default=-1)
    if 0 <= separator < at and ":" in rest[separator:at]:
        return None, rest
    return rest[:at], rest[at + 1 :]


def _unescape_user(raw: str, uri_text: str) -> str:
    # Raw, these characters mean the text is no URI; %-escaped they are data, decoded here
    # and judged where the user part is used (``usable_caller_id``).
    if _BAD_USER_CHARS.intersection(raw):
        raise MalformedSipError(f"bad character in the user part of {uri_text[:80]!r}")
    return unquote(raw)


def _host_port(text: str, uri_text: str) -> tuple[str, int | None]:
    # ``after`` is what follows the host: nothing, or ":port".
    if text.startswith("["):
        close = text.find("]")
        host, after = text[: close + 1], text[close + 1 :]
        if close < 0 or (after and not after.startswith(":")):
            raise MalformedSipError(f"bad IPv6 host in {uri_text[:80]!r}")
    else:
        colon = text.find(":")
        host, after = (text, "") if colon < 0 else (text[:colon], text[colon:])
    if not host or _HOST.fullmatch(host) is None:
        raise MalformedSipError(f"missing or bad host in {uri_text[:80]!r}")
    host = host.strip("[]").lower()
    if not after:
        return host, None
    port = after[1:]
    # isdecimal alone accepts other scripts' digits; a port is ASCII.
    if not (port.isascii() and port.isdecimal()) or not 0 < int(port) < 65536:
        raise MalformedSipError(f"bad port in {uri_text[:80]!r}")
    return host, int(port)


def _params(text: str, separator: str) -> dict[str, str]:
    """URI parameters: names lower-cased, values URL-unescaped; a bare name maps to ''."""
    params: dict[str, str] = {}
    for part in text.split(separator):
        name, _, value = part.partition("=")
        name = unquote(name.strip()).lower()
        if name:
            params[name] = unquote(value.strip())
    return params


def _uri_headers(text: str) -> dict[str, str]:
    """The ``?name=value&...`` part of a URI (RFC 3261 §19.1.1)."""
    return _params(text, "&") if text else {}
