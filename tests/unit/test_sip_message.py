"""The SIP request parser, over captured INVITEs (``captures/*.sip``) and tables of values."""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sipvm.domain.caller_id import CONTROL_CHARACTERS, usable_caller_id
from sipvm.domain.sip_message import (
    MAX_REQUEST_BYTES,
    Headers,
    MalformedSipError,
    NameAddr,
    SipUri,
    p_asserted_identity,
    parse_name_addr,
    parse_request,
    parse_uri,
    split_values,
)
from sipvm.errors import InvalidInputError

CAPTURES = Path(__file__).parent / "captures"


def capture(name: str) -> str:
    """A capture exactly as on the wire (the files keep their CRLF line ends)."""
    return (CAPTURES / name).read_bytes().decode("utf-8")


def minimal(request_line: str = "INVITE sip:2001@pbx SIP/2.0", *headers: str) -> str:
    lines = [
        request_line,
        "From: <sip:5551234@pbx>;tag=1",
        "To: <sip:2001@pbx>",
        "Call-ID: c1@pbx",
        *headers,
    ]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_captures_are_crlf_as_on_the_wire() -> None:
    # An editor or a git autocrlf setting that rewrites them would hide line-end bugs.
    for path in sorted(CAPTURES.glob("*.sip")):
        raw = path.read_bytes()
        assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b""), path.name


# (capture, method, request-URI user, host, port, From user, From display, From tag, To user,
#  Call-ID)
REQUESTS = [
    (
        "plain_invite.sip",
        "2001",
        "10.0.0.20",
        5060,
        ("5551234", "Pat Caller", "3f2e9c1a-5b7d-4e8f-a1c2-000000000001"),
        "2001",
        "5f1e0c47-2d3b-4a9e-b6c8-000000000001",
    ),
    (
        "asterisk_diversion_no_answer.sip",
        "voicemail",
        "10.0.0.20",
        5060,
        ("5551234", "Pat Caller", "3f2e9c1a-5b7d-4e8f-a1c2-000000000002"),
        "voicemail",
        "5f1e0c47-2d3b-4a9e-b6c8-000000000002",
    ),
    (
        "history_info_reason.sip",
        "voicemail",
        "10.0.0.20",
        5060,
        ("5551234", "Pat Caller", "Hm3K1p8yZ0aNa"),
        "voicemail",
        "7e5b2c6a-3f0e-123d-9b1c-52540012ab34",
    ),
    (
        "compact_headers.sip",
        "1002",
        "10.0.0.20",
        5060,
        ("1900", "Lobby Phone", "2093441175"),
        "1002",
        "0_3196485316@192.168.20.31",
    ),
    (
        "tel_to.sip",
        "",
        "10.0.0.20",
        5060,
        ("+12125550199", "", "as58f4201b"),
        "+15550101",
        "1a2b3c4d5e6f7a8b9c0d@203.0.113.7",
    ),
    (
        "pai_pilot.sip",
        "*97",
        "10.0.0.20",
        5060,
        ("5551234", "Pat Caller", "3f2e9c1a-5b7d-4e8f-a1c2-000000000006"),
        "*97",
        "5f1e0c47-2d3b-4a9e-b6c8-000000000006",
    ),
]


@pytest.mark.parametrize(
    ("name", "ruri_user", "host", "port", "from_", "to_user", "call_id"), REQUESTS
)
def test_captured_requests(
    name: str,
    ruri_user: str,
    host: str,
    port: int,
    from_: tuple[str, str, str],
    to_user: str,
    call_id: str,
) -> None:
    req = parse_request(capture(name))
    assert req.method == "INVITE"
    assert (req.request_uri.user, req.request_uri.host, req.request_uri.port) == (
        ruri_user,
        host,
        port,
    )
    assert (req.from_.uri.user, req.from_.display_name, req.from_.params["tag"]) == from_
    assert req.to.uri.user == to_user
    assert req.call_id == call_id
    # The body is kept byte for byte, so Content-Length (bytes, after the blank line) matches.
    assert req.body.startswith("v=0\r\no=")
    assert req.header("content-length") == str(len(req.body.encode()))


def test_request_uri_parameters_of_an_rfc4458_voicemail_uri() -> None:
    uri = parse_request(capture("rfc4458_target.sip")).request_uri
    assert uri == SipUri(
        "sip",
        "voicemail",
        "10.0.0.20",
        5060,
        {"target": "sip:2001@pbx.example.com", "cause": "486"},
    )


