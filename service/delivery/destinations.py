"""Where the service may connect for a URL someone else gave it: public hosts only.

A Web Push endpoint comes from a browser, that is from anyone who calls the
public subscribe API; the service then connects to it on every alert. Left
unchecked, that lets a stranger make the server reach hosts only it can
reach (its loopback, the private network, a cloud metadata address): a
server-side request forgery. Every such URL, now the Web Push endpoint and
any a subscriber supplies later, goes through three checks:

1. at sign-up, :func:`url_problem`: https, a host name that is not a local
   one (``localhost``, ``*.local``, one label…) or a public IP literal, and
   the operator's allow-list of hosts when there is one;
2. at sign-up too, :func:`resolved_problem`: every address the name resolves
   to is public;
3. at every send, :func:`public_socket`, the socket factory of the HTTP
   client: the address it is about to connect to, after the resolution that
   counts and after any redirect, is public. This is what defeats DNS
   rebinding (a name that resolved to a public address at sign-up and to
   127.0.0.1 now).

*Public* means a global unicast address: not loopback, private, link-local,
shared (100.64/10), reserved, multicast or unspecified, and not one of those
hidden in an IPv6 form (IPv4-mapped, 6to4, Teredo, NAT64).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from service.text import quote

# Names that only ever mean this machine or its own network.
LOCAL_NAMES = ("localhost", "localdomain", "local", "internal", "lan", "intranet", "home.arpa")
RESOLVE_TIMEOUT_S = 5.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def redact_url(url: str) -> str:
    """``scheme://host`` of a URL: push and webhook URLs may carry tokens in every other part."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


Resolve = Callable[[str, int], Awaitable[list[str]]]


class PrivateAddressError(OSError):
    """The HTTP client was about to connect to an address that is not public."""


def address_problem(text: str) -> str | None:
    """Why the IP address ``text`` is not public (``None``: it is)."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return f"{quote(text[:60])} is not an IP address"
    for inner in _embedded(address):
        problem = address_problem(str(inner))
        if problem is not None:
            return problem
    if address.is_loopback:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if address.is_unspecified or address.is_reserved:
        return f"{address} is a reserved address"
    if address.is_private or not address.is_global:
        return f"{address} is a private address"
    return None


def _embedded(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> list[ipaddress.IPv4Address]:
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour]
    if address.teredo is not None:
        found += list(address.teredo)
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [inner for inner in found if inner is not None]


def url_problem(url: str, *, allowed_hosts: Sequence[str] = ()) -> str | None:
    """Why the service must not connect to ``url`` (``None``: it may, if its name resolves well).

    ``allowed_hosts`` (empty: any public host) lists host names; each admits
    itself and its subdomains (``push.services.mozilla.com`` admits
    ``updates.push.services.mozilla.com``).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "expected an https URL"
    if parts.scheme != "https" or not host:
        return "expected an https URL"
    if parts.username is not None or parts.password is not None:
        return "expected no user or password in the URL"
    host = host.rstrip(".").lower()
    if _is_ip(host):
        problem = address_problem(host)
        if problem is not None:
            return f"{problem}; push endpoints must be public"
    elif "." not in host or any(host == n or host.endswith("." + n) for n in LOCAL_NAMES):
        return f"{quote(host[:60])} is not a public host name"
    if allowed_hosts and not any(
        host == allowed or host.endswith("." + allowed.lstrip(".")) for allowed in allowed_hosts
    ):
        return f"{quote(host[:60])} is not one of the push services allowed here"
    return None


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, with the system's resolver."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def resolved_problem(url: str, resolve: Resolve = system_resolve) -> str | None:
    """Why ``url``'s host resolves to somewhere the service must not connect (``None``: fine).

    A name that does not resolve is a problem too; :class:`TimeoutError`
    means the resolver did not answer (try again later).
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if _is_ip(host):
        return None  # url_problem judged it
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_S):
            addresses = await resolve(host, parts.port or 443)
    except socket.gaierror as error:
        if error.errno == socket.EAI_AGAIN:
            raise TimeoutError(f"resolving {host} failed for now") from None
        return f"{quote(host[:60])} does not resolve"
    if not addresses:
        return f"{quote(host[:60])} does not resolve"
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            return f"{quote(host[:60])} resolves to {problem.split(' is ', 1)[1]}"
    return None


def public_socket(addr_info: tuple[int, int, int, str, tuple[object, ...]]) -> socket.socket:
    """The socket for ``addr_info``'s address, if it is public: an aiohttp socket factory.

    Otherwise :class:`PrivateAddressError`, which the HTTP client reports as
    a connection error: nothing is sent.
    """
    family, kind, protocol, _, address = addr_info
    problem = address_problem(str(address[0]))
    if problem is not None:
        raise PrivateAddressError(errno.EACCES, f"refused to connect: {problem}")
    return socket.socket(family=family, type=kind, proto=protocol)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
