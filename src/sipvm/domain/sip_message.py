"""A small parser for the SIP requests sipvm receives (RFC 3261 §7, §19.1, §20, §25).

Only what routing needs: the request line, headers (``sip_headers``: compact forms expanded,
comma-joined values split outside quotes and angle brackets, several lines of one header kept
in order), URIs (``sip_uri``) and name-addr values with their parameters. URI user parts are
%-decoded (RFC 3261 §19.1.2), so ``%0A`` in a caller id is a line feed by the time anyone
looks at it: the caller id a call carries is ``caller_id.usable_caller_id`` of it, which
refuses control characters. Pure and table-tested: pjsua2 hands over the raw text and ``sip/``
passes it here. Every failure is a :class:`MalformedSipError`, so the router can answer 400
without catching anything broader.

The parts of a request (``sip_headers``, ``sip_uri``) are importable from here too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sipvm.domain.sip_headers import COMPACT_FORMS as COMPACT_FORMS
from sipvm.domain.sip_headers import Headers as Headers
from sipvm.domain.sip_headers import NameAddr as NameAddr
from sipvm.domain.sip_headers import canonical_name as canonical_name
from sipvm.domain.sip_headers import parse_name_addr as parse_name_addr
from sipvm.domain.sip_headers import split_values as split_values
from sipvm.domain.sip_uri import MalformedSipError as MalformedSipError
from sipvm.domain.sip_uri import SipUri as SipUri
from sipvm.domain.sip_uri import parse_uri as parse_uri

#: Largest request accepted, in UTF-8 bytes. pjsip's own default packet limit is far below
#: this; the cap only bounds the work done on hostile input.
MAX_REQUEST_BYTES = 64 * 1024

_REQUEST_LINE = re.compile(r"([A-Za-z][A-Za-z0-9.!%*_+`'~-]*) (\S+) SIP/2\.0")
_TOKEN = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+")


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
