"""Safe egress: which addresses a webhook may reach, in every spelling of them."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest
from aiohttp.abc import AbstractResolver

from infra.egress import EgressRefused, GuardedResolver, check_url, parse_allow, refusal

LOOPBACK_ONLY = parse_allow("127.0.0.1/32")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "RFC 1918"),
        ("172.16.0.1", "RFC 1918"),
        ("192.168.1.1", "RFC 1918"),
        ("100.64.0.1", "CGNAT"),
        ("169.254.1.1", "link-local"),
        ("169.254.169.254", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("0.0.0.0", "0.0.0.0/8"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("fe80::1", "link-local"),
        ("fc00::1", "unique local"),
        ("::ffff:127.0.0.2", "loopback address in IPv6 form"),
        ("::ffff:10.0.0.1", "RFC 1918"),
        ("64:ff9b::7f00:2", "loopback address in IPv6 form"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
    ],
)
def test_internal_addresses_are_refused_naming_why(address, reason):
    why = refusal(ipaddress.ip_address(address), LOOPBACK_ONLY)
    assert why is not None and reason in why


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1::1", "::ffff:93.184.216.34"])
def test_public_addresses_are_allowed(address):
    assert refusal(ipaddress.ip_address(address), LOOPBACK_ONLY) is None


def test_the_allow_list_lets_exactly_its_networks_through():
    assert refusal(ipaddress.ip_address("127.0.0.1"), LOOPBACK_ONLY) is None
    assert refusal(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK_ONLY) is None
    assert refusal(ipaddress.ip_address("127.0.0.1"), ()) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2/",
        "http://[::1]/",
        "http://2130706434/",
        "http://127.2/",
        "http://0x7f000002/",
        "http://[::ffff:127.0.0.2]/",
        "http://169.254.169.254/latest/meta-data",
    ],
)
def test_check_url_refuses_internal_urls_in_every_spelling(url):
    with pytest.raises(EgressRefused) as refused:
        check_url(url, LOOPBACK_ONLY)
    assert isinstance(refused.value, ValueError) and refused.value.reason


def test_check_url_accepts_an_allowed_loopback_address_and_refuses_non_http():
    check_url("http://127.0.0.1:8001/webhook", LOOPBACK_ONLY)
    for bad in ("ftp://example.com/", "http://user:pw@127.0.0.1/", "http:///nohost"):
        with pytest.raises(EgressRefused):
            check_url(bad, LOOPBACK_ONLY)


class FixedDNS(AbstractResolver):
    """A name server of a few names (this machine's `localhost` is 127.0.0.1 only)."""

    NAMES = {"internal.test": ["127.0.0.2"], "mixed.test": ["127.0.0.2", "127.0.0.1"]}

    async def resolve(self, host, port=0, family=socket.AF_INET):  # type: ignore[no-untyped-def]
        return [
            {
                "hostname": host,
                "host": a,
                "port": port,
                "family": socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for a in self.NAMES[host]
        ]

    async def close(self) -> None:
        pass


def _resolve(host: str, allow=LOOPBACK_ONLY, inner=None) -> list[str]:  # type: ignore[no-untyped-def]
    async def run() -> list[str]:
        resolver = GuardedResolver(allow, inner)
        try:
            return [r["host"] for r in await resolver.resolve(host, 80)]
        finally:
            await resolver.close()

    return asyncio.run(run())


def test_the_resolver_returns_only_allowed_addresses_and_refuses_the_rest():
    assert _resolve("2130706433") == ["127.0.0.1"]  # 127.0.0.1, numeric form
    assert _resolve("mixed.test", inner=FixedDNS()) == ["127.0.0.1"]
    for host in ("2130706434", "0x7f.2"):
        with pytest.raises(OSError, match=r"egress refused: .*loopback"):
            _resolve(host)
    with pytest.raises(OSError, match=r"egress refused: internal\.test resolves to a loopback"):
        _resolve("internal.test", inner=FixedDNS())


def test_a_name_resolving_to_loopback_is_refused_by_real_dns():
    with pytest.raises(OSError, match="egress refused: localhost resolves to a loopback"):
        _resolve("localhost", allow=())
    with pytest.raises(EgressRefused, match="localhost resolves to a loopback"):
        check_url("http://localhost:8001/webhook", ())
