"""A small parser for the SIP requests sipvm receives (RFC 3261 §7, §19.1, §20, §25).

Only what routing needs: the request line, headers (compact forms expanded, comma-joined values
split outside quotes and angle brackets, several lines of one header kept in order), URIs and
name-addr values with their parameters. URI user parts are %-decoded (RFC 3261 §19.1.2), so
``%0A`` in a caller id is a line feed by the time anyone looks at it: the caller id a call
carries is ``usable_caller_id`` of it, which refuses control characters. Pure and
table-tested: pjsua2 hands over the raw text and ``sip/`` passes it here. Every failure is a
:class:`MalformedSipError`, so the router can answer 400 without catching anything broader.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final

from sipvm.domain.sip_uri import MalformedSipError as MalformedSipError
from sipvm.domain.sip_uri import SipUri as SipUri
from sipvm.domain.sip_uri import parse_uri as parse_uri

#: Largest request accepted, in UTF-8 bytes. pjsip's own default packet limit is far below
#: this; the cap only bounds the work done on hostile input.
MAX_REQUEST_BYTES = 64 * 1024

#: Compact header forms (RFC 3261 §7.3.3 and the IANA SIP header registry).
COMPACT_FORMS: Mapping[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

#: Headers whose grammar is not a comma-separated list: a comma inside them is data (dates,
#: free text, digest credentials, a sloppy unquoted display name in From/To), so
#: ``header_values`` must not split them.
_SINGLE_VALUED = frozenset(
    [
        "authentication-info",
        "authorization",
        "call-id",
        "content-disposition",
        "content-length",
        "content-type",
        "cseq",
        "date",
        "from",
        "max-forwards",
        "mime-version",
        "organization",
        "priority",
        "proxy-authenticate",
        "proxy-authorization",
        "refer-to",
        "referred-by",
        "reply-to",
        "retry-after",
        "server",
        "subject",
        "timestamp",
        "to",
        "user-agent",
        "www-authenticate",
    ]
)

_REQUEST_LINE = re.compile(r"([A-Za-z][A-Za-z0-9.!%*_+`'~-]*) (\S+) SIP/2\.0")
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")


#: Characters that end or restyle a line in a log file or a terminal: the C0 controls (NUL, TAB,
#: LF, CR, ESC...), DEL, the C1 controls (NEL...) and the Unicode line and paragraph separators.
#: Decoded URI user parts may hold them (``%0A``); no caller id or log line may.
CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def canonical_name(name: str) -> str:
    """The lower-case full form of a header name (``f`` → ``from``, ``Call-ID`` → ``call-id``)."""
    key = name.strip().lower()
    return COMPACT_FORMS.get(key, key)


class Headers(Mapping[str, tuple[str, ...]]):
    """An immutable, case-insensitive multi-map of header name → raw header lines, in order.

    Keys are canonical (lower case, compact forms expanded), so ``headers["F"]``,
    ``headers["from"]`` and ``headers["From"]`` are the same lines.
    """

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        lines: dict[str, list[str]] = {}
        for name, value in items:
            lines.setdefault(canonical_name(name), []).append(value)
        self._lines = {name: tuple(values) for name, values in lines.items()}

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return self._lines[canonical_name(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)

    def __repr__(self) -> str:
        return f"Headers({self._lines!r})"

    def values_of(self, name: str) -> list[str]:
        """Every value of a header across all its lines, comma-joined values split, in order."""
        key = canonical_name(name)
        lines = self._lines.get(key, ())
        if key in _SINGLE_VALUED:
            return [line for line in lines if line]
        return [value for line in lines for value in split_values(line)]


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact/Diversion/History-Info value: display name, URI, header parameters.

    ``params`` are the header's own parameters (``tag``, ``reason``, ``index``, ``privacy``,
    ``counter``...), not the URI's: those are in ``uri.params``.
    """

    display_name: str
    uri: SipUri
    params: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class SipRequest:
    """A parsed request: what routing and caller identification look at."""

    method: str
    request_uri: SipUri
    headers: Headers = field(hash=False)
    from_: NameAddr
    to: NameAddr
    call_id: str
    body: str = ""
    """Everything after the blank line, exactly as received (CRLFs kept)."""

    def header_values(self, name: str) -> list[str]:
        """Every value of a header across all its lines, comma-joined values split, in order."""
        return self.headers.values_of(name)

    def header(self, name: str) -> str | None:
        """The first value of a header, or None when the request has none."""
        values = self.header_values(name)
        return values[0] if values else None


