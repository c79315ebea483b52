"""The endpoint rules: which addresses the poller may call (no link-local, loopback, private, CGNAT or
reserved addresses unless allow-listed). Pure: resolution is the caller's (see app.registration and
the poller's network backend, which both put every address to `EndpointPolicy.refusal`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jobwatch.settings import EndpointSettings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


Resolver = Callable[[str], Sequence[str]]
"""Hostname -> the IP addresses it resolves to (as text)."""


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


_ALWAYS_REFUSED = frozenset({"link-local", "multicast", "unspecified"})
"""Classes a hostname allow-list entry does not exempt: only an explicit CIDR can."""


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, NAT64, 6to4): it is where packets really go."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.sixtofour


def address_class(ip: IPAddress) -> str | None:
    """Why an address is not a public one (None: it is public)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None:
            kind = address_class(inner)
            return None if kind is None else f"{kind} IPv4 inside IPv6"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_multicast:
        return "multicast"
    if ip in _CGNAT:
        return "shared CGNAT"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "non-public"
    return None


def parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id (fe80::1%eth0)
    except ValueError:
        return None


@dataclass(frozen=True)
class EndpointPolicy:
    """What endpoints a deployment accepts; built from `Settings` so the API and the CLI agree."""

    allow_http_loopback: bool = False
    allowlist: Sequence[str] = ()
    """CIDRs (exempt any address inside) and hostnames (exempt their addresses, except link-local,
    multicast and unspecified ones)."""
    resolver: Resolver | None = None
    """How host names are resolved (None: the system resolver, see `app.registration.resolve_host`)."""
    _networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = field(default=(), init=False)
    _hosts: frozenset[str] = field(default=frozenset(), init=False)

    def __post_init__(self) -> None:
        networks = []
        hosts = set()
        for entry in self.allowlist:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hosts", frozenset(hosts))

    @classmethod
    def from_settings(cls, settings: EndpointSettings, resolver: Resolver | None = None) -> EndpointPolicy:
        return cls(settings.allow_http_loopback, settings.endpoint_allowlist, resolver)

    def _in_allowed_network(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and (inner := embedded_ipv4(ip)) is not None:
            candidates.append(inner)
        return any(candidate in network for candidate in candidates for network in self._networks)

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why `host` may not be called at `ip` (None: it may)."""
        kind = address_class(ip)
        if kind is None or self._in_allowed_network(ip):
            return None
        if kind == "loopback" and self.allow_http_loopback and is_loopback_name(host):
            return None  # the local simulators; a *name* that resolves to loopback stays refused
        if host in self._hosts and kind not in _ALWAYS_REFUSED:
            return None
        return kind


def is_loopback_name(host: str) -> bool:
    """Hosts that are loopback by their very name (the http rule; resolution is still checked)."""
    if host in ("localhost", "localhost.") or host.endswith(".localhost"):
        return True
    ip = parse_ip(host)
    return ip is not None and ip.is_loopback


def endpoint_of(url: str) -> str:
    """`scheme://host:port` of a URL: the unit per-endpoint limits and connection pools are kept by."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
