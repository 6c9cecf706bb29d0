"""SIP header values (RFC 3261 §7.3, §20, §25): names, lists, name-addr values.

Header names are canonical (lower case, compact forms expanded); a comma-joined line is split
outside quotes and angle brackets, except in the headers whose grammar is not a list; a
name-addr (``"Name" <uri>;params``) keeps its own parameters apart from the URI's. Pure; every
failure is a :class:`MalformedSipError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from sipvm.domain.sip_uri import MalformedSipError, SipUri, parse_uri

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


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact/Diversion/History-Info value: display name, URI, header parameters.

    ``params`` are the header's own parameters (``tag``, ``reason``, ``index``, ``privacy``,
    ``counter``...), not the URI's: those are in ``uri.params``.
    """

    display_name: str
    uri: SipUri
    params: Mapping[str, str] = field(default_factory=dict, hash=False)


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
