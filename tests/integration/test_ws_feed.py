"""The websocket feed source against a real ``websockets`` server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
import structlog
from websockets.asyncio.server import Server, ServerConnection, serve

from service.models import Tick
from service.streams.queue import TickQueue
from service.streams.rejections import Rejections
from service.streams.settings import FieldMap, WebsocketSourceConfig
from service.streams.ws_feed import WebsocketFeedSource
from service.timestamps import parse_timestamp
from tests.helpers import eventually, take

VENDOR_FIELDS = FieldMap(symbol="s", price="p", ts="T", volume="q", match=(("e", "trade"),))
SUBSCRIBE = '{"method": "SUBSCRIBE", "params": ["iwm@trade"], "id": 1}'

Script = Callable[[ServerConnection, int], Coroutine[Any, Any, None]]


def trade(price: float, second: int, symbol: str = "IWM") -> str:
    ms = parse_timestamp("2026-02-02T14:30:00Z") // 1_000_000 + second * 1000
    return json.dumps({"e": "trade", "s": symbol, "p": f"{price:.2f}", "T": ms, "q": "100"})


class Feed:
    """A vendor-like feed: each connection waits for a subscribe, then runs ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.subscribes: list[str] = []
        self.connections = 0
        self.server: Server | None = None

    async def handler(self, connection: ServerConnection) -> None:
        self.connections += 1
        self.subscribes.append(str(await connection.recv()))
        await connection.send('{"result": null, "id": 1}')  # a reply, not a tick
        await self.script(connection, self.connections)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/stream"


@pytest.fixture
async def feed_server() -> AsyncIterator[Callable[[Script], Coroutine[Any, Any, Feed]]]:
    started: list[Feed] = []

    async def start(script: Script) -> Feed:
        feed = Feed(script)
        feed.server = await serve(feed.handler, "127.0.0.1", 0, close_timeout=0.5)
        started.append(feed)
        return feed

    yield start
    for feed in started:
        assert feed.server is not None
        feed.server.close()
        await feed.server.wait_closed()


def source_for(feed: Feed, rejections: Rejections, **settings: Any) -> WebsocketFeedSource:
    options: dict[str, Any] = {
        "name": "vendor",
        "url": feed.url,
        "subscribe": SUBSCRIBE,
        "fields": VENDOR_FIELDS,
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        **settings,
    }
    return WebsocketFeedSource(WebsocketSourceConfig(**options), rejections)


async def collect(source: WebsocketFeedSource, count: int, *, within: float = 10.0) -> list[Tick]:
    """Run ``source`` until it has put ``count`` ticks; return them."""
    queue = TickQueue(1_000)
    reader = asyncio.create_task(source.run(queue))
    try:
        async with asyncio.timeout(within):
            return await take(queue, count)
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def hold(connection: ServerConnection) -> None:
    """Keep the connection open until the test ends it."""
    await connection.wait_closed()


async def test_feed_reads_vendor_fields_and_counts_bad_messages(feed_server: Any) -> None:
    async def script(connection: ServerConnection, _number: int) -> None:
        await connection.send(trade(256.10, 0))
        await connection.send("not json")
        await connection.send('{"e": "kline", "s": "IWM"}')  # another stream: ignored
        await connection.send('{"e": "trade", "s": "IWM", "p": "NaN", "T": 1770042601000}')
        await connection.send(trade(254.60, 2).encode())  # binary frames are read too
        await hold(connection)

    feed = await feed_server(script)
    rejections = Rejections()
    source = source_for(feed, rejections)
    ticks = await collect(source, 2)
    assert [(t.symbol, t.price, t.volume) for t in ticks] == [
        ("IWM", 256.10, 100.0),
        ("IWM", 254.60, 100.0),
    ]
    assert ticks[1].at == "2026-02-02T14:30:02.000Z"
    assert feed.subscribes == [SUBSCRIBE]
    assert source.received == 6
    assert dict(rejections.counts) == {"not_json": 1, "price_not_finite": 1}


async def test_feed_closed_by_the_server_reconnects_and_subscribes_again(
    feed_server: Any,
) -> None:
    async def script(connection: ServerConnection, number: int) -> None:
        await connection.send(trade(256.0 - number, number * 10))
        await connection.send(trade(256.5 - number, number * 10 + 1))
        if number == 1:
            await connection.close(1001, "going away")
        else:
            await hold(connection)

    feed = await feed_server(script)
    source = source_for(feed, Rejections())
    with structlog.testing.capture_logs() as logs:
        ticks = await collect(source, 4)
    assert [t.price for t in ticks] == [255.0, 255.5, 254.0, 254.5]
    assert feed.subscribes == [SUBSCRIBE, SUBSCRIBE]
    assert source.connections == 2
    [lost] = [e for e in logs if e["event"] == "feed_disconnected"]
    assert lost["error"] == "closed by the feed with code 1001 'going away'"


async def test_feed_that_stops_answering_pings_is_dropped_and_reconnected(
    feed_server: Any,
) -> None:
    async def script(connection: ServerConnection, number: int) -> None:
        await connection.send(trade(256.0, number))
        if number == 1:
            # The server hangs: it reads nothing more, so pings go unanswered.
            connection.transport.pause_reading()
        await hold(connection)

    feed = await feed_server(script)
    source = source_for(feed, Rejections(), ping_interval_seconds=0.2, ping_timeout_seconds=0.2)
    with structlog.testing.capture_logs() as logs:
        ticks = await collect(source, 2)
    assert [t.at for t in ticks] == ["2026-02-02T14:30:01.000Z", "2026-02-02T14:30:02.000Z"]
    assert source.connections == 2
    [lost] = [e for e in logs if e["event"] == "feed_disconnected"]
    assert "no close frame" in lost["error"]


async def test_feed_unreachable_is_logged_once_and_retried() -> None:
    rejections = Rejections()
    config = WebsocketSourceConfig(
        name="vendor",
        url="ws://127.0.0.1:9/nothing-listens-here",
        reconnect_initial_seconds=0.02,
        reconnect_max_seconds=0.05,
    )
    source = WebsocketFeedSource(config, rejections)
    reader = asyncio.create_task(source.run(TickQueue(10)))
    with structlog.testing.capture_logs() as logs:
        await eventually(lambda: sum(e["event"] == "feed_retry" for e in logs) >= 3)
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["feed_unreachable"]
    assert not source.connected
