"""Websocket feed source: an exchange's or vendor's JSON stream, read with ``websockets``.

After connecting, the optional ``subscribe`` message is sent; every text or
binary frame is then decoded as JSON and read by the source's field map (see
:mod:`service.streams.fields`). The link is checked with pings: a server that
stops answering within ``ping_timeout_seconds`` is treated as gone. Any end of
the connection, clean or not, is followed by a reconnect after a capped,
jittered backoff, and the subscribe message is sent again.

Backpressure is the library's: while the engine's queue is full this reader
waits, websockets stops reading the socket once ``max_queue`` frames are
buffered, and TCP slows the sender.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException

from service.errors import TickError
from service.reconnect import Link, reconnecting
from service.streams.decode import check_not_ahead, decode_json
from service.streams.fields import ticks_from_message
from service.streams.queue import TickSink
from service.streams.rejections import Rejections
from service.streams.settings import WebsocketSourceConfig
from service.streams.source import SourceSnapshot, SourceState
from service.timestamps import seconds_to_ns

CLOSE_TIMEOUT_S = 2.0


class _FeedClosedError(Exception):
    """The feed ended the connection without an error (caught by the reconnect loop)."""


class WebsocketFeedSource:
    """A ``[[sources]] kind = "websocket"``: ticks from a websocket feed."""

    def __init__(
        self,
        config: WebsocketSourceConfig,
        rejections: Rejections,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.name = config.name
        self.description = config.describe()
        self._rejections = rejections
        self._clock_ns = clock_ns
        self.received = 0  # messages read
        self.accepted = 0  # ticks put into the queue
        self.link = Link.for_source(config, prefix="feed")

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def state(self) -> SourceState:
        return self.link.state

    def snapshot(self) -> SourceSnapshot:
        return SourceSnapshot(
            name=self.name,
            state=self.state,
            accepted=self.accepted,
            received=self.received,
            connections=self.connections,
        )

    @property
    def connections(self) -> int:
        return self.link.connections

    async def run(self, queue: TickSink) -> None:
        """Consume ticks into ``queue`` until cancelled, reconnecting whenever the link ends."""

        async def session() -> None:
            async with self._connect() as connection:
                if self.config.subscribe is not None:
                    await connection.send(self.config.subscribe)
                self.link.up()
                await self._consume(connection, queue)
                code, reason = connection.close_code, connection.close_reason
            raise _FeedClosedError(f"closed by the feed with code {code} {reason!r}")

        await reconnecting(
            self.link,
            session,
            retry_on=(OSError, TimeoutError, WebSocketException, _FeedClosedError),
            describe=_describe,
        )

    def _connect(self) -> connect:
        config = self.config
        return connect(
            config.url,
            additional_headers=list(config.headers) or None,
            open_timeout=config.open_timeout_seconds,
            ping_interval=config.ping_interval_seconds,
            ping_timeout=config.ping_timeout_seconds,
            close_timeout=CLOSE_TIMEOUT_S,
            max_size=config.max_message_bytes,
        )

    async def _consume(self, connection: ClientConnection, queue: TickSink) -> None:
        fields = self.config.fields
        max_ahead_ns = seconds_to_ns(self.config.max_future_seconds)
        async for frame in connection:
            self.received += 1
            where = f"message {self.received}"
            try:
                message = decode_json(frame, what="message")
            except TickError as error:
                self._rejections.record(error, source=self.name, where=where)
                continue
            received_ns = self._clock_ns()
            for item in ticks_from_message(message, fields):
                try:
                    if isinstance(item, TickError):
                        raise item
                    tick = check_not_ahead(item, received_ns=received_ns, max_ahead_ns=max_ahead_ns)
                except TickError as error:
                    self._rejections.record(error, source=self.name, where=where)
                    continue
                await queue.put(tick, self.name)
                self.accepted += 1


def _describe(error: BaseException) -> str:
    if isinstance(error, ConnectionClosed):
        received = error.rcvd
        if received is None:
            return "connection lost (no close frame; the peer stopped answering or went away)"
        return f"closed by the feed with code {received.code} {received.reason!r}".rstrip()
    if isinstance(error, InvalidHandshake):
        return f"handshake refused: {error}"
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
