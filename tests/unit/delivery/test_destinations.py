"""Where the service may connect for a URL someone gave it: the pure checks."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.destinations import (
    PrivateAddressError,
    address_problem,
    public_socket,
    resolved_problem,
    url_problem,
)


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.0.10", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("fe80::1%eth0", "link-local"),
        ("fd00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "reserved"),  # noqa: S104 - an address to refuse, not to bind
        ("::", "reserved"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.1", "private"),  # documentation
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("not-an-ip", "not an IP address"),
    ],
)
def test_address_problem_refuses_every_kind_of_non_public_address(
    address: str, problem: str
) -> None:
    found = address_problem(address)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2a00:1450:4001:82a::200a"])
def test_address_problem_accepts_public_addresses(address: str) -> None:
    assert address_problem(address) is None


private_v4 = st.sampled_from(
    ["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]
).flatmap(
    lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
        lambda i, net=net: ipaddress.ip_network(net)[i]
    )
)


@given(private_v4)
def test_a_private_v4_address_is_refused_in_every_form(address: ipaddress.IPv4Address) -> None:
    assert address_problem(str(address)) is not None
    assert address_problem(f"::ffff:{address}") is not None
    assert url_problem(f"https://{address}/push") is not None
    assert url_problem(f"https://[::ffff:{address}]:443/push") is not None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://push.example.net/x", "expected an https URL"),
        ("ftp://push.example.net/x", "expected an https URL"),
        ("https:///x", "expected an https URL"),
        ("https://push.example.net:99999/x", "expected an https URL"),
        ("https://u:p@push.example.net/x", "no user or password"),
        ("https://localhost/x", "not a public host name"),
        ("https://LOCALHOST./x", "not a public host name"),
        ("https://api.localhost/x", "not a public host name"),
        ("https://nas.local/x", "not a public host name"),
        ("https://db.internal/x", "not a public host name"),
        ("https://router.home.arpa/x", "not a public host name"),
        ("https://intranet/x", "not a public host name"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://[fd00::5]/x", "private"),
    ],
)
def test_url_problem_names_what_is_wrong(url: str, problem: str) -> None:
    found = url_problem(url)
    assert found is not None
    assert problem in found


def test_url_problem_with_allowed_hosts_admits_them_and_their_subdomains_only() -> None:
    allowed = ("fcm.googleapis.com", "push.services.mozilla.com")
    assert url_problem("https://fcm.googleapis.com/fcm/send/x", allowed_hosts=allowed) is None
    assert (
        url_problem("https://updates.push.services.mozilla.com/wpush/v2/x", allowed_hosts=allowed)
        is None
    )
    refused = url_problem("https://evilfcm.googleapis.com.example.net/x", allowed_hosts=allowed)
    assert refused is not None
    assert "not one of the push services allowed here" in refused
    assert url_problem("https://notfcm.googleapis.com/x", allowed_hosts=allowed) is not None


@given(st.text(max_size=120))
def test_url_problem_of_any_text_is_a_message_or_none(text: str) -> None:
    found = url_problem(text)
    assert found is None or isinstance(found, str)
    if found is None:
        assert text.startswith("https://")


async def test_resolved_problem_refuses_a_name_with_any_private_address() -> None:
    async def resolve(host: str, _port: int) -> list[str]:
        return {"mixed.example.net": ["93.184.215.14", "10.0.0.1"]}.get(host, ["93.184.215.14"])

    found = await resolved_problem("https://mixed.example.net/x", resolve)
    assert found == '"mixed.example.net" resolves to a private address'
    assert await resolved_problem("https://push.example.net/x", resolve) is None


async def test_resolved_problem_when_the_resolver_is_down_raises_timeout() -> None:
    async def resolve(_host: str, _port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(TimeoutError):
        await resolved_problem("https://push.example.net/x", resolve)


def test_public_socket_refuses_a_private_address_and_makes_a_public_one() -> None:
    with pytest.raises(PrivateAddressError, match=r"127\.0\.0\.1 is a loopback address"):
        public_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443)))
    made = public_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 443)))
    try:
        assert made.family == socket.AF_INET
    finally:
        made.close()
