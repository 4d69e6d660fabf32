"""Which network addresses the service may connect to (server-side request forgery guard).

Every URL the service fetches (and every webhook it will post to) is resolved, and *every*
address it resolves to must be public, unless the operator allowed it with
``VOXHOOK_FETCH_ALLOWLIST`` (hosts or CIDR ranges, for on-premises deployments and tests).
The caller then connects to the checked address itself, so a second DNS answer cannot differ.

Refused: loopback, private, link-local (cloud metadata included), carrier-grade NAT,
multicast, reserved and unspecified ranges, in IPv4, IPv6 and IPv4-mapped IPv6. Odd
spellings (decimal ``2130706433``, octal ``0177.0.0.1``, short ``127.1``) are caught because
the check runs on what the resolver returns, not on the text of the URL.
Stdlib only: the API uses it too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressRefused(Exception):
    """The host, or one of its addresses, may not be reached; the message says why."""


@dataclass(frozen=True)
class Allowlist:
    """Hosts and networks the operator lets the service reach although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in entries:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def allows_address(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not public (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address):
        # IPv4 inside IPv6 (::ffff:a.b.c.d, and 6to4 2002:AABB:CCDD::) is judged as IPv4.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            reason = refusal_reason(embedded)
            return f"{reason} (IPv4 {embedded} inside IPv6)" if reason else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local (includes cloud metadata services)", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    for name, hit in checks:
        if hit:
            return name
    if not address.is_global:  # carrier-grade NAT 100.64.0.0/10 and other special ranges
        return "not globally routable (e.g. carrier-grade NAT)"
    return None


def check_address(address: IPAddress, allowlist: Allowlist) -> None:
    """Raise :class:`AddressRefused` unless ``address`` is public or allowlisted."""
    if allowlist.allows_address(address):
        return
    reason = refusal_reason(address)
    if reason:
        raise AddressRefused(
            f"the address {address} is {reason}; the service only fetches from public "
            "addresses (an operator can allow internal hosts with VOXHOOK_FETCH_ALLOWLIST)")


def resolve_checked(host: str, port: int, allowlist: Allowlist) -> list[IPAddress]:
    """Resolve ``host`` and check every address; returns them for the caller to connect to."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AddressRefused(f"the host '{host}' could not be resolved ({exc.strerror})") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if allowlist.allows_host(host):
        return addresses
    for address in addresses:
        check_address(address, allowlist)
    if not addresses:
        raise AddressRefused(f"the host '{host}' resolved to no address")
    return addresses