def test_compact_forms_are_the_full_headers() -> None:
    req = parse_request(capture("compact_headers.sip"))
    assert req.headers["Via"] == ("SIP/2.0/UDP 192.168.20.31:5060;branch=z9hG4bK1836554839;rport",)
    assert req.headers["v"] == req.headers["VIA"]
    assert req.headers["Contact"] == ("<sip:1900@192.168.20.31:5060>",)
    assert req.header_values("Supported") == ["replaces", "timer"]
    assert req.header_values("k") == ["replaces", "timer"]
    assert req.header("Content-Type") == "application/sdp"
    assert req.header("l") == "261"
    assert set(req.headers) >= {"via", "from", "to", "call-id", "contact", "content-length"}
    assert "f" not in set(req.headers)


@pytest.mark.parametrize(
    ("compact", "full"),
    [
        ("f", "From"),
        ("t", "To"),
        ("v", "Via"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("c", "Content-Type"),
        ("k", "Supported"),
        ("s", "Subject"),
        ("e", "Content-Encoding"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("b", "Referred-By"),
        ("u", "Allow-Events"),
        ("x", "Session-Expires"),
        ("a", "Accept-Contact"),
        ("j", "Reject-Contact"),
        ("d", "Request-Disposition"),
        ("y", "Identity"),
        ("n", "Identity-Info"),
    ],
)
def test_each_compact_form(compact: str, full: str) -> None:
    headers = Headers([(compact.upper(), "value-1"), (full, "value-2")])
    assert headers[full.lower()] == ("value-1", "value-2")
    assert list(headers) == [full.lower()]


def test_headers_are_a_case_insensitive_multimap_in_order() -> None:
    req = parse_request(capture("two_diversions.sip"))
    assert req.headers["DIVERSION"] == req.headers["diversion"]
    assert [v.split(";")[0] for v in req.headers["Diversion"]] == [
        "<sip:2001@pbx.example.com>",
        '"Main Line" <sip:3001@pbx.example.com>',
    ]
    assert "Min-SE" in req.headers and "History-Info" not in req.headers
    assert req.headers.get("History-Info") is None
    with pytest.raises(KeyError):
        _ = req.headers["History-Info"]
    assert req.header_values("History-Info") == [] and req.header("History-Info") is None
    # Asterisk pads Content-Length; values are stripped.
    assert req.headers["Content-Length"] == ("255",)


# (header lines, header name, expected values)
SPLITS = [
    (["<sip:a@h>, <sip:b@h>"], "Contact", ["<sip:a@h>", "<sip:b@h>"]),
    (['"Smith, Alice" <sip:1001@h>;x=1'], "Contact", ['"Smith, Alice" <sip:1001@h>;x=1']),
    (["<sip:1001@h;p=a,b>;q=1, <sip:2@h>"], "Contact", ["<sip:1001@h;p=a,b>;q=1", "<sip:2@h>"]),
    (
        [r'"say \"hi, there\"" <sip:1@h>, <sip:2@h>'],
        "Contact",
        [r'"say \"hi, there\"" <sip:1@h>', "<sip:2@h>"],
    ),
    (["a", "b, c", "d"], "Allow", ["a", "b", "c", "d"]),
    (["a,, b ,"], "Allow", ["a", "b"]),
    (["INVITE,ACK"], "allow", ["INVITE", "ACK"]),
    # Not comma lists: the comma is data.
    (["Sat, 13 Nov 2010 23:29:00 GMT"], "Date", ["Sat, 13 Nov 2010 23:29:00 GMT"]),
    (
        ["FreeSWITCH-mod_sofia/1.10.11, release"],
        "User-Agent",
        ["FreeSWITCH-mod_sofia/1.10.11, release"],
    ),
    (
        ['Digest username="1001", realm="pbx"'],
        "Authorization",
        ['Digest username="1001", realm="pbx"'],
    ),
    (["Smith, Bob <sip:1@h>;tag=1"], "From", ["Smith, Bob <sip:1@h>;tag=1"]),
]


@pytest.mark.parametrize(("lines", "name", "values"), SPLITS)
def test_header_values_split_commas_outside_quotes_and_brackets(
    lines: list[str], name: str, values: list[str]
) -> None:
    headers = Headers((name, line) for line in lines)
    assert headers.values_of(name) == values


def test_header_values_across_lines_and_comma_joined_keep_order() -> None:
    req = parse_request(capture("history_info_cause_param.sip"))
    assert req.header_values("history-info") == [
        "<sip:3001@pbx.example.com>;index=1",
        "<sip:2001@pbx.example.com;cause=302>;index=1.1;mp=1",
        "<sip:voicemail@vm.example.com;cause=408>;index=1.1.1;mp=1.1",
    ]
    assert split_values('"Sales, Inbound" <sip:6000@pbx>;reason=x, <sip:1@h>') == [
        '"Sales, Inbound" <sip:6000@pbx>;reason=x',
        "<sip:1@h>",
    ]


def test_folded_header_lines_join_the_previous_header() -> None:
    raw = minimal(
        "INVITE sip:2001@pbx SIP/2.0",
        "Diversion: <sip:2001@pbx>;reason=no-answer,",
        "   <sip:3001@pbx>;reason=unconditional",
        "Subject: lunch",
        "\tplans",
    )
    req = parse_request(raw)
    assert req.header_values("Diversion") == [
        "<sip:2001@pbx>;reason=no-answer",
        "<sip:3001@pbx>;reason=unconditional",
    ]
    assert req.header("Subject") == "lunch plans"


def test_bare_lf_line_ends_and_leading_keepalive_lines_are_accepted() -> None:
    raw = "\r\n\r\n" + minimal().replace("\r\n", "\n") + "v=0\n"
    req = parse_request(raw)
    assert (req.method, req.request_uri.user, req.to.uri.user, req.body) == (
        "INVITE",
        "2001",
        "2001",
        "v=0\n",
    )


def test_request_without_body() -> None:
    req = parse_request(minimal("OPTIONS sip:vm.example.com SIP/2.0"))
    assert (req.method, req.request_uri.host, req.request_uri.user, req.body) == (
        "OPTIONS",
        "vm.example.com",
        "",
        "",
    )


URIS = [
    ("sip:2001@10.0.0.20:5060", SipUri("sip", "2001", "10.0.0.20", 5060)),
    ("SIP:2001@PBX.Example.COM", SipUri("sip", "2001", "pbx.example.com")),
    (
        "sips:alice@example.com;transport=tls",
        SipUri("sips", "alice", "example.com", None, {"transport": "tls"}),
    ),
    ("sip:%2A97@pbx", SipUri("sip", "*97", "pbx")),
    ("sip:%2a97%2A2001@pbx", SipUri("sip", "*97*2001", "pbx")),
    ("sip:1001:secret@pbx", SipUri("sip", "1001", "pbx")),
    ("sip:vm.example.com", SipUri("sip", "", "vm.example.com")),
    (
        "sip:2001@[2001:db8::1]:5070;Transport=TCP",
        SipUri("sip", "2001", "2001:db8::1", 5070, {"transport": "TCP"}),
    ),
    ("sip:2001@[::1]", SipUri("sip", "2001", "::1")),
    ("sip:2001@pbx;lr;user=phone", SipUri("sip", "2001", "pbx", None, {"lr": "", "user": "phone"})),
    (
        "sip:voicemail@vm;target=sip:2001%40pbx;cause=486",
        SipUri("sip", "voicemail", "vm", None, {"target": "sip:2001@pbx", "cause": "486"}),
    ),
    (
        "sip:voicemail@vm;target=sip:2001@pbx",  # unescaped '@' in a parameter, seen in the wild
        SipUri("sip", "voicemail", "vm", None, {"target": "sip:2001@pbx"}),
    ),
    ("sip:vm;target=sip:2001@pbx", SipUri("sip", "", "vm", None, {"target": "sip:2001@pbx"})),
    (
        "sip:+15550101;phone-context=example.com@pbx;user=phone",  # RFC 3261 §19.1.6
        SipUri("sip", "+15550101;phone-context=example.com", "pbx", None, {"user": "phone"}),
    ),
    (
        "sip:2001@pbx?Reason=SIP%3Bcause%3D486%3Btext%3D%22Busy%22&Priority=urgent",
        SipUri(
            "sip",
            "2001",
            "pbx",
            None,
            {},
            {"reason": 'SIP;cause=486;text="Busy"', "priority": "urgent"},
        ),
    ),
    ("tel:+15550101", SipUri("tel", "+15550101", "")),
    ("tel:+1-555-0101;ext=22", SipUri("tel", "+1-555-0101", "", None, {"ext": "22"})),
    (
        "tel:7042;phone-context=example.com",
        SipUri("tel", "7042", "", None, {"phone-context": "example.com"}),
    ),
]


@pytest.mark.parametrize(("text", "uri"), URIS)
def test_parse_uri(text: str, uri: SipUri) -> None:
    assert parse_uri(text) == uri


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a sip, sips or tel URI"),
        ("2001@pbx", "not a sip, sips or tel URI"),
        ("http://pbx/2001", "not a sip, sips or tel URI"),
        ("mailto:a@example.com", "not a sip, sips or tel URI"),
        ("sip:", "missing or bad host"),
        ("sip:2001@", "missing or bad host"),
        ("sip:@pbx", "empty user"),
        ("sip:2001@pbx:0", "bad port"),
        ("sip:2001@pbx:65536", "bad port"),
        ("sip:2001@pbx:50a", "bad port"),
        ("sip:2001@pbx:", "bad port"),
        ("sip:2001@pbx:\u0665\u0660", "bad port"),  # Arabic-Indic digits pass str.isdigit()
        ("sip:20 01@pbx", "bad character"),
        ('sip:"2001"@pbx', "bad character"),
        ("sip:2001@pb x", "missing or bad host"),
        ("sip:2001@pbx/path", "missing or bad host"),
        ("sip:2001@[2001:db8::1", "bad IPv6 host"),
        ("sip:2001@[2001:db8::1]5060", "bad IPv6 host"),
        ("tel:", "without a number"),
        ("tel:;phone-context=x", "without a number"),
    ],
)
def test_bad_uris_are_malformed(text: str, message: str) -> None:
    with pytest.raises(MalformedSipError, match=message):
        parse_uri(text)


