"""``[cluster]``: which symbols this engine process owns, when engines are sharded.

A symbol belongs to shard ``crc32(symbol) mod shards`` (CRC-32 of its UTF-8
bytes, as :func:`zlib.crc32` gives it): the same in every process and every
Python, and computable by any other tool that must know where a symbol is
watched. Each shard's engine subscribes only to its symbols' MQTT topics,
with an MQTT session of its own, and keeps only its symbols' state.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from service.config_table import Table

_SHARD_ARGUMENT = re.compile(r"^(\d{1,4})/(\d{1,4})$")
MAX_SHARDS = 1024
MAX_PRICES_HZ = 100.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    """``[cluster] shards = N, shard = i``: this engine is shard ``i`` of ``N`` (0 ≤ i < N)."""

    shards: int = 1
    shard: int = 0
    # Engines publish what their symbols did here (<prices_topic>/<shard>), prices_hz
    # times a second: the gateways' dashboards' prices, the API's charts; "" none.
    prices_topic: str = "strykr/prices"
    prices_hz: float = 4.0

    @property
    def sharded(self) -> bool:
        return self.shards > 1

    def owns(self, symbol: str) -> bool:
        """Whether this shard watches ``symbol``."""
        return self.shards == 1 or shard_of(symbol, self.shards) == self.shard

    def owned(self, symbols: Iterable[str]) -> list[str]:
        return [symbol for symbol in symbols if self.owns(symbol)]

    @property
    def label(self) -> str:
        """``"1/2"`` (shard 1 of 2); ``""`` when engines are not sharded."""
        return f"{self.shard}/{self.shards}" if self.sharded else ""


def shard_of(symbol: str, shards: int) -> int:
    """The shard that watches ``symbol`` among ``shards``."""
    return zlib.crc32(symbol.encode()) % shards


def read_cluster(table: Table) -> ClusterConfig:
    table.reads(ClusterConfig)
    shards = table.integer("shards", minimum=1)
    shard = table.integer("shard", minimum=0)
    topic = table.string("prices_topic")
    hz = table.number("prices_hz", minimum=0.1)
    table.finish()
    if table.valid("prices_topic") and any(c in topic for c in "#+\0"):
        table.problem(
            "prices_topic",
            f'a topic, without wildcards (# +), such as "strykr/prices", got {topic!r}',
        )
    if table.valid("prices_hz") and hz > MAX_PRICES_HZ:
        table.problem("prices_hz", f"at most {MAX_PRICES_HZ:g}, got {hz:g}")
    if table.valid("shards") and shards > MAX_SHARDS:
        table.problem("shards", f"at most {MAX_SHARDS}")
    elif table.valid("shards", "shard") and shard >= shards:
        table.problem("shard", f"expected 0 to {shards - 1} (shards = {shards}), got {shard}")
    if not table.ok:
        return ClusterConfig()
    return ClusterConfig(shards=shards, shard=shard, prices_topic=topic.rstrip("/"), prices_hz=hz)


def parse_shard(text: str) -> ClusterConfig:
    """``--shard i/N`` of the command line; raises ``ValueError`` saying what is wrong."""
    match = _SHARD_ARGUMENT.match(text.strip())
    if match is None:
        raise ValueError(f"expected i/N, such as 0/2 (shard 0 of 2), got {text!r}")
    shard, shards = int(match[1]), int(match[2])
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"N must be 1 to {MAX_SHARDS}, got {shards}")
    if shard >= shards:
        raise ValueError(f"i must be 0 to {shards - 1}, got {shard}")
    return ClusterConfig(shards=shards, shard=shard)


def shard_topics(topics: Iterable[str], symbols: Iterable[str]) -> tuple[str, ...]:
    """A shard's subscriptions: each topic filter ending in a wildcard level, once per symbol.

    ``ticks/#`` and ``ticks/+`` become ``ticks/IWM``, ``ticks/SPY``…: ticks are
    published on ``<prefix>/<SYMBOL>`` in a cluster. A filter without a final
    wildcard is kept as it is.
    """
    wanted = sorted(set(symbols))
    result: list[str] = []
    for topic in topics:
        prefix, _, last = topic.rpartition("/")
        if last in ("#", "+") and prefix:
            result += [f"{prefix}/{symbol}" for symbol in wanted]
        else:
            result.append(topic)
    return tuple(dict.fromkeys(result))
