"""Which network addresses the service may connect to (server-side request forgery guard).

Every URL the service fetches (and every webhook it will post to) is resolved, and *every*
address it resolves to must be public, unless the operator allowed it with
``VOXHOOK_FETCH_ALLOWLIST`` (hosts or CIDR ranges, for on-premises deployments and tests).
The caller then connects to the checked address itself, so a second DNS answer cannot differ.

:class:`Resolver` is the one place that turns a URL's host and port into addresses to
connect to. Besides the system resolver it honours the operator's ``VOXHOOK_FETCH_CONNECT_TO``
(curl's ``--connect-to``: connect to another address and port when a URL names a host and
port), which internal mirrors use, and which tests use to play Google Drive or Dropbox on
loopback listeners through this same code. The address it leads to is checked like any other.

Refused: loopback, private, link-local (cloud metadata included), carrier-grade NAT,
multicast, reserved and unspecified ranges, in IPv4, IPv6 and IPv4-mapped IPv6. Odd
spellings (decimal ``2130706433``, octal ``0177.0.0.1``, short ``127.1``) are caught because
the check runs on what the resolver returns, not on the text of the URL.
Stdlib only: the API uses it too.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    """Resolve ``host`` with the system resolver and check every address (see
    :meth:`Resolver.resolve`, which also applies connect-to overrides)."""
    return [endpoint.address for endpoint in Resolver(allowlist).resolve(host, port)]


@dataclass(frozen=True)
class Endpoint:
    """A checked address and port to connect to for a URL's host."""

    address: IPAddress
    port: int


def _split_host_port(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` as (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return host.strip("[]").lower().rstrip("."), int(port)


def parse_connect_to(entries: Iterable[str]) -> dict[tuple[str, int], tuple[str, int]]:
    """``HOST:PORT:ADDRESS:PORT`` entries (IPv6 in brackets) as a mapping.

    Raises ValueError naming the entry that is not of that form.
    """
    mapping: dict[tuple[str, int], tuple[str, int]] = {}
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        # Split between the two host:port halves: the first ':' after the first port.
        try:
            first_colon = entry.index(":", entry.index("]") if entry.startswith("[") else 0)
            second_colon = entry.index(":", first_colon + 1)
            source = _split_host_port(entry[:second_colon])
            target = _split_host_port(entry[second_colon + 1:])
        except ValueError:
            raise ValueError(
                f"VOXHOOK_FETCH_CONNECT_TO entry {entry!r} is not HOST:PORT:ADDRESS:PORT "
                "(IPv6 addresses in brackets)") from None
        mapping[source] = target
    return mapping


Lookup = Callable[..., Sequence[tuple[Any, ...]]]


@dataclass(frozen=True)
class Resolver:
    """Turns a host and port into checked endpoints: resolved once, every address checked.

    ``lookup`` is :func:`socket.getaddrinfo` unless a test hands in its own (to prove that
    the fetcher connects to what was checked and never resolves twice).
    """

    allowlist: Allowlist = field(default_factory=Allowlist)
    connect_to: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)
    lookup: Lookup = socket.getaddrinfo

    @classmethod
    def from_settings(cls, allowlist: Iterable[str], connect_to: Iterable[str]) -> Resolver:
        return cls(Allowlist.parse(allowlist), parse_connect_to(connect_to))

    def resolve(self, host: str, port: int) -> list[Endpoint]:
        """The endpoints to try for ``host:port``; :class:`AddressRefused` if any is refused."""
        name = host.lower().rstrip(".")
        target_host, target_port = self.connect_to.get((name, port), (host, port))
        try:
            infos = self.lookup(target_host, target_port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise AddressRefused(
                f"the host '{host}' could not be resolved ({exc.strerror})") from exc
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise AddressRefused(f"the host '{host}' resolved to no address")
        if not self.allowlist.allows_host(target_host):
            for address in addresses:
                check_address(address, self.allowlist)
        return [Endpoint(address, target_port) for address in addresses]
