"""Trusted peers: which entries are accepted, what each refusal says, and who is inside."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, ip_network

import pytest

from sipvm.domain.peers import TrustedPeers, parse_host, parse_peer
from sipvm.errors import InvalidInputError


@pytest.mark.parametrize(
    ("entry", "network"),
    [
        ("192.0.2.7", "192.0.2.7/32"),
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("127.0.0.0/29", "127.0.0.0/29"),
        ("198.51.100.7/32", "198.51.100.7/32"),
        ("  10.1.0.0/16 ", "10.1.0.0/16"),
        ("2001:db8::7", "2001:db8::7/128"),
        ("2001:DB8::/32", "2001:db8::/32"),
        ("::1", "::1/128"),
    ],
)
def test_addresses_and_cidr_networks_are_accepted(entry: str, network: str) -> None:
    assert parse_peer(entry) == ip_network(network)


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ("10.0.0.1/24", 'has host bits set: write the network "10.0.0.0/24"'),
        ("10.0.0.1/24", 'or "10.0.0.1" for that one address'),
        ("2001:db8::1/64", 'write the network "2001:db8::/64"'),
        ("pbx.example.com", "not an IP address or network"),
        ("pbx.example.com", "host names are not accepted"),
        ("10.0.0", "not an IP address or network"),
        ("10.0.0.256", "not an IP address or network"),
        ("010.0.0.1", "not an IP address or network"),
        ("[::1]", "not an IP address or network"),
        ("10.0.0.0/33", "/33 is longer than an IPv4 address (at most /32)"),
        ("::/129", "/129 is longer than an IPv6 address (at most /128)"),
        ("10.0.0.0/255.255.255.0", "must be a prefix length"),
        ("10.0.0.0/", "must be a prefix length"),
        ("10.0.0.0/-1", "must be a prefix length"),
        ("fe80::1%eth0", "a zone (%...) is not accepted"),
        ("", "is empty"),
        ("   ", "is empty"),
        (7, "is not text"),
    ],
)
def test_a_bad_entry_is_named_with_the_forms_accepted(entry: object, said: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_peer(entry)  # type: ignore[arg-type]
    message = str(caught.value)
    assert said in message
    assert f"trusted peer {entry!r}" in message
    if "host bits" not in message:
        assert '"10.0.0.0/24"' in message and '"192.0.2.7"' in message


def test_the_first_bad_entry_of_a_list_is_the_one_named() -> None:
    with pytest.raises(InvalidInputError, match=re.escape("'10.0.0.1/24'")):
        TrustedPeers.parse(["192.0.2.7", "10.0.0.1/24", "bogus"])


@pytest.mark.parametrize(
    ("host", "inside"),
    [
        ("10.0.0.0", True),
        ("10.0.0.1", True),
        ("10.0.0.255", True),
        ("10.0.1.0", False),
        ("9.255.255.255", False),
        ("192.0.2.7", True),
        ("192.0.2.8", False),
        ("2001:db8::1", True),
        ("[2001:db8::1]", True),
        ("2001:db9::1", False),
        ("::ffff:10.0.0.9", True),  # an IPv4 caller seen on a dual-stack socket
        ("::ffff:10.0.1.9", False),
        ("", False),
        ("pbx.example.com", False),
        ("10.0.0.1:5060", False),  # a host, not host:port
    ],
)
def test_membership(host: str, inside: bool) -> None:
    peers = TrustedPeers.parse(["10.0.0.0/24", "192.0.2.7", "2001:db8::/64"])
    assert (host in peers) is inside


def test_membership_takes_address_objects_and_nothing_else() -> None:
    peers = TrustedPeers.parse(["10.0.0.0/24"])
    assert IPv4Address("10.0.0.3") in peers
    assert None not in peers
    assert 167772163 not in peers  # 10.0.0.3 as a number is not an address


def test_an_empty_list_trusts_nobody() -> None:
    peers = TrustedPeers.parse([])
    assert not peers
    assert "127.0.0.1" not in peers


def test_the_text_form_is_what_kamailio_is_in_subnet_takes() -> None:
    assert str(TrustedPeers.parse(["198.51.100.7", "10.1.0.0/16"])) == (
        "198.51.100.7/32,10.1.0.0/16"
    )


@pytest.mark.parametrize(
    ("host", "address"),
    [("127.0.0.2", "127.0.0.2"), ("[::1]", "::1"), ("::ffff:127.0.0.2", "127.0.0.2")],
)
def test_parse_host(host: str, address: str) -> None:
    parsed = parse_host(host)
    assert parsed is not None and str(parsed) == address
    assert parse_host("example.com") is None
