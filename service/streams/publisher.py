"""A tick file published to an MQTT broker, as a market data feed would (``strykr-alerts feed``).

For drills and for the local cluster (``make cluster``): each tick goes to
``<prefix>/<SYMBOL>`` as the JSON the MQTT source reads, with QoS 1, paced
by the ticks' own times at ``speed`` times real time (0: as fast as the
broker takes them).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable

import aiomqtt

from service.config_table import mqtt_url
from service.errors import SourceError, TickError
from service.streams.replay import TickFile
from service.timestamps import format_timestamp

# Waits shorter than this are folded into the next one (one timer per tick costs more).
_MIN_SLEEP_S = 0.002


def tick_message(symbol: str, price: float, ts_ns: int, volume: float | None) -> bytes:
    """One tick as the MQTT source reads it."""
    message: dict[str, object] = {"symbol": symbol, "price": price, "ts": format_timestamp(ts_ns)}
    if volume is not None:
        message["volume"] = volume
    return json.dumps(message, separators=(",", ":")).encode()


async def publish_file(
    ticks: TickFile,
    url: str,
    *,
    speed: float = 1.0,
    prefix: str = "ticks",
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Publish every good row of ``ticks`` to the broker at ``url``; how many were published."""
    if not prefix or any(c in prefix for c in "#+\0"):
        raise SourceError(prefix, "a topic prefix has no wildcard (# +); such as ticks")
    try:
        tls, host, port = mqtt_url(url)
    except ValueError as error:
        raise SourceError(url, str(error)) from None
    published = 0
    first_ns: int | None = None
    started = time.monotonic()
    identifier = f"strykr-feed-{os.getpid()}"
    try:
        async with aiomqtt.Client(
            host, port, identifier=identifier, tls_params=aiomqtt.TLSParameters() if tls else None
        ) as client:
            for _row, item in ticks.iter_ticks():
                if isinstance(item, TickError):
                    continue  # the service would reject it too; a feed skips it
                if speed > 0:
                    first_ns = item.ts_ns if first_ns is None else first_ns
                    due = started + (item.ts_ns - first_ns) / 1e9 / speed
                    delay = due - time.monotonic()
                    if delay > _MIN_SLEEP_S:
                        await asyncio.sleep(delay)
                await client.publish(
                    f"{prefix}/{item.symbol}",
                    tick_message(item.symbol, item.price, item.ts_ns, item.volume),
                    qos=1,
                )
                published += 1
                if on_progress is not None:
                    on_progress(published)
    except aiomqtt.MqttError as error:
        raise SourceError(
            url, f"the broker cannot be reached or dropped the link: {error}"
        ) from None
    return published
