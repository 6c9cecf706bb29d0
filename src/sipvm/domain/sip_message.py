"""A small parser for the SIP requests sipvm receives (RFC 3261 §7, §20, §25).

Only what routing needs: the request line, headers (compact forms expanded, comma-joined values
split outside quotes and angle brackets, several lines of one header kept in order), URIs and
name-addr values with their parameters. Pure and table-tested; pjsua2 hands over the raw text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from sipvm.errors import InvalidInputError

MAX_REQUEST_BYTES = 64 * 1024

_COMPACT = {
    "f": "from",
    "t": "to",
    "v": "via",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
    "o": "event",
    "r": "refer-to",
    "b": "referred-by",
    "u": "allow-events",
    "x": "session-expires",
}
_REQUEST_LINE = re.compile(r"^([A-Z][A-Z0-9._!%*+`'~-]*) (\S+) SIP/2\.0$")


class MalformedSipError(InvalidInputError):
    """A request that cannot be parsed far enough to route it."""


@dataclass(frozen=True)
class SipUri:
    """``scheme:user@host:port;params?headers``; ``user`` is unescaped (``%2A97`` → ``*97``)."""

    scheme: str
    user: str
    host: str
    port: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Diversion/History-Info style value: display name, URI, header parameters."""

    display_name: str
    uri: SipUri
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SipRequest:
    """The parts of a request routing looks at."""

    method: str
    request_uri: SipUri
    headers: dict[str, list[str]]
    """Lower-case full header names → raw values, one per header line, in order."""
    body: str = ""

    def header_values(self, name: str) -> list[str]:
        """Every value of a header, comma-joined values split, in order."""
        key = _COMPACT.get(name.lower(), name.lower())
        return [v for line in self.headers.get(key, []) for v in split_values(line)]

    def header(self, name: str) -> str | None:
        """The first value of a header, or None."""
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def from_(self) -> NameAddr:
        """The From header (required)."""
        return self._required("from")

    @property
    def to(self) -> NameAddr:
        """The To header (required)."""
        return self._required("to")

    @property
    def call_id(self) -> str:
        """The Call-ID (empty when absent)."""
        return self.header("call-id") or ""

    def _required(self, name: str) -> NameAddr:
        value = self.header(name)
        if value is None:
            raise MalformedSipError(f"the request has no {name.title()} header")
        return parse_name_addr(value)


def parse_request(raw: str) -> SipRequest:
    """Parse a whole request (request line, headers, blank line, body)."""
    if len(raw) > MAX_REQUEST_BYTES:
        raise MalformedSipError(f"request of {len(raw)} bytes is over {MAX_REQUEST_BYTES}")
    text = raw.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    match = _REQUEST_LINE.match(lines[0].strip()) if lines else None
    if match is None:
        raise MalformedSipError(f"not a SIP request line: {lines[0][:80]!r}")
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in lines[1:]:
        if not line.strip():
            continue
        if line[0] in " \t" and last is not None:  # folded continuation line (RFC 3261 §7.3.1)
            headers[last][-1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MalformedSipError(f"not a header line: {line[:80]!r}")
        key = name.strip().lower()
        key = _COMPACT.get(key, key)
        headers.setdefault(key, []).append(value.strip())
        last = key
    return SipRequest(match.group(1), parse_uri(match.group(2)), headers, body)


def split_values(line: str) -> list[str]:
    """Split a header line at commas that are outside quotes and ``<...>``."""
    out: list[str] = []
    current = ""
    quoted = False
    angle = 0
    escape = False
    for ch in line:
        if escape:
            current += ch
            escape = False
            continue
        if quoted and ch == "\\":
            escape = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle += 1
        elif not quoted and ch == ">":
            angle = max(0, angle - 1)
        elif ch == "," and not quoted and angle == 0:
            if current.strip():
                out.append(current.strip())
            current = ""
            continue
        current += ch
    if current.strip():
        out.append(current.strip())
    return out


def parse_uri(text: str) -> SipUri:
    """Parse a sip:, sips: or tel: URI."""
    scheme, colon, rest = text.strip().partition(":")
    scheme = scheme.lower()
    if not colon or scheme not in ("sip", "sips", "tel"):
        raise MalformedSipError(f"not a SIP or tel URI: {text[:80]!r}")
    rest, _, header_part = rest.partition("?")
    uri_headers = _params(header_part, "&") if header_part else {}
    if scheme == "tel":
        number, _, param_part = rest.partition(";")
        return SipUri("tel", unquote(number), "", None, _params(param_part, ";"), uri_headers)
    userinfo, at, hostpart = rest.rpartition("@")
    if not at:
        hostpart, userinfo = rest, ""
    user = unquote(userinfo.partition(":")[0])
    hostport, _, param_part = hostpart.partition(";")
    host, port = _host_port(hostport)
    if not host:
        raise MalformedSipError(f"URI without a host: {text[:80]!r}")
    return SipUri(scheme, user, host, port, _params(param_part, ";"), uri_headers)


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``"Name" <uri>;params``, ``Name <uri>;params`` or a bare ``uri;params``.

    In the bare form the parameters belong to the header, not the URI (RFC 3261 §20).
    """
    text = text.strip()
    if "<" in text:
        before, _, after = text.partition("<")
        uri_text, closing, params_text = after.partition(">")
        if not closing:
            raise MalformedSipError(f"unclosed <...> in {text[:80]!r}")
        return NameAddr(_display(before), parse_uri(uri_text), _params(params_text, ";"))
    uri_text, _, params_text = text.partition(";")
    return NameAddr("", parse_uri(uri_text), _params(params_text, ";"))


def p_asserted_identity(request: SipRequest) -> NameAddr | None:
    """The first sip/sips/tel P-Asserted-Identity value, or None."""
    for value in request.header_values("p-asserted-identity"):
        try:
            return parse_name_addr(value)
        except MalformedSipError:
            continue
    return None


def _display(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _params(text: str, sep: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(sep):
        part = part.strip()
        if not part:
            continue
        name, _, value = part.partition("=")
        out[name.strip().lower()] = unquote(value.strip().strip('"'))
    return out


def _host_port(text: str) -> tuple[str, int | None]:
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise MalformedSipError(f"bad port in {text[:80]!r}")
        return host.lower(), int(port_text)
    return host.lower(), None
