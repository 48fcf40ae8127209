"""The tick sources of a config: one per ``[[sources]]`` table, or the bundled sample day."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from service.cluster import ClusterConfig, shard_topics
from service.streams.mqtt import MqttSource
from service.streams.rejections import Rejections
from service.streams.replay import ReplaySource
from service.streams.settings import (
    MqttSourceConfig,
    SimulatorSourceConfig,
    SourceConfig,
    WebsocketSourceConfig,
)
from service.streams.simulator import SimulatorSource
from service.streams.source import Source
from service.streams.ws_feed import WebsocketFeedSource

# With no [[sources]] the service replays the bundled sample day at this multiple
# of real time: its first level break comes about half a minute after start.
SAMPLE_SPEED = 60.0
SAMPLE_SOURCE = "sample"


def sources_of(specs: Sequence[SourceConfig], rejections: Rejections) -> list[Source]:
    """A source per spec; none configured: the sample day's replay."""
    if not specs:
        return [ReplaySource.sample_day(SAMPLE_SOURCE, speed=SAMPLE_SPEED, rejections=rejections)]
    return [source_of(spec, rejections) for spec in specs]


def source_of(spec: SourceConfig, rejections: Rejections) -> Source:
    if isinstance(spec, MqttSourceConfig):
        return MqttSource(spec, rejections)
    if isinstance(spec, WebsocketSourceConfig):
        return WebsocketFeedSource(spec, rejections)
    if isinstance(spec, SimulatorSourceConfig):
        return SimulatorSource(spec)
    return ReplaySource(spec.name, spec.path, speed=spec.speed, rejections=rejections)


def for_shard(
    specs: Sequence[SourceConfig], cluster: ClusterConfig, symbols: Iterable[str]
) -> list[SourceConfig]:
    """The sources of an engine shard of ``symbols``: each MQTT source subscribes to those
    symbols' topics only, with a session of its own (the shard's, which its standby
    takes over). Other sources are read whole; the engine drops other shards' ticks."""
    if not cluster.sharded:
        return list(specs)
    owned = list(symbols)
    suffix = f"-shard{cluster.shard}of{cluster.shards}"
    result: list[SourceConfig] = []
    for spec in specs:
        if isinstance(spec, MqttSourceConfig):
            topics = shard_topics(spec.topics, owned)
            if not topics:
                continue  # a shard of no symbol has nothing to hear from this broker
            spec = dataclasses.replace(
                spec, topics=topics, client_id=spec.client_id[: 64 - len(suffix)] + suffix
            )
        result.append(spec)
    return result
