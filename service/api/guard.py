"""The HTTP server's accept-time guard: one address holds at most so many connections.

aiohttp's request handler is an asyncio protocol; :class:`GuardedProtocol`
stands in front of one, so that a connection over the cap is answered 429 and
closed before aiohttp parses a byte of it, and so that the count is released
whenever a connection ends, however it ends.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import structlog

from service.connection_limit import ConnectionLimit, peer_address

log = structlog.get_logger("service.api")

_BODY = json.dumps(
    {"error": "too many connections from your address; close some, or try again later"}
).encode()
REFUSAL = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Retry-After: 10\r\nConnection: close\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)


class GuardedProtocol(asyncio.Protocol):
    """A protocol that admits its connection through ``limit``, then hands it to ``inner()``."""

    def __init__(self, limit: ConnectionLimit, inner: Callable[[], asyncio.Protocol]) -> None:
        self._limit = limit
        self._make_inner = inner
        self._inner: asyncio.Protocol | None = None
        self._address = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        address = peer_address(transport.get_extra_info("peername"))
        if not self._limit.admit(address):
            if self._limit.refused == 1 or self._limit.refused % 1000 == 0:
                log.warning(
                    "http_connections_refused",
                    client=address,
                    per_client=self._limit.per_client,
                    refused=self._limit.refused,
                )
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(REFUSAL)
            transport.close()
            return
        self._address = address
        self._inner = self._make_inner()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return None if self._inner is None else self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._limit.release(self._address)
            self._inner.connection_lost(exc)
            self._inner = None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def guarded(limit: ConnectionLimit, factory: Callable[[], Any]) -> Callable[[], GuardedProtocol]:
    """The protocol factory for ``loop.create_server``: ``factory``'s protocols, guarded."""
    return lambda: GuardedProtocol(limit, factory)
