"""Trusted peers: the addresses whose INVITEs (and so identity and routing headers) are honoured.

An entry is one IP address (``"192.0.2.7"``, ``"2001:db8::7"``) or a network in CIDR form
(``"10.0.0.0/24"``, ``"2001:db8::/64"``). The same parsing serves the single worker's call
router (``flows.router``) and the Kamailio front of a worker pool (``front.kamailio``), so
``--trusted-peer 10.0.0.0/24`` means the same thing in both.

Deliberately strict: a network written with host bits set (``10.0.0.1/24``) is refused rather
than silently widened or narrowed, since either reading could trust the wrong machines; a
host name is refused because trust must not depend on DNS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from typing import Final

from sipvm.errors import InvalidInputError

Network = IPv4Network | IPv6Network

ACCEPTED_FORMS: Final = (
    'an IP address such as "192.0.2.7" or "2001:db8::7", '
    'or a network in CIDR form such as "10.0.0.0/24"'
)
"""What a trusted-peer entry may be, as error messages say it."""


def parse_peer(entry: str) -> Network:
    """The network ``entry`` names (a single address is a /32 or /128 network).

    Raises InvalidInputError naming the entry and the accepted forms."""
    if not isinstance(entry, str):  # a settings file can hold a number or a table here
        raise InvalidInputError(f"trusted peer {entry!r} is not text: write {ACCEPTED_FORMS}")
    text = entry.strip()
    if not text:
        raise InvalidInputError(f"trusted peer {entry!r} is empty: write {ACCEPTED_FORMS}")
    address, slash, prefix = text.partition("/")
    if slash and not prefix.isdigit():
        # ipaddress would also take a netmask ("/255.255.255.0") or a host mask: one form only.
        raise InvalidInputError(
            f"trusted peer {entry!r}: the part after / must be a prefix length "
            f"(e.g. /24); write {ACCEPTED_FORMS}"
        )
    if "%" in address:
        raise InvalidInputError(
            f"trusted peer {entry!r}: a zone (%...) is not accepted; write {ACCEPTED_FORMS}"
        )
    try:
        host = ip_address(address)
    except ValueError:
        raise InvalidInputError(
            f"trusted peer {entry!r} is not an IP address or network: write {ACCEPTED_FORMS} "
            "(host names are not accepted)"
        ) from None
    if not slash:
        return ip_network(host)
    length = int(prefix)
    if length > host.max_prefixlen:
        raise InvalidInputError(
            f"trusted peer {entry!r}: /{length} is longer than an IPv{host.version} address "
            f"(at most /{host.max_prefixlen}); write {ACCEPTED_FORMS}"
        )
    network = ip_network(f"{host}/{length}", strict=False)
    if network.network_address != host:
        raise InvalidInputError(
            f"trusted peer {entry!r} has host bits set: write the network "
            f'"{network}" to trust all of it, or "{host}" for that one address'
        )
    return network


def parse_host(host: str) -> IPv4Address | IPv6Address | None:
    """The address in a message's source host (``"192.0.2.7"``, ``"[2001:db8::7]"``), or None
    when it is not an IP address. An IPv4-mapped IPv6 address is given as its IPv4 address."""
    try:
        address = ip_address(host.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedPeers:
    """A parsed list of trusted peers; ``host in peers`` says whether a source is trusted."""

    networks: tuple[Network, ...]
    """Each entry as a network, in the order given."""

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedPeers:
        """Parse every entry (see :func:`parse_peer`); the first bad one raises
        InvalidInputError."""
        return cls(tuple(parse_peer(entry) for entry in entries))

    def __contains__(self, host: object) -> bool:
        """Whether ``host`` (an address as text, or an address object) is inside an entry.
        Anything that is not an IP address is not trusted."""
        if isinstance(host, str):
            address = parse_host(host)
        elif isinstance(host, IPv4Address | IPv6Address):
            address = host
        else:
            return False
        if address is None:
            return False
        return any(address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __str__(self) -> str:
        """The entries, comma-separated, in CIDR form (``"192.0.2.7/32,10.0.0.0/24"``)."""
        return ",".join(str(network) for network in self.networks)
