"""An engine shard's prices, for the dashboards and charts of a cluster: through the broker.

In one process the hub and the chart history take the engine's ticks
directly. In a cluster the dashboards are on gateways and the charts on the
API, so each engine publishes, ``[cluster] prices_hz`` times a second, what
its symbols did since the last time, as **segments**: per symbol, the open,
high, low, close and volume of its ticks within one bucket of time (the
shortest chart interval, 1 s by default), never across two. One QoS 0
message on ``<prices_topic>/<shard>``; gateways and the API subscribe to all
of them (:mod:`service.streams.price_feed`). A segment adds to a bar as its
ticks would, so bars of any interval that buckets divide are rebuilt exactly
(unless the broker drops a QoS 0 message: a chart is a view, not a record).
Nothing here is needed for alerts: a broker that is away costs dashboards
their prices, nothing else.

The message: ``{"segments": [[symbol, first_ns, open, high, low, last_ns, close, volume], …]}``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence

import aiomqtt

from service.mqtt_common import Broker
from service.processing.batch import Batch
from service.reconnect import Link, reconnecting
from service.timestamps import NS_PER_SECOND

# A segment: symbol, first_ns, open, high, low, last_ns, close, volume.
SegmentRow = tuple[str, int, float, float, float, int, float, float]


def encode_segments(rows: Sequence[SegmentRow]) -> bytes:
    """One message of segments."""
    return json.dumps({"segments": rows}, separators=(",", ":")).encode()


class PriceRelay:
    """Gathers each symbol's segments (a stage after the engine); :meth:`run` publishes them."""

    def __init__(
        self,
        broker: Broker,
        topic: str,
        *,
        hz: float,
        shard: str,
        bucket_ns: int = NS_PER_SECOND,
    ) -> None:
        self.broker = broker
        self.topic = f"{topic}/{shard.replace('/', 'of') or 'all'}"
        self.every_s = 1.0 / hz
        self.bucket_ns = bucket_ns
        self.link = Link.for_source(broker, prefix="price_relay")
        # symbol -> [first_ns, open, high, low, last_ns, close, volume] of its open segment
        self._open: dict[str, list[float]] = {}
        self._done: list[SegmentRow] = []
        self.published = 0  # messages

    def __call__(self, batch: Batch) -> Batch:
        """The stage: the batch's ticks (in time order per symbol) into their segments."""
        bucket_ns = self.bucket_ns
        segments = self._open
        for tick in batch.ticks:
            price = tick.price
            segment = segments.get(tick.symbol)
            if segment is not None and tick.ts_ns // bucket_ns != int(segment[0]) // bucket_ns:
                self._done.append(_row(tick.symbol, segment))
                segment = None
            if segment is None:
                segments[tick.symbol] = [
                    tick.ts_ns, price, price, price, tick.ts_ns, price, tick.volume or 0.0
                ]  # fmt: skip
                continue
            if price > segment[2]:
                segment[2] = price
            elif price < segment[3]:
                segment[3] = price
            segment[4] = tick.ts_ns
            segment[5] = price
            segment[6] += tick.volume or 0.0
        return batch

    def take(self) -> bytes | None:
        """The message of what traded since the last take (``None``: nothing did)."""
        if not self._open and not self._done:
            return None
        rows = self._done + [_row(symbol, segment) for symbol, segment in self._open.items()]
        self._done, self._open = [], {}
        return encode_segments(rows)

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


def _row(symbol: str, segment: list[float]) -> SegmentRow:
    first_ns, open_, high, low, last_ns, close, volume = segment
    return (symbol, int(first_ns), open_, high, low, int(last_ns), close, volume)