NAME_ADDRS = [
    (
        '"Pat Caller" <sip:5551234@pbx>;tag=a1',
        NameAddr("Pat Caller", SipUri("sip", "5551234", "pbx"), {"tag": "a1"}),
    ),
    (r'"A \"Quoted\" \\ Name" <sip:1@h>', NameAddr('A "Quoted" \\ Name', SipUri("sip", "1", "h"))),
    ('"Smith, <Alice>" <sip:1001@h>', NameAddr("Smith, <Alice>", SipUri("sip", "1001", "h"))),
    ("Alice   Smith <sip:1001@h>", NameAddr("Alice Smith", SipUri("sip", "1001", "h"))),
    ('"" <sip:1001@h>', NameAddr("", SipUri("sip", "1001", "h"))),
    ("<sip:1001@h>", NameAddr("", SipUri("sip", "1001", "h"))),
    ("<tel:+15550102>", NameAddr("", SipUri("tel", "+15550102", ""))),
    (
        "<sip:2001@pbx;user=phone>;reason=no-answer;counter=1;privacy=off",
        NameAddr(
            "",
            SipUri("sip", "2001", "pbx", None, {"user": "phone"}),
            {"reason": "no-answer", "counter": "1", "privacy": "off"},
        ),
    ),
    # Bare form: every parameter is the header's (RFC 3261 §20).
    (
        "sip:2001@pbx;reason=user-busy;counter=2",
        NameAddr("", SipUri("sip", "2001", "pbx"), {"reason": "user-busy", "counter": "2"}),
    ),
    (
        "<sip:2001@pbx?Reason=SIP%3Bcause%3D486>;index=1.1;mp=1",
        NameAddr(
            "",
            SipUri("sip", "2001", "pbx", None, {}, {"reason": "SIP;cause=486"}),
            {"index": "1.1", "mp": "1"},
        ),
    ),
    (
        '<sip:2001@pbx>;Reason="user-busy";note="a;b=c"',
        NameAddr("", SipUri("sip", "2001", "pbx"), {"reason": "user-busy", "note": "a;b=c"}),
    ),
]


