"""An engine shard's prices, for the dashboards of a cluster: published to the broker.

In one process the hub takes the engine's ticks directly. In a cluster the
dashboards are on gateways, so each engine publishes, ``[cluster] prices_hz``
times a second, the last tick of each of its symbols that traded since the
last time: one QoS 0 message on ``<prices_topic>/<shard>`` (a price is a
sample; the next one replaces it). Gateways subscribe to all of them
(:mod:`service.streams.price_feed`). Nothing here is needed for alerts, so a
broker that is away costs dashboards their prices, nothing else.

The message: ``{"ticks": [[symbol, price, "2026-02-02T14:30:14.000Z", volume or null], …]}``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence

import aiomqtt

from service.models import Tick
from service.mqtt_common import Broker
from service.processing.batch import Batch
from service.reconnect import Link, reconnecting
from service.timestamps import format_timestamp


def encode_prices(ticks: Sequence[Tick]) -> bytes:
    """One message of the last ticks of some symbols."""
    return json.dumps(
        {"ticks": [[t.symbol, t.price, format_timestamp(t.ts_ns), t.volume] for t in ticks]},
        separators=(",", ":"),
    ).encode()


class PriceRelay:
    """Keeps each symbol's last tick (a stage after the engine); :meth:`run` publishes them."""

    def __init__(self, broker: Broker, topic: str, *, hz: float, shard: str) -> None:
        self.broker = broker
        self.topic = f"{topic}/{shard.replace('/', 'of') or 'all'}"
        self.every_s = 1.0 / hz
        self.link = Link.for_source(broker, prefix="price_relay")
        self._last: dict[str, Tick] = {}
        self.published = 0  # messages
        self.dropped = 0  # flushes with the broker away

    def __call__(self, batch: Batch) -> Batch:
        """The stage: each symbol's newest tick of the batch (ticks come in time order)."""
        last = self._last
        for tick in batch.ticks:
            last[tick.symbol] = tick
        return batch

    def take(self) -> bytes | None:
        """The message of what traded since the last take (``None``: nothing did)."""
        if not self._last:
            return None
        ticks, self._last = list(self._last.values()), {}
        return encode_prices(ticks)

    async def run(self) -> None:
        """Connect, then publish every ``1 / hz`` s, until cancelled."""
        identifier = f"{self.broker.client_id}-prices-{os.getpid()}"[:64]

        async def session() -> None:
            async with self.broker.client(identifier) as client:
                self.link.up(topic=self.topic, qos=0)
                while True:
                    await asyncio.sleep(self.every_s)
                    message = self.take()
                    if message is not None:
                        await client.publish(self.topic, message, qos=0)
                        self.published += 1

        await reconnecting(self.link, session, retry_on=(aiomqtt.MqttError,))
