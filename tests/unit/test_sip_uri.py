"""The one SIP URI parser and the questions asked of URIs and transport addresses."""

from __future__ import annotations

import pytest

from sipvm.domain.sip_uri import (
    MalformedSipError,
    SipUri,
    aor_matches,
    has_ip_host,
    host_port,
    parse_uri,
    split_host_port,
    uri_host_port,
)


@pytest.mark.parametrize(
    ("text", "uri"),
    [
        ("sip:1001@pbx.example.com", SipUri("sip", "1001", "pbx.example.com")),
        ("sip:1001@[::1]:5060", SipUri("sip", "1001", "::1", 5060)),
        ("sip:[2001:db8::7]", SipUri("sip", "", "2001:db8::7")),
        ("sip:10.0.0.2", SipUri("sip", "", "10.0.0.2")),
        ("sips:1001@PBX.Example.com:5061", SipUri("sips", "1001", "pbx.example.com", 5061)),
        (
            "sip:1001@pbx;transport=tcp;lr?subject=hi",
            SipUri("sip", "1001", "pbx", None, {"transport": "tcp", "lr": ""}, {"subject": "hi"}),
        ),
        ("sip:%2A97%2A2001@pbx", SipUri("sip", "*97*2001", "pbx")),
        ("sip:alice%40home@pbx", SipUri("sip", "alice@home", "pbx")),
        ("sip:1001:secret@pbx", SipUri("sip", "1001", "pbx")),
        (
            "tel:+15551234;phone-context=x",
            SipUri("tel", "+15551234", "", None, {"phone-context": "x"}),
        ),
    ],
)
def test_parse_uri(text: str, uri: SipUri) -> None:
    assert parse_uri(text) == uri


@pytest.mark.parametrize(
    "text",
    ["http://x", "sip:", "sip:1001@", "sip:@pbx", "sip:1001@[::1", "sip:1001@pbx:0", "sip:1 1@h"],
)
def test_bad_uris_are_refused(text: str) -> None:
    with pytest.raises(MalformedSipError):
        parse_uri(text)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("sip:1001@pbx.example.com", "pbx.example.com"),
        ("sip:1001@10.0.0.2:5080;transport=tcp", "10.0.0.2:5080"),
        ("sip:1001@[::1]:5060", "[::1]:5060"),
        ("sip:[::1]", "[::1]"),
        ("sips:1001@pbx.local?x=y", "pbx.local"),
        ("sip:%31001@h", "h"),
        ("tel:+1555", ""),
    ],
)
def test_host_port(text: str, address: str) -> None:
    assert host_port(parse_uri(text)) == address
    assert uri_host_port(text) == address


@pytest.mark.parametrize("text", ["", "  ", "10.0.0.2:5060", "sip:1001@bad host"])
def test_uri_host_port_of_no_uri_is_empty(text: str) -> None:
    assert uri_host_port(text) == ""


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("sip:127.0.0.1", True),
        ("sip:10.0.0.2:5080;transport=tcp", True),
        ("sip:1001@[::1]:5060", True),
        ("sips:1001@[2001:db8::7]", True),
        ("sip:pbx.example.com:5060", False),
        ("sip:1001@999.1.1.1", False),
        ("10.0.0.2:5060", False),
        ("sip:1001@[::1", False),
        ("", False),
    ],
)
def test_has_ip_host(text: str, ip: bool) -> None:
    assert has_ip_host(text) is ip


@pytest.mark.parametrize(
    ("identity", "aor", "matches"),
    [
        ("1001", "sip:1001@pbx", True),
        ("1001@pbx", "sip:1001@pbx", True),
        ("1001@PBX", "sip:1001@pbx", True),
        ("1001@pbx", "sips:1001@PBX;transport=tls", True),
        ("1001@pbx:5070", "sip:1001@pbx:5070", True),
        ("1001@pbx", "sip:1001@pbx:5070", False),
        ("1001@other", "sip:1001@pbx", False),
        ("1002", "sip:1001@pbx", False),
        ("*97", "sip:%2A97@pbx", True),
        ("1001@[::1]:5060", "sip:1001@[::1]:5060", True),
        ("pbx", "sip:pbx", True),
        ("1001", "sip:1001@bad host", False),
    ],
)
def test_aor_matches(identity: str, aor: str, matches: bool) -> None:
    assert aor_matches(identity, aor) is matches


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("10.0.0.2:5060", ("10.0.0.2", 5060)),
        ("10.0.0.2", ("10.0.0.2", None)),
        ("[::1]:5060", ("::1", 5060)),
        ("[::1]", ("::1", None)),
        ("::1", ("::1", None)),
        ("host:port", ("host", None)),
        (" 127.0.0.2:5070 ", ("127.0.0.2", 5070)),
        ("", ("", None)),
    ],
)
def test_split_host_port(address: str, parts: tuple[str, int | None]) -> None:
    assert split_host_port(address) == parts
