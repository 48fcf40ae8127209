"""What the HTTP channels (webhook, Web Push) share: one client session each, safe errors."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import aiohttp

# What aiohttp's TCPConnector calls to make each socket, given the address it connects to.
SocketFactory = Callable[[Any], socket.socket]


class HttpSession:
    """One aiohttp session for a sender: opened on first use (inside the loop), closed at stop.

    With ``socket_factory`` every connection's socket is made by it, from the
    address about to be connected to (see :func:`~service.delivery.destinations.public_socket`).
    """

    def __init__(
        self, timeout_seconds: float, *, socket_factory: SocketFactory | None = None
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._socket_factory = socket_factory
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(socket_factory=self._socket_factory)
            self._session = aiohttp.ClientSession(timeout=self._timeout, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
