"""The segments the engine shards publish (:mod:`service.delivery.price_relay`), for a
gateway's dashboards and the API's charts.

A gateway or the API runs no engine: their prices and bars come from the
engines through the broker. They subscribe to ``<prices_topic>/#`` with QoS 0
and a clean session (what was missed while away is not sent again: a chart is
a view, not a record), check each segment as a tick source checks a tick,
and hand them on. A message that is not a list of segments is rejected whole
and counted; a bad segment in it, alone.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiomqtt

from service.errors import TickError
from service.models import Tick
from service.mqtt_common import Broker
from service.reconnect import Link, reconnecting
from service.streams.decode import MAX_PRICE, make_tick
from service.streams.rejections import Rejections

# A message of more than this is refused unread.
MAX_PRICES_BYTES = 4 * 1024 * 1024
SOURCE = "prices"
FIELDS = "[symbol, first_ns, open, high, low, last_ns, close, volume]"


@dataclass(frozen=True, slots=True)
class Segment:
    """What a symbol did within one bucket of time: its ticks' open, high, low, close, volume."""

    symbol: str
    first_ns: int
    open: float
    high: float
    low: float
    last_ns: int
    close: float
    volume: float

    def last(self) -> Tick:
        """The segment's last tick: a dashboard's price."""
        return Tick(symbol=self.symbol, price=self.close, ts_ns=self.last_ns, volume=self.volume)

    def ticks(self) -> list[Tick]:
        """Ticks that make the same bars as the segment's own: open, high, low, then close."""
        at, symbol = self.first_ns, self.symbol
        return [
            Tick(symbol=symbol, price=self.open, ts_ns=at, volume=0.0),
            Tick(symbol=symbol, price=self.high, ts_ns=at, volume=0.0),
            Tick(symbol=symbol, price=self.low, ts_ns=at, volume=0.0),
            self.last(),
        ]


class PricesError(ValueError):
    """A message that is not ``{"segments": [[symbol, first_ns, …], …]}``."""


def decode_prices(payload: bytes) -> tuple[list[Segment], list[TickError]]:
    """The segments of one message, and why any of them was refused; raises PricesError."""
    if len(payload) > MAX_PRICES_BYTES:
        raise PricesError(f"{len(payload)} bytes, more than {MAX_PRICES_BYTES}")
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise PricesError(f"not JSON: {error}") from None
    rows = message.get("segments") if isinstance(message, dict) else None
    if not isinstance(rows, list):
        raise PricesError(f'expected {{"segments": [{FIELDS}, ...]}}')
    segments: list[Segment] = []
    errors: list[TickError] = []
    for row in rows:
        try:
            segments.append(_segment(row))
        except TickError as error:
            errors.append(error)
    return segments, errors


def _segment(row: object) -> Segment:
    if not isinstance(row, list) or len(row) != 8:
        raise TickError("malformed", f"expected {FIELDS}")
    symbol, first_ns, open_, high, low, last_ns, close, volume = row
    if not all(type(ns) is int for ns in (first_ns, last_ns)) or not 0 < first_ns <= last_ns:
        raise TickError("bad_ts", f"{symbol}: expected first_ns <= last_ns, in nanoseconds")
    # The symbol, the close, the time and the volume as any tick's; then the rest.
    last = make_tick(symbol=symbol, price=close, ts=last_ns / 1e9, volume=volume)
    prices = (open_, high, low)
    if not all(type(p) in (int, float) and math.isfinite(p) and 0 < p <= MAX_PRICE for p in prices):
        raise TickError("bad_price", f"{last.symbol}: open, high and low must be prices")
    if not low <= min(open_, last.price) <= max(open_, last.price) <= high:
        raise TickError("bad_price", f"{last.symbol}: expected low <= open, close <= high")
    return Segment(
        symbol=last.symbol,
        first_ns=first_ns,
        open=float(open_),
        high=float(high),
        low=float(low),
        last_ns=last_ns,
        close=last.price,
        volume=last.volume or 0.0,
    )


class PriceFeed:
    """Subscribed to the engines' segments until cancelled; each message's to ``on_segments``."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        on_segments: Callable[[Sequence[Segment]], None],
        rejections: Rejections,
    ) -> None:
        self.broker = broker
        self.topic = f"{topic}/#"
        self.on_segments = on_segments
        self.rejections = rejections
        self.link = Link.for_source(broker, prefix="price_feed")
        self.messages = 0
        self.refused = 0

    def receive(self, topic: str, payload: bytes) -> None:
        self.messages += 1
        try:
            segments, errors = decode_prices(payload)
        except PricesError as refused:
            self.refused += 1
            self.rejections.record(
                TickError("bad_prices_message", str(refused)), source=SOURCE, where=topic
            )
            return
        for error in errors:
            self.rejections.record(error, source=SOURCE, where=topic)
        if segments:
            self.on_segments(segments)

    async def run(self) -> None:
        identifier = f"{self.broker.client_id}-follower-{os.getpid()}"[:64]

        async def session() -> None:
            async with self.broker.client(identifier) as client:
                await client.subscribe(self.topic, qos=0)
                self.link.up(topic=self.topic, qos=0)
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes | bytearray):
                        self.receive(str(message.topic), bytes(payload))

        await reconnecting(self.link, session, retry_on=(aiomqtt.MqttError,))