@pytest.mark.parametrize(("text", "addr"), NAME_ADDRS)
def test_parse_name_addr(text: str, addr: NameAddr) -> None:
    assert parse_name_addr(text) == addr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<sip:2001@pbx", "unclosed '<'"),
        ('"Pat" sip:2001@pbx', "display name without a <URI>"),
        ('"Pat <sip:2001@pbx>', "unterminated quoted string"),
        ('Pat" <sip:2001@pbx>', "unterminated quoted string"),
        ('"Pat\\" <sip:2001@pbx>', "unterminated quoted string"),
        ("<sip:2001@pbx> junk", "unexpected text after '>'"),
        ("<http://pbx>", "not a sip, sips or tel URI"),
        ("", "not a sip, sips or tel URI"),
        ("*", "not a sip, sips or tel URI"),
    ],
)
def test_bad_name_addrs_are_malformed(text: str, message: str) -> None:
    with pytest.raises(MalformedSipError, match=message):
        parse_name_addr(text)


def test_p_asserted_identity_is_the_first_sip_or_tel_value() -> None:
    pai = p_asserted_identity(parse_request(capture("pai_pilot.sip")))
    assert pai == NameAddr("Bob Jones", SipUri("sip", "1002", "pbx.example.com"))
    tel_first = minimal(
        "INVITE sip:2001@pbx SIP/2.0",
        "P-Asserted-Identity: <mailto:bob@example.com>, <tel:+15550102>",
        'P-Asserted-Identity: "Bob" <sip:1002@pbx>',
    )
    assert p_asserted_identity(parse_request(tel_first)) == NameAddr(
        "", SipUri("tel", "+15550102", "")
    )
    assert p_asserted_identity(parse_request(capture("plain_invite.sip"))) is None
    garbage_only = minimal("INVITE sip:2001@pbx SIP/2.0", "P-Asserted-Identity: nonsense")
    assert p_asserted_identity(parse_request(garbage_only)) is None


