"""Safe egress: webhooks go to public addresses only, unless CRM_EGRESS_ALLOW says otherwise.

A destination URL is chosen by whoever configures it, so without this check a webhook could be
aimed at the worker's own loopback services, the private network or a cloud metadata endpoint
(server-side request forgery). Every address a host resolves to is checked, in each of its
spellings: legacy numeric IPv4 (`2130706434`, `127.1`, `0x7f.1`), IPv4-mapped IPv6
(`::ffff:127.0.0.2`), NAT64 (`64:ff9b::7f00:2`) and 6to4 forms are reduced to the IPv4 address
they reach before the check.

The worker connects to the checked address itself: `GuardedResolver` (an aiohttp resolver, used
by worker/http1.py's client) returns only allowed addresses, and the client connects to exactly
those, so there is no second lookup a DNS answer could change in between (DNS rebinding). The
transport also checks literal hosts with `check_literal` before the request.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# Checked first, so the reason names the most specific kind of address.
_METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)
_FORBIDDEN: tuple[tuple[str, IPNetwork], ...] = tuple(
    (reason, ipaddress.ip_network(net))
    for reason, net in (
        ("unspecified or 'this network' address (0.0.0.0/8)", "0.0.0.0/8"),
        ("loopback address", "127.0.0.0/8"),
        ("private address (RFC 1918)", "10.0.0.0/8"),
        ("private address (RFC 1918)", "172.16.0.0/12"),
        ("private address (RFC 1918)", "192.168.0.0/16"),
        ("shared address space (CGNAT 100.64/10)", "100.64.0.0/10"),
        ("link-local address", "169.254.0.0/16"),
        ("IETF protocol assignment (192.0.0.0/24)", "192.0.0.0/24"),
        ("benchmarking address (198.18/15)", "198.18.0.0/15"),
        ("documentation address", "192.0.2.0/24"),
        ("documentation address", "198.51.100.0/24"),
        ("documentation address", "203.0.113.0/24"),
        ("multicast address", "224.0.0.0/4"),
        ("reserved address (240/4)", "240.0.0.0/4"),
        ("unspecified address", "::/128"),
        ("loopback address", "::1/128"),
        ("unique local address (fc00::/7)", "fc00::/7"),
        ("link-local address", "fe80::/10"),
        ("site-local address", "fec0::/10"),
        ("multicast address", "ff00::/8"),
        ("documentation address", "2001:db8::/32"),
        ("NAT64 local-use address", "64:ff9b:1::/48"),
    )
)


class EgressRefused(ValueError):
    """A destination address (or URL) the worker may not connect to; the message says why."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(f"{target}: {reason}")
        self.target = target
        self.reason = reason


def parse_allow(raw: str | None) -> tuple[IPNetwork, ...]:
    """CRM_EGRESS_ALLOW: comma-separated CIDRs (a bare address is a /32 or /128)."""
    nets = []
    for part in (raw or "").split(","):
        if part.strip():
            nets.append(ipaddress.ip_network(part.strip(), strict=False))
    return tuple(nets)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches: IPv4-mapped, NAT64, 6to4, IPv4-compatible."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if int(ip) >> 32 == 0 and int(ip) > 1:  # ::a.b.c.d, deprecated IPv4-compatible form
        return ipaddress.IPv4Address(int(ip))
    return None


def refusal(ip: IPAddress, allow: Sequence[IPNetwork] = ()) -> str | None:
    """Why the worker may not connect to `ip`, or None when it may."""
    if any(ip in net for net in allow if net.version == ip.version):
        return None
    inner = embedded_ipv4(ip)
    if inner is not None:
        why = refusal(inner, allow)
        if why is not None:
            return f"{why} in IPv6 form ({ip} reaches {inner})"
        if ip in _NAT64 or ip.ipv4_mapped is not None:  # type: ignore[union-attr]
            return None  # the public IPv4 address it reaches is fine
    if ip in _METADATA:
        return "cloud metadata address"
    for reason, net in _FORBIDDEN:
        if ip.version == net.version and ip in net:
            return reason
    return None


def numeric_host(host: str) -> IPAddress | None:
    """`host` as an IP address when it is one in any spelling (`2130706434`, `127.1`, `[::1]`)."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:  # inet_aton accepts the legacy forms a resolver would also accept
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_address(ip: IPAddress, allow: Sequence[IPNetwork] = ()) -> None:
    why = refusal(ip, allow)
    if why is not None:
        raise EgressRefused(str(ip), why)


@functools.lru_cache(maxsize=256)
def check_literal(url: str, allow: tuple[IPNetwork, ...] = ()) -> None:
    """Raise EgressRefused when `url`'s host is an IP literal (any spelling) not allowed.

    Cached: the transport calls it before every request, and a URL's literal never changes.
    """
    host = urlsplit(url).hostname or ""
    ip = numeric_host(host)
    if ip is not None:
        why = refusal(ip, allow)
        if why is not None:
            raise EgressRefused(url, f"{why} ({ip})")


def check_url(url: str, allow: Sequence[IPNetwork] = (), resolve: bool = True) -> None:
    """Raise EgressRefused (a ValueError) naming why `url` may not receive webhooks.

    For create/patch validation: an http(s) URL whose host, and every address a name resolves
    to (when `resolve`), is allowed. The worker checks again at each connection.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise EgressRefused(url, f"not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise EgressRefused(url, "must be an http(s) URL with a host")
    if parts.username or parts.password:
        raise EgressRefused(url, "must not carry credentials")
    allow = tuple(allow)
    check_literal(url, allow)
    if numeric_host(host) is not None or not resolve:
        return
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EgressRefused(url, f"host {host!r} does not resolve") from exc
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        why = refusal(ip, allow)
        if why is not None:
            raise EgressRefused(url, f"{host} resolves to a {why} ({ip})")


class GuardedResolver(AbstractResolver):
    """aiohttp resolver: resolve, drop every address the egress rule refuses, return the rest.

    The connector connects to exactly what this returns (no second lookup). When nothing is
    left it raises OSError, which the client reports as a connection error naming the reason.
    """

    def __init__(self, allow: Iterable[IPNetwork] = (), inner: AbstractResolver | None = None):
        self.allow = tuple(allow)
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        literal = numeric_host(host)
        if literal is not None:  # a legacy numeric form: check what it means, connect to that
            check = refusal(literal, self.allow)
            if check is not None:
                raise OSError(f"egress refused: {host} is a {check} ({literal})")
            return [_result(host, str(literal), port)]
        if self._inner is None:
            self._inner = DefaultResolver()
        allowed: list[ResolveResult] = []
        refused: list[str] = []
        for r in await self._inner.resolve(host, port, family):
            ip = ipaddress.ip_address(r["host"].split("%", 1)[0])
            why = refusal(ip, self.allow)
            if why is None:
                allowed.append(r)
            else:
                refused.append(f"{why} ({ip})")
        if not allowed:
            raise OSError(f"egress refused: {host} resolves to a {', '.join(refused)}")
        return allowed

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


def _result(hostname: str, host: str, port: int) -> ResolveResult:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    out: dict[str, Any] = {
        "hostname": hostname,
        "host": host,
        "port": port,
        "family": family,
        "proto": 0,
        "flags": socket.AI_NUMERICHOST,
    }
    return out  # type: ignore[return-value]
