"""The prices the engine shards publish (:mod:`service.delivery.price_relay`), for a gateway.

A gateway runs no engine: its dashboards get prices from the engines through
the broker. It subscribes to ``<prices_topic>/#`` with QoS 0 and a clean
session (a price missed while away is replaced by the next one), checks each
tick as a tick source does, and hands them to the hub. A message that is not
a list of ticks is rejected whole and counted; a bad tick in it, alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence

import aiomqtt

from service.errors import TickError
from service.models import Tick
from service.mqtt_common import Broker
from service.reconnect import Link, reconnecting
from service.streams.decode import make_tick
from service.streams.rejections import Rejections

# A message of more than this is refused unread: a shard has at most this many symbols' worth.
MAX_PRICES_BYTES = 4 * 1024 * 1024
SOURCE = "prices"


class PricesError(ValueError):
    """A message that is not ``{"ticks": [[symbol, price, ts, volume], …]}``."""


def decode_prices(payload: bytes) -> tuple[list[Tick], list[TickError]]:
    """The ticks of one message, and why any of them was refused; raises PricesError."""
    if len(payload) > MAX_PRICES_BYTES:
        raise PricesError(f"{len(payload)} bytes, more than {MAX_PRICES_BYTES}")
    try:
        message = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as error:
        raise PricesError(f"not JSON: {error}") from None
    rows = message.get("ticks") if isinstance(message, dict) else None
    if not isinstance(rows, list):
        raise PricesError('expected {"ticks": [[symbol, price, ts, volume], ...]}')
    ticks: list[Tick] = []
    errors: list[TickError] = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            errors.append(TickError("malformed", "expected [symbol, price, ts, volume]"))
            continue
        symbol, price, ts, volume = row
        try:
            ticks.append(make_tick(symbol=symbol, price=price, ts=ts, volume=volume))
        except TickError as error:
            errors.append(error)
    return ticks, errors


class PriceFeed:
    """Subscribed to the engines' prices until cancelled; each message's ticks to ``on_ticks``."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        on_ticks: Callable[[Sequence[Tick]], None],
        rejections: Rejections,
    ) -> None:
        self.broker = broker
        self.topic = f"{topic}/#"
        self.on_ticks = on_ticks
        self.rejections = rejections
        self.link = Link.for_source(broker, prefix="price_feed")
        self.messages = 0
        self.refused = 0

    def receive(self, topic: str, payload: bytes) -> None:
        self.messages += 1
        try:
            ticks, errors = decode_prices(payload)
        except PricesError as refused:
            self.refused += 1
            self.rejections.record(
                TickError("bad_prices_message", str(refused)), source=SOURCE, where=topic
            )
            return
        for error in errors:
            self.rejections.record(error, source=SOURCE, where=topic)
        if ticks:
            self.on_ticks(ticks)

    async def run(self) -> None:
        identifier = f"{self.broker.client_id}-gateway-{os.getpid()}"[:64]

        async def session() -> None:
            async with self.broker.client(identifier) as client:
                await client.subscribe(self.topic, qos=0)
                self.link.up(topic=self.topic, qos=0)
                async for message in client.messages:
                    payload = message.payload
                    if isinstance(payload, bytes | bytearray):
                        self.receive(str(message.topic), bytes(payload))

        await reconnecting(self.link, session, retry_on=(aiomqtt.MqttError,))