# A caller id that, decoded, holds a whole forged security log line after a line feed.
FORGED_LINE = (
    "2026-11-28 17:37:15,225 WARNING sipvm.security: login failed: source=10.9.9.9 "
    "caller=x extension=1001 reason=wrong-pin"
)
FORGED_USER = "x%0D%0A" + FORGED_LINE.replace(" ", "%20").replace(":", "%3A").replace(",", "%2C")


def test_user_parts_are_percent_decoded_before_anyone_looks_at_them() -> None:
    # RFC 3261 §19.1.2: escaped characters in the user part are data; what the call carries is
    # the decoded text, and that is what gets judged (not the escaped form, which looks clean).
    raw = minimal(
        "INVITE sip:voicemail@pbx SIP/2.0",
        f"P-Asserted-Identity: <sip:{FORGED_USER}@pbx>",
    ).replace("sip:5551234@pbx", f"sip:{FORGED_USER}@pbx")
    request = parse_request(raw)
    pai = p_asserted_identity(request)
    assert pai is not None
    assert pai.uri.user == "x\r\n" + FORGED_LINE
    assert request.from_.uri.user == "x\r\n" + FORGED_LINE
    assert not CONTROL_CHARACTERS.search(FORGED_USER)  # escaped, it passes any raw check
    assert usable_caller_id(pai.uri.user) == ""
    assert parse_uri("tel:%2B1555%0A0101").user == "+1555\n0101"


CONTROL_TEXTS = [
    "\n",
    "\r",
    "\t",
    "\x00",
    "\x1b[31m",  # a terminal colour sequence
    "\x7f",  # DEL
    "\x85",  # NEL, a C1 line break
    "\x9f",
    "\u2028",  # line separator
    "\u2029",  # paragraph separator
]


@pytest.mark.parametrize("bad", CONTROL_TEXTS)
def test_caller_ids_with_control_characters_are_anonymous(bad: str) -> None:
    assert usable_caller_id(f"1001{bad}") == ""
    assert usable_caller_id(f"{bad}1001") == ""
    assert usable_caller_id(parse_uri(f"sip:1001{quote(bad)}@pbx").user) == ""


@pytest.mark.parametrize(
    "good", ["1001", "+15550101", "*97", "alice.smith", "Émile", "a b", "1001;phone-context=x", ""]
)
def test_ordinary_caller_ids_are_kept(good: str) -> None:
    assert usable_caller_id(good) == good


def test_control_characters_are_c0_del_c1_and_the_line_separators() -> None:
    controls = {chr(c) for c in range(0x110000) if CONTROL_CHARACTERS.fullmatch(chr(c))}
    expected = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]}
    assert controls == expected
    # Every character Python itself breaks lines at is among them.
    breakers = {chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1}
    assert breakers <= controls