def parse_request(raw: str) -> SipRequest:
    """Parse a whole request: request line, headers, blank line, body.

    From, To and Call-ID are mandatory (RFC 3261 §8.1.1): a request without them, or with a
    From/To that is not a sip/sips/tel name-addr, is malformed.
    """
    # Cheap character count first so a huge input is refused before it is encoded.
    if (
        len(raw) > MAX_REQUEST_BYTES
        or len(raw.encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES
    ):
        raise MalformedSipError(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    # RFC 3261 §7.5: empty lines before the request line (keep-alives) are ignored.
    text = raw.lstrip("\r\n")
    head, body = _split_head_body(text)
    lines = head.split("\n")
    request_line = lines[0].rstrip("\r")
    match = _REQUEST_LINE.fullmatch(request_line)
    if match is None:
        raise MalformedSipError(f"not a SIP request line: {request_line[:80]!r}")
    request_uri = parse_uri(match.group(2))
    headers = Headers(_header_lines(lines[1:]))
    return SipRequest(
        method=match.group(1),
        request_uri=request_uri,
        headers=headers,
        from_=_required_name_addr(headers, "From"),
        to=_required_name_addr(headers, "To"),
        call_id=_required_single(headers, "Call-ID"),
        body=body,
    )


def split_values(line: str) -> list[str]:
    """Split one header line at the commas that are outside quotes and ``<...>``.

    Empty values (``a, , b``) are dropped; each value is stripped.
    """
    values: list[str] = []
    current: list[str] = []
    quoted = angle = escaped = False
    for ch in line:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            angle = True
        elif not quoted and ch == ">":
            angle = False
        elif ch == "," and not quoted and not angle:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    values.append("".join(current).strip())
    return [value for value in values if value]


def parse_name_addr(text: str) -> NameAddr:
    """Parse ``"Name" <uri>;params``, ``Name <uri>;params`` or a bare ``uri;params``.

    In the bare form every ``;param`` belongs to the header, not the URI (RFC 3261 §20).
    """
    text = text.strip()
    if not _quotes_closed(text):
        raise MalformedSipError(f"unterminated quoted string in {text[:80]!r}")
    open_at = _find_unquoted(text, "<")
    if open_at < 0:
        if text.startswith('"'):
            raise MalformedSipError(f"display name without a <URI>: {text[:80]!r}")
        uri_text, _, param_text = text.partition(";")
        return NameAddr("", parse_uri(uri_text), _header_params(param_text))
    close_at = text.find(">", open_at)
    if close_at < 0:
        raise MalformedSipError(f"unclosed '<' in {text[:80]!r}")
    after = text[close_at + 1 :].strip()
    if after and not after.startswith(";"):
        raise MalformedSipError(f"unexpected text after '>' in {text[:80]!r}")
    return NameAddr(
        _display_name(text[:open_at], text),
        parse_uri(text[open_at + 1 : close_at]),
        _header_params(after[1:]),
    )


def p_asserted_identity(request: SipRequest) -> NameAddr | None:
    """The first sip, sips or tel value of P-Asserted-Identity (RFC 3325), or None.

    Values that do not parse are skipped rather than refused: the header is advisory and a
    caller's identity falls back to From.
    """
    for value in request.header_values("p-asserted-identity"):
        try:
            return parse_name_addr(value)
        except MalformedSipError:
            continue
    return None


def has_control_characters(text: str) -> bool:
    """Whether ``text`` holds any of ``CONTROL_CHARACTERS``."""
    return CONTROL_CHARACTERS.search(text) is not None


def usable_caller_id(user: str) -> str:
    """The caller id a decoded URI user part stands for: itself, or "" (anonymous) when it
    holds a control character.

    Such a caller id is dropped whole rather than cleaned: no phone sends one, and what is left
    after removing the characters would still be text of the caller's choosing that may now
    look like a real number (``1001%00`` → ``1001``, a desk phone). The call itself goes on —
    the caller id is advisory, and refusing the call would cost the callee a message.
    """
    return "" if has_control_characters(user) else user


def _split_head_body(text: str) -> tuple[str, str]:
    """Split at the first empty line; accept bare LF line ends as well as CRLF."""
    match = re.search(r"\r?\n\r?\n", text)
    if match is None:
        return text, ""
    return text[: match.start()], text[match.end() :]


def _header_lines(lines: list[str]) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for line in (raw.rstrip("\r") for raw in lines):
        if line[:1] in (" ", "\t"):
            # A folded continuation line (RFC 3261 §7.3.1) joins the previous header.
            if not items:
                raise MalformedSipError(f"continuation line before any header: {line[:80]!r}")
            name, value = items[-1]
            items[-1] = (name, f"{value} {line.strip()}".strip())
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or _TOKEN.fullmatch(name) is None:
            raise MalformedSipError(f"not a header line: {line[:80]!r}")
        items.append((name, value.strip()))
    return items


def _required_name_addr(headers: Headers, name: str) -> NameAddr:
    value = _required_single(headers, name)
    try:
        return parse_name_addr(value)
    except MalformedSipError as exc:
        raise MalformedSipError(f"bad {name} header: {exc}") from None


def _required_single(headers: Headers, name: str) -> str:
    values = headers.values_of(name)
    if not values:
        raise MalformedSipError(f"the request has no {name} header")
    return values[0]


def _header_params(text: str) -> dict[str, str]:
    """``;name=value`` header parameters; quoted-string values are unquoted and unescaped."""
    params: dict[str, str] = {}
    for part in _split_unquoted(text, ";"):
        name, _, value = part.partition("=")
        name = name.strip().lower()
        if name:
            params[name] = _unquote_string(value.strip())
    return params


def _display_name(text: str, whole: str) -> str:
    text = text.strip()
    if text.startswith('"'):
        if len(text) < 2 or not text.endswith('"'):
            raise MalformedSipError(f"unterminated quoted display name in {whole[:80]!r}")
        return _unquote_string(text)
    # A token display name may spread over several words (RFC 3261 §25.1 ``*(token LWS)``).
    return " ".join(text.split())


def _unquote_string(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
    return value


def _find_unquoted(text: str, char: str) -> int:
    """Index of the first ``char`` outside a quoted string, or -1."""
    for index, ch, quoted in _scan_quotes(text):
        if ch == char and not quoted:
            return index
    return -1


def _quotes_closed(text: str) -> bool:
    """Whether every quoted string in ``text`` is closed."""
    # A trailing space is inside a quoted string exactly when one was left open.
    inside = [quoted for _, _, quoted in _scan_quotes(text + " ")]
    return not inside[-1]


def _scan_quotes(text: str) -> Iterator[tuple[int, str, bool]]:
    """(index, char, inside a quoted string) for each character; quotes count as inside."""
    quoted = escaped = False
    for index, ch in enumerate(text):
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
            yield index, ch, True
            continue
        yield index, ch, quoted


def _split_unquoted(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    while True:
        at = _find_unquoted(text, separator)
        if at < 0:
            parts.append(text)
            return parts
        parts.append(text[:at])
        text = text[at + 1 :]
