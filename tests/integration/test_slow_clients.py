"""Slow, idle and greedy clients against the real HTTP server and websocket hub.

Each test runs the service with short timeouts and small caps, on 127.0.0.1,
and talks to it over raw sockets, as an attacker's script would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.integration.http_service import Service, http_config, http_service

SLOW_SOCKETS = 40


def limits(
    *, idle_s: float = 1.0, per_client: int = 0, open_s: float = 1.0, subscribe_s: float = 60.0
) -> tuple[str, str]:
    """The [http] and [websocket] settings of these tests, inserted in http_config's tables."""
    return (
        f"idle_timeout_seconds = {idle_s}\nbody_timeout_seconds = {idle_s}\n"
        f"max_connections_per_client = {per_client}\n"
    ), (
        f"open_timeout_seconds = {open_s}\nsubscribe_timeout_seconds = {subscribe_s}\n"
        f"max_connections_per_client = {per_client}\n"
    )


@contextlib.asynccontextmanager
async def service_with(tmp_path: Path, **settings: float) -> AsyncIterator[Service]:
    http, hub = limits(**settings)  # type: ignore[arg-type]  # per_client is an int
    config = http_config(tmp_path, sources="")
    config = config.replace("[http]\nport = 0\n", f"[http]\nport = 0\n{http}", 1)
    config = config.replace("[websocket]\nport = 0\n", f"[websocket]\nport = 0\n{hub}", 1)
    async with http_service(config) as service:
        yield service


def ports(service: Service) -> tuple[int, int]:
    assert service.app.http is not None
    assert service.app.hub is not None
    assert service.app.http.port is not None
    assert service.app.hub.port is not None
    return service.app.http.port, service.app.hub.port


async def trickle(port: int, request: bytes, *, every_s: float, within_s: float) -> float:
    """Send ``request`` a byte at a time; return how long the server kept the socket open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        for byte in request:
            writer.write(bytes([byte]))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(1024), every_s)
            except TimeoutError:
                continue  # still open, still waiting: one more byte
            if not data or b" 408 " in data or b"HTTP/1.1 4" in data:
                break  # closed, or refused and about to be
            if time.monotonic() - started > within_s:
                break
        return time.monotonic() - started
    finally:
        writer.close()


HEAD = b"GET /api/v1/levels HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 200 + b"\r\n\r\n"
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"X-Padding: " + b"a" * 200 + b"\r\n\r\n"
)


async def test_slow_header_senders_are_cut_off_on_both_servers(tmp_path: Path) -> None:
    async with service_with(tmp_path, idle_s=1.0, open_s=1.0) as service:
        http_port, hub_port = ports(service)
        held = await asyncio.gather(
            *(trickle(http_port, HEAD, every_s=0.25, within_s=20) for _ in range(SLOW_SOCKETS)),
            *(trickle(hub_port, UPGRADE, every_s=0.25, within_s=20) for _ in range(SLOW_SOCKETS)),
        )
        # Every one of the 80 sockets was closed by the server, about its timeout after
        # opening, long before its request could have been complete (80 s at 4 bytes/s).
        assert max(held) < 1.0 + 2.0, sorted(held)[-5:]
        status, _, _ = await service.get("/api/v1/levels")
        assert status == 200  # and the service answers its other clients


async def test_an_idle_keep_alive_connection_is_closed_after_the_idle_timeout(
    tmp_path: Path,
) -> None:
    async with service_with(tmp_path, idle_s=1.0) as service:
        http_port, _ = ports(service)
        reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        await asyncio.wait_for(reader.readexactly(length), 5)
        answered = time.monotonic()
        # Kept alive, then closed by the server: EOF, about the idle timeout later.
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert 0.5 < time.monotonic() - answered < 1.0 + 2.0
        writer.close()


async def test_a_slow_request_body_is_answered_408(tmp_path: Path) -> None:
    async with service_with(tmp_path, idle_s=1.0) as service:
        http_port, _ = ports(service)
        reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
        writer.write(
            b"POST /api/v1/subscribers HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        answer = await asyncio.wait_for(reader.read(4096), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"did not arrive within 1 s" in answer


async def fill(port: int, count: int) -> list[asyncio.StreamWriter]:
    """``count`` open, silent connections to ``port``."""
    return [(await asyncio.open_connection("127.0.0.1", port))[1] for _ in range(count)]


async def refusal(port: int) -> bytes:
    """What the server says to one connection more, until it closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def free_one(held: list[asyncio.StreamWriter]) -> None:
    writer = held.pop()
    writer.close()
    await writer.wait_closed()


async def test_http_connections_per_client_address_are_capped(tmp_path: Path) -> None:
    cap = 8
    async with service_with(tmp_path, idle_s=30.0, per_client=cap) as service:
        http_port, _ = ports(service)
        held = await fill(http_port, cap)
        answer = await refusal(http_port)
        assert answer.startswith(b"HTTP/1.1 429 Too Many Requests")
        assert b"too many connections from your address" in answer
        await free_one(held)
        async with aiohttp.ClientSession() as client:

            async def healthz() -> int:
                async with client.get(f"http://127.0.0.1:{http_port}/healthz") as response:
                    return response.status

            assert await until_connected(healthz) == 200  # the freed slot takes a real client
        for writer in held:
            writer.close()
        assert service.app.http is not None
        assert service.app.http.connections.refused == 1


async def test_hub_connections_per_client_address_are_capped(tmp_path: Path) -> None:
    cap = 8
    async with service_with(tmp_path, open_s=30.0, per_client=cap) as service:
        _, hub_port = ports(service)
        held = await fill(hub_port, cap)
        answer = await refusal(hub_port)
        assert answer.startswith(b"HTTP/1.1 429 Too Many Requests")
        await free_one(held)
        async with connect(f"ws://127.0.0.1:{hub_port}", open_timeout=5) as dashboard:
            await dashboard.send('{"op": "subscribe", "symbols": ["*"]}')
            assert '"subscribed"' in str(await asyncio.wait_for(dashboard.recv(), 5))
        for writer in held:
            writer.close()
        assert service.app.hub is not None
        assert service.app.hub.connections.refused == 1


async def until_connected(read: Callable[[], Awaitable[int]], *, within: float = 5.0) -> int:
    """``await read()`` until it connects: a freed slot counts once the server saw the close."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await read()
        except aiohttp.ClientError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_dashboard_that_never_subscribes_is_closed_one_that_does_stays(
    tmp_path: Path,
) -> None:
    async with service_with(tmp_path, subscribe_s=1.0) as service:
        _, hub_port = ports(service)
        async with (
            connect(f"ws://127.0.0.1:{hub_port}") as idle,
            connect(f"ws://127.0.0.1:{hub_port}") as dashboard,
        ):
            await dashboard.send('{"op": "subscribe", "symbols": ["IWM"]}')
            assert '"subscribed"' in str(await asyncio.wait_for(dashboard.recv(), 5))
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(idle.recv(), 5)
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                1008,
                "subscribe within 1 s",
            )
            assert time.monotonic() - started < 1.0 + 2.0
            await dashboard.ping()  # still connected
        assert service.app.hub is not None
        assert service.app.hub.snapshot().idle_disconnects == 1