MALFORMED = [
    (capture("malformed_http_probe.sip"), "not a SIP request line: 'GET / HTTP/1.1'"),
    ("", "not a SIP request line"),
    ("\r\n\r\n", "not a SIP request line"),
    ("SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n", "not a SIP request line"),
    ("INVITE sip:2001@pbx SIP/3.0\r\n\r\n", "not a SIP request line"),
    ("INVITE  sip:2001@pbx SIP/2.0\r\n\r\n", "not a SIP request line"),
    ("INVITE sip:2001@pbx\r\n\r\n", "not a SIP request line"),
    (minimal("INVITE nonsense SIP/2.0"), "not a sip, sips or tel URI: 'nonsense'"),
    (minimal("INVITE sip:2001@ SIP/2.0"), "missing or bad host"),
    (minimal("INVITE sip:2001@pbx:99999 SIP/2.0"), "bad port"),
    (minimal("INVITE sip:2001@pbx SIP/2.0", "no colon here"), "not a header line: 'no colon here'"),
    (minimal("INVITE sip:2001@pbx SIP/2.0", "Bad Name: x"), "not a header line"),
    (minimal("INVITE sip:2001@pbx SIP/2.0", ": empty name"), "not a header line"),
    ("INVITE sip:2001@pbx SIP/2.0\r\n folded first\r\n\r\n", "continuation line before any header"),
    ("INVITE sip:2001@pbx SIP/2.0\r\nTo: <sip:2001@pbx>\r\nCall-ID: c\r\n\r\n", "no From header"),
    ("INVITE sip:2001@pbx SIP/2.0\r\nFrom: <sip:1@pbx>\r\nCall-ID: c\r\n\r\n", "no To header"),
    (
        "INVITE sip:2001@pbx SIP/2.0\r\nFrom: <sip:1@pbx>\r\nTo: <sip:2@pbx>\r\n\r\n",
        "no Call-ID header",
    ),
    (
        minimal().replace("From: <sip:5551234@pbx>", "From: <sip:5551234@pbx"),
        "bad From header: unclosed",
    ),
    (minimal().replace("To: <sip:2001@pbx>", "To: <http://x>"), "bad To header"),
    (
        minimal("INVITE sip:1@h SIP/2.0", "X-Pad: " + "a" * MAX_REQUEST_BYTES),
        "larger than 65536 bytes",
    ),
    # Under the limit in characters, over it in UTF-8 bytes.
    (
        minimal("INVITE sip:1@h SIP/2.0", "Subject: " + "é" * (MAX_REQUEST_BYTES // 2)),
        "larger than",
    ),
]


@pytest.mark.parametrize(("raw", "message"), MALFORMED)
def test_malformed_requests_raise_one_clear_error(raw: str, message: str) -> None:
    with pytest.raises(MalformedSipError, match=message) as caught:
        parse_request(raw)
    assert isinstance(caught.value, InvalidInputError) and caught.value.exit_code == 2


def test_size_limit_is_inclusive() -> None:
    base = minimal("INVITE sip:1@h SIP/2.0")
    raw = base + "x" * (MAX_REQUEST_BYTES - len(base))
    assert len(raw.encode()) == MAX_REQUEST_BYTES
    assert parse_request(raw).body == "x" * (MAX_REQUEST_BYTES - len(base))


def test_parsed_values_are_frozen_and_hashable() -> None:
    req = parse_request(capture("asterisk_diversion_no_answer.sip"))
    with pytest.raises(AttributeError):
        req.method = "BYE"  # type: ignore[misc]
    assert hash(req.request_uri) == hash(parse_uri("sip:voicemail@10.0.0.20:5060"))
    same = parse_name_addr('"Pat Caller" <sip:5551234@pbx.example.com>;tag=other')
    assert len({req.from_, same}) == 2 and hash(req.from_) == hash(same)  # params not hashed
    assert req == parse_request(capture("asterisk_diversion_no_answer.sip"))


_SIPISH = st.text(alphabet='INVITEsip:@<>;,="\\%2A? \t\r\n.0123456789-+[]tel', max_size=300)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_SIPISH, st.text(max_size=200)))
def test_garbage_never_raises_anything_but_malformed(raw: str) -> None:
    for text in (raw, "INVITE sip:2001@pbx SIP/2.0\r\n" + raw, minimal() + raw):
        with contextlib.suppress(MalformedSipError):
            parse_request(text)


@settings(max_examples=300, deadline=None)
@given(_SIPISH)
def test_garbage_values_never_raise_anything_but_malformed(text: str) -> None:
    for parse in (parse_uri, parse_name_addr):
        with contextlib.suppress(MalformedSipError):
            parse(text)
